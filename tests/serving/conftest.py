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
    from tests.fixtures.serving_model import build_fixture_model

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

    cfg = dict(model_base_path=base or "", model_name="intentrec", port=0, rest_api_port=-1,
               file_system_poll_wait_seconds=0.1, shutdown_grace_seconds=5.0,
               load_retry_interval_micros=50_000)  # TF Serving's 1 min between load retries
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
    from tests.fixtures.serving_model import random_history

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


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_models_config(path, models: dict, labels: dict | None = None, versions: dict | None = None) -> str:
    """A ModelServerConfig text file: models {name: base_path}, labels {name: {label: v}},
    versions {name: [v, ...]} (a specific version policy)."""
    lines = ["model_config_list {"]
    for name, base in models.items():
        lines.append(f'  config {{ name: "{name}" base_path: "{base}" model_platform: "tensorflow"')
        if versions and name in versions:
            lines.append("    model_version_policy { specific { "
                         + " ".join(f"versions: {v}" for v in versions[name]) + " } }")
        for label, v in ((labels or {}).get(name) or {}).items():
            lines.append(f'    version_labels {{ key: "{label}" value: {v} }}')
        lines.append("  }")
    lines.append("}")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return str(path)


@pytest.fixture(scope="session")
def tf_serving_command_line(tmp_path_factory, fixture_model):
    """`python -m serving.server` started with a command line written for tensorflow/serving:
    a model config file with two models (intentrec: versions 1 and 2, labels stable -> 1 and
    canary -> 2; intentrec_small: version 1), monitoring, and flags this server ignores."""
    root = tmp_path_factory.mktemp("tfserving")
    for v in (1, 2):
        push_version(str(root / "intentrec"), v, fixture_model)
    push_version(str(root / "intentrec_small"), 1, fixture_model)
    config = write_models_config(root / "models.config",
                                 {"intentrec": root / "intentrec", "intentrec_small": root / "intentrec_small"},
                                 labels={"intentrec": {"stable": 1, "canary": 2}},
                                 versions={"intentrec": [1, 2]})
    (root / "monitoring.config").write_text('prometheus_config { enable: true path: "/monitoring/prometheus/metrics" }\n')
    (root / "session.config").write_text("experimental { disable_thread_spinning: true }\n")
    grpc_port, rest_port = free_port(), free_port()
    argv = [f"--port={grpc_port}", f"--rest_api_port={rest_port}", f"--model_config_file={config}",
            "--model_config_file_poll_wait_seconds=60", "--allow_version_labels_for_unavailable_models=true",
            "--rest_api_timeout_in_ms=30000", "--rest_api_num_threads=8", "--max_num_load_retries=3",
            "--load_retry_interval_micros=1000000", "--file_system_poll_wait_seconds=1",
            f"--monitoring_config_file={root / 'monitoring.config'}", "--enable_model_warmup=true",
            "--grpc_channel_arguments=grpc.max_connection_age_ms=600000", "--num_load_threads=4",
            "--flush_filesystem_caches=true", "--tensorflow_session_parallelism=2",
            f"--tensorflow_session_config_file={root / 'session.config'}",
            "--xla_cpu_compilation_enabled=false", "--enable_batching=false", "--saved_model_tags=serve",
            "--model_name=ignored", "--model_base_path=/ignored"]
    log_path = str(root / "server.log")
    env = dict(os.environ, PYTHONUNBUFFERED="1", TF_CPP_MIN_LOG_LEVEL="2")
    with open(log_path, "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "serving.server", *argv], cwd=REPO,
                                stdout=subprocess.PIPE, stderr=log, env=env)
    sp = ServerProcess(proc, log_path)
    sp.rest_port, sp.root = rest_port, root
    yield sp
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    proc.stdout.close()


SUBPROCESS_FIXTURES = ("server_process", "tf_serving_command_line")


@pytest.fixture(scope="session", autouse=True)
def _start_server_process_early(request):
    """Starts the subprocess servers at the beginning of the session when some selected test
    needs them, so that their TensorFlow import overlaps the other tests."""
    for name in SUBPROCESS_FIXTURES:
        if any(name in getattr(item, "fixturenames", ()) for item in request.session.items):
            request.getfixturevalue(name)
    yield


def pytest_collection_modifyitems(session, config, items):
    """Tests on the subprocess servers run last: their start overlaps everything else."""
    items.sort(key=lambda item: any(n in getattr(item, "fixturenames", ()) for n in SUBPROCESS_FIXTURES))
