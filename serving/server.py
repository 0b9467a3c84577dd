"""IntentRec model server: TF Serving's gRPC (and REST) API over TF Serving model directories.

    python -m serving.server --model_name=intentrec --model_base_path=serving_root/intentrec
    python -m serving.server --model_config_file=models.config --allow_version_labels_for_unavailable_models

serves ``<base_path>/<version>/`` (exactly what ``tensorflow/serving`` loads) of one model,
or of every model of a ModelServerConfig file, with ``tensorflow.serving.PredictionService``
(Predict, GetModelMetadata; Classify, Regress and MultiInference answer UNIMPLEMENTED),
``tensorflow.serving.ModelService`` (GetModelStatus, HandleReloadConfigRequest), the gRPC
health protocol (grpc.health.v1) and TF Serving's REST API. It takes every flag of
``tensorflow_model_server`` (serving/flags.py; docs/serving.md has the table).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from concurrent import futures

from serving.flags import (  # noqa: F401 - re-exported: tests and tools import them from here
    DEFAULT_MAX_MESSAGE_SIZE,
    ServerConfig,
    build_parser,
    config_from_args,
    ignored_reason,
    parse_batching_parameters,
    parse_channel_arguments,
)

log = logging.getLogger("serving.server")


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - non-Linux
        return os.cpu_count() or 1


class ModelServer:
    """The server, for `main` and for tests/benchmarks (``start()`` returns bound ports)."""

    def __init__(self, config: ServerConfig):
        self.config = config
        self.grpc_port: int | None = None
        self.rest_port: int | None = None
        self.core = None
        self._grpc_server = None
        self._rest = None
        self._health = None
        self._watcher = None
        self._stopped = threading.Event()
        self._stop_lock = threading.Lock()

    def start(self) -> "ModelServer":
        """Loads the configured models and opens the ports. ValueError when the flags or the
        model config cannot be served (TF Serving: "Failed to start server")."""
        c = self.config
        self._check_config()
        for flag, value in sorted(c.ignored_flags.items()):
            log.warning("--%s=%s is accepted for compatibility with tensorflow_model_server and ignored: "
                        "%s", flag, value, ignored_reason(flag))
        configure_tensorflow(c.tensorflow_intra_op_parallelism, c.tensorflow_inter_op_parallelism,
                             c.tensorflow_session_config_file)
        self.core = core = self._build_core()
        self._start_health()
        config = self._initial_model_config()
        from serving.errors import ServingError

        try:
            core.registry.apply(config)
        except ServingError as e:
            raise ValueError(f"{e.code.name}: {e.message}") from None
        self._wait_for_first_versions(c.initial_load_timeout_seconds)
        self._update_health()
        if c.model_config_file and c.model_config_file_poll_wait_seconds > 0:
            from serving.model_config import read_config_file
            from serving.models import ConfigFileWatcher

            self._watcher = ConfigFileWatcher(c.model_config_file, c.model_config_file_poll_wait_seconds,
                                              core.registry, read_config_file, self._update_health).start()
        self._start_grpc()
        if c.rest_api_port:  # 0 disables REST (TF Serving); -1 picks a free port
            from serving.rest import RestServer

            self._rest = RestServer(
                core, c.host, max(c.rest_api_port, 0), max_body_bytes=c.grpc_max_message_size,
                num_threads=c.rest_api_num_threads or 4 * _cores(), timeout_ms=c.rest_api_timeout_in_ms,
                enable_cors=c.rest_api_enable_cors_support, metrics=core.metrics,
                max_connections=_max_connections()).start()
            self.rest_port = self._rest.port
            log.info("Exporting HTTP/REST API at:%s:%d ...", c.host, self.rest_port)
        return self

    def _check_config(self) -> None:
        c = self.config
        if c.use_alts_credentials:
            # Ignoring it would serve in the clear a deployment that asked for ALTS.
            raise ValueError("--use_alts_credentials is not supported by this server (use --ssl_config_file)")
        if not c.model_config_file and not c.model_base_path:
            raise ValueError("--model_base_path is required unless --model_config_file is given")
        if c.model_config_file and c.model_base_path:
            log.info("--model_config_file is given: --model_name and --model_base_path are ignored "
                     "(as in tensorflow_model_server)")

    def _build_core(self):
        from serving.batching import Batcher
        from serving.core import ServingCore
        from serving.model_manager import ModelManager
        from serving.models import ModelRegistry
        from serving.request_policy import RequestPolicy
        from serving.versions import VersionPolicy
        from serving.warmup import make_warmup

        c = self.config
        warmup = make_warmup(c.num_request_iterations_for_warmup) if c.enable_model_warmup else None
        tags = tuple(t.strip() for t in c.saved_model_tags.split(",") if t.strip())

        def manager_for(spec):
            return ModelManager(
                spec.name, spec.base_path, policy=spec.policy, warmup=warmup,
                poll_wait_seconds=c.file_system_poll_wait_seconds, on_change=lambda _: self._update_health(),
                freeze_gc=c.freeze_gc, max_num_load_retries=c.max_num_load_retries,
                load_retry_interval_seconds=max(c.load_retry_interval_micros, 0) / 1e6,
                saved_model_tags=tags)

        registry = ModelRegistry(
            manager_for, allow_labels_for_unavailable=c.allow_version_labels_for_unavailable_models,
            policy_override=None if c.model_config_file else VersionPolicy.parse(c.model_version_policy))
        batcher = None
        if c.enable_batching:
            batcher = Batcher(max_batch_size=c.max_batch_size, batch_timeout_micros=c.batch_timeout_micros,
                              num_batch_threads=c.num_batch_threads or _cores(),
                              max_enqueued_batches=c.max_enqueued_batches)
        metrics = None
        if c.monitoring_config_file:
            from serving.config_protos import MonitoringConfig, read_text_proto
            from serving.metrics import Metrics

            prometheus = read_text_proto(c.monitoring_config_file, MonitoringConfig).prometheus_config
            if prometheus.enable:
                metrics = Metrics(prometheus.path, registry)
        return ServingCore(registry, batcher=batcher, metrics=metrics,
                           policy=RequestPolicy(c.max_examples_per_request, c.max_history_length),
                           max_expanded_bytes=max(c.grpc_max_message_size, 1 << 20) * 4,
                           check_method_name=c.enable_signature_method_name_check)

    def _initial_model_config(self):
        from serving.model_config import read_config_file, single_model_config

        c = self.config
        if c.model_config_file:
            return read_config_file(c.model_config_file)
        return single_model_config(c.model_name, c.model_base_path)

    def _wait_for_first_versions(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        registry = self.core.registry
        while time.monotonic() < deadline and not all(
                registry.manager(n).available for n in registry.names()):
            time.sleep(0.05)

    # --- health ----------------------------------------------------------------------------
    def _start_health(self) -> None:
        from grpc_health.v1 import health

        self._health = health.HealthServicer(
            experimental_non_blocking=True,
            experimental_thread_pool=futures.ThreadPoolExecutor(max_workers=1))
        self._health_names: set = set()

    def _update_health(self) -> None:
        """Per model: SERVING while it has an AVAILABLE version; "" and the
        PredictionService: SERVING while every configured model has one."""
        if self._health is None or self.core is None:
            return
        from grpc_health.v1 import health_pb2

        hs = health_pb2.HealthCheckResponse
        registry = self.core.registry
        names = registry.names()
        ok = {n: bool(registry.manager(n) and registry.manager(n).available) for n in names}
        for name in self._health_names - set(names):
            self._health.set(name, hs.NOT_SERVING)
        for name, available in ok.items():
            self._health.set(name, hs.SERVING if available else hs.NOT_SERVING)
        self._health_names = set(names)
        overall = hs.SERVING if names and all(ok.values()) else hs.NOT_SERVING
        for service in ("", "tensorflow.serving.PredictionService"):
            self._health.set(service, overall)

    # --- gRPC ------------------------------------------------------------------------------
    def _start_grpc(self) -> None:
        import grpc
        from grpc_health.v1 import health_pb2_grpc
        from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

        from serving import services

        c = self.config
        options = [
            ("grpc.max_receive_message_length", c.grpc_max_message_size),
            ("grpc.max_send_message_length", c.grpc_max_message_size),
            ("grpc.so_reuseport", 0),
            *parse_channel_arguments(c.grpc_channel_arguments),
        ]
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=c.grpc_max_threads or 4 * _cores(),
                                                        thread_name_prefix="grpc"), options=options)
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
            services.PredictionServicer(self.core), server)
        model_service_pb2_grpc.add_ModelServiceServicer_to_server(services.ModelServicer(self.core), server)
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        credentials = _ssl_credentials(c.ssl_config_file) if c.ssl_config_file else None

        def bind(address):
            port = (server.add_secure_port(address, credentials) if credentials is not None
                    else server.add_insecure_port(address))
            if port == 0:
                raise OSError(f"could not bind gRPC address {address}")
            return port

        # TF Serving: --port=0 with --grpc_socket_path serves the socket only; here --port=0
        # alone picks a free TCP port (tests, benchmarks).
        if c.port or not c.grpc_socket_path:
            self.grpc_port = bind(f"{_bracket(c.host)}:{c.port}")
        if c.grpc_socket_path:
            bind(f"unix:{os.path.abspath(c.grpc_socket_path)}")
        server.start()
        self._grpc_server = server
        log.info("Running gRPC ModelServer at %s:%s%s ...", c.host, self.grpc_port,
                 f" and unix:{c.grpc_socket_path}" if c.grpc_socket_path else "")

    def stop(self, grace: float | None = None) -> None:
        """Graceful stop: NOT_SERVING, stop accepting, drain in-flight requests, unload."""
        with self._stop_lock:
            if self._stopped.is_set():
                return
            grace = self.config.shutdown_grace_seconds if grace is None else grace
            t0 = time.monotonic()
            log.info("Shutting down (grace %.1fs)", grace)
            if self._watcher is not None:
                self._watcher.stop()
            if self._health is not None:
                self._health.enter_graceful_shutdown()
            if self._rest is not None:
                self._rest.stop()
            done = self._grpc_server.stop(grace) if self._grpc_server is not None else None
            core = self.core
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
                core.registry.stop(timeout=max(remaining, 1.0))
            self._stopped.set()
            log.info("Server stopped")

    def wait(self, timeout: float | None = None) -> bool:
        return self._stopped.wait(timeout)


def _ssl_credentials(path: str):
    """gRPC server credentials from TF Serving's SSLConfig (PEM text inline, not paths)."""
    import grpc

    from serving.config_protos import SSLConfig, read_text_proto

    ssl = read_text_proto(path, SSLConfig)
    if not ssl.server_key or not ssl.server_cert:
        raise ValueError(f"{path}: SSLConfig needs server_key and server_cert (PEM text)")
    return grpc.ssl_server_credentials(
        [(ssl.server_key.encode(), ssl.server_cert.encode())],
        root_certificates=ssl.custom_ca.encode() if ssl.custom_ca else None,
        require_client_auth=ssl.client_verify)


