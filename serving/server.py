"""IntentRec model server: TF Serving's gRPC (and REST) API over a TF Serving model directory.

    python -m serving.server --model_name=intentrec --model_base_path=serving_root/intentrec

serves ``<model_base_path>/<version>/`` (exactly what ``tensorflow/serving`` loads) with
``tensorflow.serving.PredictionService`` (Predict, GetModelMetadata; Classify, Regress and
MultiInference answer UNIMPLEMENTED), ``tensorflow.serving.ModelService.GetModelStatus``,
the gRPC health protocol (grpc.health.v1) and TF Serving's REST API. Flags keep TF
Serving's names and defaults where they exist (docs/serving.md lists them).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import re
import signal
import sys
import threading
import time
from concurrent import futures

log = logging.getLogger("serving.server")

DEFAULT_MAX_MESSAGE_SIZE = 64 * 1024 * 1024


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - non-Linux
        return os.cpu_count() or 1


@dataclasses.dataclass
class ServerConfig:
    model_base_path: str
    model_name: str = "intentrec"
    host: str = "127.0.0.1"
    port: int = 8500
    rest_api_port: int = 8501
    model_version_policy: str = "latest"
    file_system_poll_wait_seconds: float = 1.0
    grpc_max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
    grpc_channel_arguments: str = ""
    grpc_max_threads: int = 0  # 0: 4 x cores, TF Serving's default
    enable_batching: bool = False
    batching_parameters_file: str = ""
    max_batch_size: int = 1000
    batch_timeout_micros: int = 0
    num_batch_threads: int = 0  # 0: cores
    max_enqueued_batches: int = 10
    enable_model_warmup: bool = True
    num_request_iterations_for_warmup: int = 1
    tensorflow_intra_op_parallelism: int = 0
    tensorflow_inter_op_parallelism: int = 0
    shutdown_grace_seconds: float = 10.0
    initial_load_timeout_seconds: float = 0.0  # wait this long for a first version before serving
    freeze_gc: bool = True  # gc.freeze() loaded models (see model_manager.refreeze_gc)
    rest_api_num_threads: int = 0  # 0: 4 x cores, TF Serving's default
    rest_api_timeout_in_ms: int = 30_000
    rest_api_enable_cors_support: bool = False
    max_examples_per_request: int = 1000  # serving.request_policy; 0: no cap
    max_history_length: int = 10_000

    def __post_init__(self):
        if self.batching_parameters_file:
            for key, value in parse_batching_parameters(self.batching_parameters_file).items():
                setattr(self, key, value)


def parse_batching_parameters(path: str) -> dict:
    """The fields we use from TF Serving's --batching_parameters_file (text BatchingParameters)."""
    with open(path) as f:
        text = f.read()
    out = {}
    for field in ("max_batch_size", "batch_timeout_micros", "num_batch_threads", "max_enqueued_batches"):
        m = re.search(rf"\b{field}\s*\{{\s*value\s*:\s*(\d+)\s*\}}", text) or re.search(
            rf"\b{field}\s*:\s*(\d+)", text)
        if m:
            out[field] = int(m.group(1))
    return out


def parse_channel_arguments(text: str) -> list[tuple[str, object]]:
    """TF Serving's --grpc_channel_arguments: comma-separated key=value gRPC arguments."""
    args = []
    for item in filter(None, (s.strip() for s in (text or "").split(","))):
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"bad grpc channel argument {item!r}: expected key=value")
        value = value.strip()
        args.append((key.strip(), int(value) if re.fullmatch(r"-?\d+", value) else value))
    return args


