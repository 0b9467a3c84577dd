"""Command-line flags: every flag of ``tensorflow_model_server`` (2.16's main.cc), plus ours.

A command line or Kubernetes manifest written for ``tensorflow/serving`` starts this
server unchanged. Each TF Serving flag is implemented, or — where it cannot apply to this
server (TFLite, TPU, XLA, GPU memory, TF1 sessions, load thread pools) — accepted and
logged once as ignored when set to something other than its default. Unknown arguments are
logged and skipped, as tensorflow_model_server prints "unknown argument" and starts.
Flags take ``--name=value`` (TF Serving's form) or ``--name value``; booleans also
``--name`` alone. docs/serving.md has the table of what each flag does here.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re

from serving.request_policy import DEFAULT_MAX_EXAMPLES_PER_REQUEST, DEFAULT_MAX_HISTORY_LENGTH

DEFAULT_MAX_MESSAGE_SIZE = 64 * 1024 * 1024


@dataclasses.dataclass
class ServerConfig:
    model_base_path: str = ""
    model_name: str = "intentrec"
    model_config_file: str = ""
    model_config_file_poll_wait_seconds: float = 0.0  # 0: read once
    host: str = "127.0.0.1"
    port: int = 8500
    grpc_socket_path: str = ""
    rest_api_port: int = 8501
    rest_api_num_threads: int = 0  # 0: 4 x cores, TF Serving's default
    rest_api_timeout_in_ms: int = 30_000
    rest_api_enable_cors_support: bool = False
    model_version_policy: str = "latest"  # ours; one-model configs (the file has its own)
    allow_version_labels_for_unavailable_models: bool = False
    file_system_poll_wait_seconds: float = 1.0
    max_num_load_retries: int = 5
    load_retry_interval_micros: int = 60_000_000
    saved_model_tags: str = "serve"
    grpc_max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
    grpc_channel_arguments: str = ""
    grpc_max_threads: int = 0  # 0: 4 x cores, TF Serving's default
    ssl_config_file: str = ""
    monitoring_config_file: str = ""
    enable_batching: bool = False
    batching_parameters_file: str = ""
    max_batch_size: int = 1000
    batch_timeout_micros: int = 0
    num_batch_threads: int = 0  # 0: cores
    max_enqueued_batches: int = 10
    enable_model_warmup: bool = True
    num_request_iterations_for_warmup: int = 1
    enable_signature_method_name_check: bool = False
    tensorflow_intra_op_parallelism: int = 0
    tensorflow_inter_op_parallelism: int = 0
    tensorflow_session_config_file: str = ""  # ConfigProto text: the eager runtime's base config
    use_alts_credentials: bool = False
    shutdown_grace_seconds: float = 10.0
    initial_load_timeout_seconds: float = 0.0  # wait this long for a first version before serving
    freeze_gc: bool = True  # gc.freeze() loaded models (see model_manager.refreeze_gc)
    max_examples_per_request: int = DEFAULT_MAX_EXAMPLES_PER_REQUEST  # 0: no cap
    max_history_length: int = DEFAULT_MAX_HISTORY_LENGTH  # 0: no cap
    ignored_flags: dict = dataclasses.field(default_factory=dict)  # flag -> value, logged once

    def __post_init__(self):
        if self.batching_parameters_file:
            for key, value in parse_batching_parameters(self.batching_parameters_file).items():
                setattr(self, key, value)


def parse_batching_parameters(path: str) -> dict:
    """The fields we use from TF Serving's --batching_parameters_file (text BatchingParameters)."""
    from serving.config_protos import BatchingParameters, read_text_proto

    params = read_text_proto(path, BatchingParameters, allow_unknown_field=True)
    return {name: getattr(params, name).value
            for name in ("max_batch_size", "batch_timeout_micros", "num_batch_threads", "max_enqueued_batches")
            if params.HasField(name)}


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