def _max_connections() -> int:
    """Open REST connections allowed: well below the file-descriptor limit."""
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        return max(64, min(4096, soft // 2))
    except (ImportError, ValueError, OSError):  # pragma: no cover
        return 512


def _bracket(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def configure_tensorflow(intra: int = 0, inter: int = 0, session_config_file: str = "") -> None:
    """Sets the TensorFlow runtime's config before it initialises: the ConfigProto of
    ``session_config_file`` (TF Serving's --tensorflow_session_config_file, which TF Serving
    gives each model's session; here the one eager runtime every model runs in), then the
    non-zero thread-pool sizes. ValueError when the file cannot be read or parsed."""
    import tensorflow as tf

    if session_config_file:
        from google.protobuf import text_format
        from tensorflow.core.protobuf import config_pb2
        from tensorflow.python.eager import context

        from serving.config_protos import read_text_proto

        proto = read_text_proto(session_config_file, config_pb2.ConfigProto)
        ctx = context.context()
        if ctx._context_handle is not None:  # noqa: SLF001 - no public setter for the base ConfigProto
            log.warning("TensorFlow is already initialised; --tensorflow_session_config_file=%s is not "
                        "applied", session_config_file)
        else:
            # The eager context builds its runtime from this base config plus the
            # tf.config settings below (tensorflow/python/eager/context.py, Context.config).
            ctx._config = proto  # noqa: SLF001
            log.info("TensorFlow runtime config from %s: %s", session_config_file,
                     text_format.MessageToString(proto, as_one_line=True) or "(empty)")
    try:
        if intra:
            tf.config.threading.set_intra_op_parallelism_threads(intra)
        if inter:
            tf.config.threading.set_inter_op_parallelism_threads(inter)
    except RuntimeError as e:  # already initialised (e.g. in-process tests)
        log.warning("could not set TensorFlow thread pools: %s", e)


def _print_version() -> None:
    from importlib import metadata

    def version(dist):
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return "unknown"

    print(f"TensorFlow ModelServer: intentrec-{version('intentrec')} "
          f"(tensorflow-serving-api {version('tensorflow-serving-api')})\n"
          f"TensorFlow Library: {version('tensorflow')}")


def main(argv=None) -> int:
    args, unknown = build_parser(__doc__).parse_known_args(argv)
    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    for arg in unknown:  # tensorflow_model_server prints "unknown argument" and starts anyway
        log.warning("unknown argument: %s (ignored)", arg)
    if args.version:
        _print_version()
        return 0
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
        log.error("Failed to start server. Error: %s", e)
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