class ModelServer:
    """The server, for `main` and for tests/benchmarks (``start()`` returns bound ports)."""

    def __init__(self, config: ServerConfig):
        self.config = config
        self.grpc_port: int | None = None
        self.rest_port: int | None = None
        self._grpc_server = None
        self._rest = None
        self._health = None
        self._stopped = threading.Event()
        self._stop_lock = threading.Lock()

    def start(self) -> "ModelServer":
        import grpc
        from grpc_health.v1 import health, health_pb2, health_pb2_grpc
        from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

        from serving import services
        from serving.batching import Batcher
        from serving.core import ServingCore
        from serving.model_manager import ModelManager
        from serving.request_policy import RequestPolicy

        c = self.config
        configure_tensorflow(c.tensorflow_intra_op_parallelism, c.tensorflow_inter_op_parallelism)
        cores = _cores()

        self._health = health.HealthServicer(
            experimental_non_blocking=True,
            experimental_thread_pool=futures.ThreadPoolExecutor(max_workers=1))
        hs = health_pb2.HealthCheckResponse
        self._health.set("", hs.NOT_SERVING)
        self._health.set(c.model_name, hs.NOT_SERVING)

        def on_change(manager):
            status = hs.SERVING if manager.available else hs.NOT_SERVING
            for service in ("", c.model_name, "tensorflow.serving.PredictionService"):
                self._health.set(service, status)

        batcher = None
        if c.enable_batching:
            batcher = Batcher(max_batch_size=c.max_batch_size, batch_timeout_micros=c.batch_timeout_micros,
                              num_batch_threads=c.num_batch_threads or cores,
                              max_enqueued_batches=c.max_enqueued_batches)
        manager = ModelManager(c.model_name, c.model_base_path, policy=c.model_version_policy,
                               poll_wait_seconds=c.file_system_poll_wait_seconds, on_change=on_change,
                               freeze_gc=c.freeze_gc)
        policy = RequestPolicy(c.max_examples_per_request, c.max_history_length)
        self.core = core = ServingCore(manager, batcher=batcher, policy=policy,
                                       max_expanded_bytes=max(c.grpc_max_message_size, 1 << 20) * 4)
        if c.enable_model_warmup:
            manager._warmup = core.make_warmup(c.num_request_iterations_for_warmup)
        manager.start(initial_timeout=c.initial_load_timeout_seconds)
        on_change(manager)

        options = [
            ("grpc.max_receive_message_length", c.grpc_max_message_size),
            ("grpc.max_send_message_length", c.grpc_max_message_size),
            ("grpc.so_reuseport", 0),
            *parse_channel_arguments(c.grpc_channel_arguments),
        ]
        threads = c.grpc_max_threads or 4 * cores
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=threads, thread_name_prefix="grpc"),
                             options=options)
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
            services.PredictionServicer(core), server)
        model_service_pb2_grpc.add_ModelServiceServicer_to_server(services.ModelServicer(core), server)
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        address = f"{_bracket(c.host)}:{c.port}"
        port = server.add_insecure_port(address)
        if port == 0:
            raise OSError(f"could not bind gRPC address {address}")
        server.start()
        self._grpc_server, self.grpc_port = server, port
        log.info("Running gRPC ModelServer at %s:%d ...", c.host, port)
        if c.rest_api_port:  # 0 disables REST (TF Serving); -1 picks a free port
            from serving.rest import RestServer

            self._rest = RestServer(core, c.host, max(c.rest_api_port, 0),
                                    max_body_bytes=c.grpc_max_message_size,
                                    num_threads=c.rest_api_num_threads or 4 * cores,
                                    timeout_ms=c.rest_api_timeout_in_ms,
                                    enable_cors=c.rest_api_enable_cors_support).start()
            self.rest_port = self._rest.port
            log.info("Exporting HTTP/REST API at:%s:%d ...", c.host, self.rest_port)
        return self

    def stop(self, grace: float | None = None) -> None:
        """Graceful stop: NOT_SERVING, stop accepting, drain in-flight requests, unload."""
        with self._stop_lock:
            if self._stopped.is_set():
                return
            grace = self.config.shutdown_grace_seconds if grace is None else grace
            t0 = time.monotonic()
            log.info("Shutting down (grace %.1fs)", grace)
            if self._health is not None:
                self._health.enter_graceful_shutdown()
            if self._rest is not None:
                self._rest.stop()
            done = self._grpc_server.stop(grace) if self._grpc_server is not None else None
            core = getattr(self, "core", None)
            if core is not None and core.batcher is not None:
                core.batcher.close(grace)  # run what is queued now rather than at its timeout
            if done is not None:
                done.wait()
            remaining = max(0.0, grace - (time.monotonic() - t0))
            if core is not None:
                core.wait_idle(remaining)
            if self._rest is not None:
                self._rest.close()
            if core is not None:
                core.manager.stop(timeout=max(remaining, 1.0))
            self._stopped.set()
            log.info("Server stopped")

    def wait(self, timeout: float | None = None) -> bool:
        return self._stopped.wait(timeout)