def _bool(v) -> bool:
    if isinstance(v, bool):
        return v
    s = str(v).strip().lower()
    if s in ("1", "true", "t", "yes", "y", "on"):
        return True
    if s in ("0", "false", "f", "no", "n", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected a boolean, got {v!r}")


# TF Serving flags that cannot apply here: (flag, type, TF Serving's default, why).
IGNORED = (
    ("enable_per_model_batching_parameters", _bool, False, "batching parameters are server-wide here"),
    ("num_load_threads", int, 0, "each model loads its versions one at a time, off the request path"),
    ("num_unload_threads", int, 0, "versions unload on their own thread once drained"),
    ("flush_filesystem_caches", _bool, True, "no filesystem cache is kept"),
    ("tensorflow_session_parallelism", int, 0, "TF1 sessions are not used; see --tensorflow_*_op_parallelism"),
    ("platform_config_file", str, "", "only the TensorFlow platform is served"),
    ("per_process_gpu_memory_fraction", float, 0.0, "CPU serving"),
    ("remove_unused_fields_from_bundle_metagraph", _bool, True, "the MetaGraphDef is not kept"),
    ("prefer_tflite_model", _bool, False, "TFLite models are not served"),
    ("num_tflite_pools", int, 0, "TFLite models are not served"),
    ("num_tflite_interpreters_per_pool", int, 1, "TFLite models are not served"),
    ("xla_cpu_compilation_enabled", _bool, False, "models run as exported (no XLA JIT)"),
    ("xla_gpu_compilation_enabled", _bool, False, "models run as exported (no XLA JIT)"),
    ("enable_profiler", _bool, False, "no profiler service"),
    ("thread_pool_factory_config_file", str, "", "TF Serving's thread-pool factory does not exist here"),
    ("mixed_precision", str, "", "models run as exported"),
    ("skip_initialize_tpu", _bool, False, "no TPU"),
    ("enable_grpc_healthcheck_service", _bool, False, "grpc.health.v1 is always served here"),
    ("enable_serialization_as_tensor_content", _bool, False, "numeric outputs always use tensor_content here"),
)


def build_parser(description: str | None = None) -> argparse.ArgumentParser:
    d = ServerConfig()
    p = argparse.ArgumentParser(prog="python -m serving.server", description=description,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    a = p.add_argument
    flag = dict(type=_bool, nargs="?", const=True)
    g = p.add_argument_group("tensorflow_model_server flags (implemented)")
    g.add_argument("--port", type=int, default=d.port,
                   help="gRPC port; 0 picks a free one (with --grpc_socket_path: no TCP port)")
    g.add_argument("--grpc_socket_path", default="", help="also (or only) listen on this UNIX socket")
    g.add_argument("--rest_api_port", type=int, default=d.rest_api_port,
                   help="REST port; 0 disables REST, -1 picks a free port")
    g.add_argument("--rest_api_num_threads", type=int, default=0,
                   help="REST worker threads, the bound on concurrent REST requests (0: 4 x cores)")
    g.add_argument("--rest_api_timeout_in_ms", type=int, default=d.rest_api_timeout_in_ms,
                   help="a REST request must arrive and be answered within this (<= 0: no limit)")
    g.add_argument("--rest_api_enable_cors_support", default=False, **flag)
    g.add_argument("--model_config_file", default="", help="ModelServerConfig text proto (several models, "
                   "version policies and labels); --model_name/--model_base_path are then ignored")
    g.add_argument("--model_config_file_poll_wait_seconds", type=float, default=0.0,
                   help="re-read --model_config_file this often and apply changes (0: once)")
    g.add_argument("--allow_version_labels_for_unavailable_models", default=False, **flag)
    g.add_argument("--model_name", default=d.model_name)
    g.add_argument("--model_base_path", default="", help="directory holding numeric version subdirectories")
    g.add_argument("--file_system_poll_wait_seconds", type=float, default=d.file_system_poll_wait_seconds,
                   help="seconds between polls of the base paths for new versions; 0 polls only at start")
    g.add_argument("--max_num_load_retries", type=int, default=d.max_num_load_retries)
    g.add_argument("--load_retry_interval_micros", type=int, default=d.load_retry_interval_micros)
    g.add_argument("--saved_model_tags", default=d.saved_model_tags, help="comma-separated meta graph tags")
    g.add_argument("--grpc_channel_arguments", default="", help="comma-separated key=value gRPC server arguments")
    g.add_argument("--grpc_max_threads", type=int, default=0, help="gRPC handler threads (0: 4 x cores)")
    g.add_argument("--ssl_config_file", default="", help="SSLConfig text proto: serve gRPC over TLS")
    g.add_argument("--use_alts_credentials", default=False, **flag)
    g.add_argument("--monitoring_config_file", default="",
                   help="MonitoringConfig text proto: Prometheus metrics on the REST port")
    g.add_argument("--enable_batching", default=False, **flag)
    g.add_argument("--batching_parameters_file", default="", help="BatchingParameters text proto")
    g.add_argument("--enable_model_warmup", default=True, **flag)
    g.add_argument("--num_request_iterations_for_warmup", type=int, default=1)
    g.add_argument("--enable_signature_method_name_check", default=False, **flag)
    g.add_argument("--tensorflow_intra_op_parallelism", type=int, default=0)
    g.add_argument("--tensorflow_inter_op_parallelism", type=int, default=0)
    g.add_argument("--tensorflow_session_config_file", default="",
                   help="ConfigProto text proto for the TensorFlow runtime (e.g. experimental "
                        "{ disable_thread_spinning: true }); non-zero --tensorflow_*_op_parallelism "
                        "flags override its thread counts")
    g.add_argument("--version", action="store_true", help="print the versions and exit")
    ig = p.add_argument_group("tensorflow_model_server flags (accepted, ignored here)")
    for name, kind, default, why in IGNORED:
        extra = flag if kind is _bool else dict(type=kind)
        ig.add_argument(f"--{name}", default=default, help=f"ignored: {why}", **extra)
    o = p.add_argument_group("flags of this server")
    o.add_argument("--host", default=d.host, help="address to bind; 0.0.0.0 / :: to listen beyond loopback")
    o.add_argument("--model_version_policy", default=d.model_version_policy,
                   help="latest | latest:N | all | specific:V1,V2 (for --model_base_path)")
    o.add_argument("--grpc_max_message_size", type=int, default=d.grpc_max_message_size,
                   help="max request/response size in bytes (gRPC and REST); larger -> RESOURCE_EXHAUSTED")
    o.add_argument("--max_batch_size", type=int, default=d.max_batch_size)
    o.add_argument("--batch_timeout_micros", type=int, default=d.batch_timeout_micros)
    o.add_argument("--num_batch_threads", type=int, default=0, help="0: cores")
    o.add_argument("--max_enqueued_batches", type=int, default=d.max_enqueued_batches)
    o.add_argument("--max_examples_per_request", type=int, default=d.max_examples_per_request,
                   help="more examples in one Predict -> INVALID_ARGUMENT (0: no cap)")
    o.add_argument("--max_history_length", type=int, default=d.max_history_length,
                   help="more interactions in one history -> INVALID_ARGUMENT (0: no cap)")
    o.add_argument("--shutdown_grace_seconds", type=float, default=d.shutdown_grace_seconds,
                   help="on SIGTERM/SIGINT, how long in-flight requests may take to finish")
    o.add_argument("--initial_load_timeout_seconds", type=float, default=0.0,
                   help="at start, wait up to this long for a first version before opening the ports")
    o.add_argument("--log_level", default=os.environ.get("INTENTREC_LOG_LEVEL", "INFO"))
    return p


def config_from_args(args) -> ServerConfig:
    fields = {f.name for f in dataclasses.fields(ServerConfig)}
    values = vars(args)
    ignored = {name: values[name] for name, _, default, _ in IGNORED if values.get(name, default) != default}
    return ServerConfig(**{k: v for k, v in values.items() if k in fields}, ignored_flags=ignored)


def ignored_reason(flag: str) -> str:
    return next(why for name, _, _, why in IGNORED if name == flag)
