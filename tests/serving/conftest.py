"""Shared fixtures: one fixture SavedModel built per session, servers on free loopback ports."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

NUM_ITEMS = 300
HISTORY = 50
K = 10
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="session")
def fixture_model(tmp_path_factory) -> str:
    """A pristine version directory of the fixture model (copy it, never serve it in place)."""
    from serving.fixture import build_fixture_model

    path = str(tmp_path_factory.mktemp("fixture") / "model")
    build_fixture_model(path, num_items=NUM_ITEMS, history_length=HISTORY, k=K)
    return path


def push_version(base: str, version: int, src: str) -> str:
    """Copies src to a temporary name inside base, then renames it (as TFX's Pusher does)."""
    os.makedirs(base, exist_ok=True)
    tmp = os.path.join(base, f".tmp-{version}")
    shutil.copytree(src, tmp)
    dst = os.path.join(base, str(version))
    os.rename(tmp, dst)
    return dst


@pytest.fixture
def model_base(tmp_path, fixture_model) -> str:
    base = str(tmp_path / "intentrec")
    push_version(base, 1, fixture_model)
    return base


def start_server(base: str, **overrides):
    from serving.server import ModelServer, ServerConfig

    cfg = dict(model_base_path=base, model_name="intentrec", port=0, rest_api_port=-1,
               file_system_poll_wait_seconds=0.1, shutdown_grace_seconds=5.0)
    cfg.update(overrides)
    return ModelServer(ServerConfig(**cfg)).start()


@pytest.fixture(scope="module")
def server(tmp_path_factory, fixture_model):
    """A server on a model that is not changed by the tests (module scope)."""
    base = str(tmp_path_factory.mktemp("served") / "intentrec")
    push_version(base, 1, fixture_model)
    srv = start_server(base, grpc_max_message_size=4 * 1024 * 1024)
    yield srv
    srv.stop(grace=1.0)


@pytest.fixture(scope="module")
def channel(server):
    import grpc

    ch = grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}",
                               options=[("grpc.max_receive_message_length", 64 << 20)])
    yield ch
    ch.close()


@pytest.fixture(scope="module")
def stub(channel):
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    return prediction_service_pb2_grpc.PredictionServiceStub(channel)


@pytest.fixture(scope="module")
def model_stub(channel):
    from tensorflow_serving.apis import model_service_pb2_grpc

    return model_service_pb2_grpc.ModelServiceStub(channel)


def history(seed: int = 0, length: int = 30):
    from serving.fixture import random_history

    return random_history(NUM_ITEMS, length, seed=seed)


def example_bytes(seed: int = 0, length: int = 30) -> bytes:
    from serving.examples import make_example

    h = history(seed, length)
    return make_example(h["item_ids"], h["timestamps"], h["metadata"]).SerializeToString()


def predict_request(examples, signature: str = "serving_default", version: int | None = None,
                    model: str = "intentrec"):
    from tensorflow_serving.apis import predict_pb2

    from serving.tensor_codec import ndarray_to_proto

    req = predict_pb2.PredictRequest()
    req.model_spec.name = model
    req.model_spec.signature_name = signature
    if version is not None:
        req.model_spec.version.value = version
    req.inputs["examples"].CopyFrom(ndarray_to_proto(np.array(list(examples), dtype=object)))
    return req


# --- a `python -m serving.server` subprocess, started early (its TF import takes a while) -----
class ServerProcess:
    def __init__(self, proc, log_path):
        self.proc = proc
        self.log_path = log_path
        self.grpc_address = None

    def wait_ready(self, timeout: float = 120.0) -> str:
        import select
        import time

        deadline = time.monotonic() + timeout
        buf = b""
        while self.grpc_address is None:
            left = deadline - time.monotonic()
            if left <= 0 or self.proc.poll() is not None:
                raise RuntimeError(f"server subprocess not ready (rc={self.proc.poll()}):\n{self.log()}")
            r, _, _ = select.select([self.proc.stdout], [], [], min(left, 1.0))
            if r:
                chunk = os.read(self.proc.stdout.fileno(), 4096)
                buf += chunk
                for line in buf.decode(errors="replace").splitlines():
                    if line.startswith("READY "):
                        self.grpc_address = line.split()[1].split("=", 1)[1]
        return self.grpc_address

    def log(self) -> str:
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()[-4000:]
        except OSError:
            return ""


@pytest.fixture(scope="session")
def server_process(tmp_path_factory, fixture_model):
    base = str(tmp_path_factory.mktemp("subprocess") / "intentrec")
    push_version(base, 1, fixture_model)
    log_path = str(tmp_path_factory.mktemp("logs") / "server.log")
    env = dict(os.environ, PYTHONUNBUFFERED="1", TF_CPP_MIN_LOG_LEVEL="2")
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "serving.server", f"--model_base_path={base}",
             "--model_name=intentrec", "--port=0", "--rest_api_port=0", "--enable_batching",
             "--max_batch_size=8", "--batch_timeout_micros=8000000", "--shutdown_grace_seconds=20",
             "--file_system_poll_wait_seconds=1"],
            cwd=REPO, stdout=subprocess.PIPE, stderr=log, env=env)
    sp = ServerProcess(proc, log_path)
    yield sp
    if proc.poll() is None:
        proc.kill()
        proc.wait(10)
    proc.stdout.close()


@pytest.fixture(scope="session", autouse=True)
def _start_server_process_early(request):
    """Starts the subprocess server at the beginning of the session when some selected test
    needs it, so that its TensorFlow import overlaps the other tests."""
    if any("server_process" in getattr(item, "fixturenames", ()) for item in request.session.items):
        request.getfixturevalue("server_process")
    yield


def pytest_collection_modifyitems(session, config, items):
    """Tests on the subprocess server run last: its start overlaps everything else."""
    items.sort(key=lambda item: "server_process" in getattr(item, "fixturenames", ()))