def _bracket(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def configure_tensorflow(intra: int = 0, inter: int = 0) -> None:
    import tensorflow as tf

    try:
        if intra:
            tf.config.threading.set_intra_op_parallelism_threads(intra)
        if inter:
            tf.config.threading.set_inter_op_parallelism_threads(inter)
    except RuntimeError as e:  # already initialised (e.g. in-process tests)
        log.warning("could not set TensorFlow thread pools: %s", e)


# --- flags -----------------------------------------------------------------------------------
def _bool(v) -> bool:
    if isinstance(v, bool):
        return v
    s = str(v).strip().lower()
    if s in ("1", "true", "t", "yes", "y", "on"):
        return True
    if s in ("0", "false", "f", "no", "n", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected a boolean, got {v!r}")


def build_parser() -> argparse.ArgumentParser:
    d = ServerConfig(model_base_path="")
    p = argparse.ArgumentParser(
        prog="python -m serving.server", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    a = p.add_argument
    a("--port", type=int, default=d.port, help="gRPC port (0: pick a free one)")
    a("--rest_api_port", type=int, default=d.rest_api_port,
      help="REST port; 0 disables REST, -1 picks a free port")
    a("--host", default=d.host, help="address to bind; 0.0.0.0 / :: to listen beyond loopback")
    a("--model_name", default=d.model_name)
    a("--model_base_path", required=True, help="directory holding numeric version subdirectories")
    a("--model_version_policy", default=d.model_version_policy,
      help="latest | latest:N | all | specific:V1,V2 (TF Serving's model_version_policy)")
    a("--file_system_poll_wait_seconds", type=float, default=d.file_system_poll_wait_seconds,
      help="seconds between polls of the base path for new versions; 0 polls only at start")
    a("--grpc_max_message_size", type=int, default=d.grpc_max_message_size,
      help="max request/response size in bytes (gRPC and REST); larger -> RESOURCE_EXHAUSTED")
    a("--grpc_channel_arguments", default="", help="comma-separated key=value gRPC server arguments")
    a("--grpc_max_threads", type=int, default=0, help="gRPC handler threads (0: 4 x cores)")
    a("--enable_batching", type=_bool, nargs="?", const=True, default=False)
    a("--batching_parameters_file", default="", help="TF Serving BatchingParameters text proto")
    a("--max_batch_size", type=int, default=d.max_batch_size)
    a("--batch_timeout_micros", type=int, default=d.batch_timeout_micros)
    a("--num_batch_threads", type=int, default=0, help="0: cores")
    a("--max_enqueued_batches", type=int, default=d.max_enqueued_batches)
    a("--enable_model_warmup", type=_bool, nargs="?", const=True, default=True)
    a("--num_request_iterations_for_warmup", type=int, default=1)
    a("--tensorflow_intra_op_parallelism", type=int, default=0)
    a("--tensorflow_inter_op_parallelism", type=int, default=0)
    a("--tensorflow_session_parallelism", type=int, default=0, help="accepted and ignored (TF1)")
    a("--shutdown_grace_seconds", type=float, default=d.shutdown_grace_seconds,
      help="on SIGTERM/SIGINT, how long in-flight requests may take to finish")
    a("--initial_load_timeout_seconds", type=float, default=0.0,
      help="at start, wait up to this long for a first version before opening the ports")
    a("--rest_api_num_threads", type=int, default=0,
      help="REST worker threads, the bound on concurrent REST requests (0: 4 x cores)")
    a("--rest_api_timeout_in_ms", type=int, default=d.rest_api_timeout_in_ms,
      help="a REST request must arrive and be answered within this (<= 0: no limit)")
    a("--rest_api_enable_cors_support", type=_bool, nargs="?", const=True, default=False)
    a("--max_examples_per_request", type=int, default=d.max_examples_per_request,
      help="ours: more examples in one Predict -> INVALID_ARGUMENT (0: no cap)")
    a("--max_history_length", type=int, default=d.max_history_length,
      help="ours: more interactions in one history -> INVALID_ARGUMENT (0: no cap)")
    a("--log_level", default=os.environ.get("INTENTREC_LOG_LEVEL", "INFO"))
    return p


def config_from_args(args) -> ServerConfig:
    fields = {f.name for f in dataclasses.fields(ServerConfig)}
    return ServerConfig(**{k: v for k, v in vars(args).items() if k in fields})


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
    try:
        config = config_from_args(args)
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    server = ModelServer(config)
    stop = threading.Event()

    def on_signal(signum, _frame):
        if stop.is_set():  # a second signal: do not wait for the drain
            log.warning("Received %s again: exiting now", signal.Signals(signum).name)
            os._exit(1)
        log.info("Received %s", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        server.start()
    except (OSError, ValueError, RuntimeError) as e:
        log.error("could not start: %s", e)
        server.stop(0)
        return 1
    # One line on stdout for scripts (and tests) that start us with port 0.
    print(f"READY grpc={config.host}:{server.grpc_port} rest="
          f"{config.host + ':' + str(server.rest_port) if server.rest_port else 'disabled'}", flush=True)
    while not stop.wait(0.5):
        pass
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
