"""TF Serving's command lines and model config files (issue 13 #6): several models, version
labels and policies, config reloads, and every tensorflow_model_server flag."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request

import grpc
import pytest
from tensorflow_serving.apis import (
    get_model_status_pb2,
    model_management_pb2,
    model_service_pb2_grpc,
    prediction_service_pb2_grpc,
)

from serving.errors import ServingError
from tests.serving.conftest import (
    REPO,
    example_bytes,
    free_port,
    predict_request,
    push_version,
    start_server,
    write_models_config,
)


def _predict_version(stub, model="intentrec", version=None, label=None):
    req = predict_request([example_bytes(0)], model=model, version=version)
    if label:
        req.model_spec.version_label = label
    return stub.Predict(req, timeout=30).model_spec.version.value


def _status(channel, model):
    req = get_model_status_pb2.GetModelStatusRequest()
    req.model_spec.name = model
    resp = model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus(req, timeout=30)
    return [(s.version, get_model_status_pb2.ModelVersionStatus.State.Name(s.state))
            for s in resp.model_version_status]


def test_tensorflow_serving_command_line_serves_two_models_and_labels(tf_serving_command_line):
    """Done-when of issue 13: a command line written for tensorflow/serving (model config file
    with two models and version labels, monitoring, flags that cannot apply here) starts this
    server and serves both models; it used to exit with "unrecognized arguments"."""
    sp = tf_serving_command_line
    ch = grpc.insecure_channel(sp.wait_ready())
    try:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(ch)
        assert _predict_version(stub) == 2  # specific {1, 2}: unversioned requests get the latest
        assert _predict_version(stub, label="stable") == 1
        assert _predict_version(stub, label="canary") == 2
        assert _predict_version(stub, version=1) == 1
        assert _predict_version(stub, model="intentrec_small") == 1
        with pytest.raises(grpc.RpcError) as info:
            _predict_version(stub, label="nope")
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "Unrecognized servable version label: nope" in info.value.details()
        assert _status(ch, "intentrec") == [(2, "AVAILABLE"), (1, "AVAILABLE")]
        assert _status(ch, "intentrec_small") == [(1, "AVAILABLE")]

        rest = f"http://127.0.0.1:{sp.rest_port}"
        with urllib.request.urlopen(f"{rest}/v1/models/intentrec/labels/stable/metadata", timeout=30) as r:
            assert json.loads(r.read())["model_spec"]["version"] == "1"
        body = json.dumps({"instances": [{"b64": __import__("base64").b64encode(example_bytes(1)).decode()}]})
        req = urllib.request.Request(f"{rest}/v1/models/intentrec_small:predict", data=body.encode())
        with urllib.request.urlopen(req, timeout=30) as r:
            assert len(json.loads(r.read())["predictions"][0]["top_k_ids"]) == 10
        with urllib.request.urlopen(f"{rest}/monitoring/prometheus/metrics", timeout=30) as r:
            page = r.read().decode()
        assert ':tensorflow:serving:request_count{model_name="intentrec",status="OK"}' in page
        assert ':tensorflow:serving:request_count{model_name="intentrec",status="INVALID_ARGUMENT"} 1' in page
        log = sp.log()
        assert "--num_load_threads=4 is accepted for compatibility" in log
        assert "--model_name and --model_base_path are ignored" in log
        assert "TensorFlow runtime config from" in log and "disable_thread_spinning: true" in log
    finally:
        ch.close()


def test_session_config_file_sets_the_runtime_config_before_tensorflow_starts(tmp_path):
    """--tensorflow_session_config_file (a ConfigProto text file) is the TensorFlow runtime's
    base config; the thread-pool flags override its thread counts. A bad file names itself."""
    good = tmp_path / "session.config"
    good.write_text("intra_op_parallelism_threads: 3\nexperimental { disable_thread_spinning: true }\n")
    probe = ("import sys; from serving.server import configure_tensorflow; "
             "configure_tensorflow(0, 2, sys.argv[1]); "
             "from tensorflow.python.eager import context; c = context.context().config; "
             "print(c.intra_op_parallelism_threads, c.inter_op_parallelism_threads, "
             "c.experimental.disable_thread_spinning)")
    out = subprocess.run([sys.executable, "-c", probe, str(good)], cwd=REPO, capture_output=True, text=True,
                         timeout=120, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[-3:] == ["3", "2", "True"]

    from serving.server import configure_tensorflow

    bad = tmp_path / "bad.config"
    bad.write_text("experimental { no_such_field: 1 }\n")
    with pytest.raises(ValueError, match=f"Invalid protobuf file: '{bad}'"):
        configure_tensorflow(0, 0, str(bad))
    with pytest.raises(ValueError, match="cannot read"):
        configure_tensorflow(0, 0, str(tmp_path / "missing.config"))


def test_labels_need_an_available_version_unless_allowed(tmp_path, fixture_model):
    """TF Serving checks labels before loading: at startup a label fails without
    --allow_version_labels_for_unavailable_models, which in turn never lets an existing
    label move to a version that is not loaded."""
    base = str(tmp_path / "intentrec")
    push_version(base, 1, fixture_model)
    config = write_models_config(tmp_path / "models.config", {"intentrec": base}, labels={"intentrec": {"stable": 1}})
    with pytest.raises(ValueError, match="FAILED_PRECONDITION: Request to assign label to version 1 of model "
                                         "intentrec, which is not currently available for inference"):
        start_server(None, model_config_file=config)
    srv = start_server(None, model_config_file=config, allow_version_labels_for_unavailable_models=True)
    try:
        sv = srv.core.acquire("intentrec", None, "stable")
        assert sv.version == 1
        sv.manager.release(sv)
        move = write_models_config(tmp_path / "move.config", {"intentrec": base},
                                   labels={"intentrec": {"stable": 7, "new": 8}})
        from serving.model_config import read_config_file

        with pytest.raises(ServingError, match="version 7 of model intentrec, which is not currently"):
            srv.core.registry.apply(read_config_file(move))
        assert srv.core.registry.labels("intentrec") == {"stable": 1}  # rejected whole
    finally:
        srv.stop(grace=1.0)


def test_model_config_file_is_polled_and_reload_rpc_applies_configs(tmp_path, fixture_model):
    """--model_config_file_poll_wait_seconds re-reads the file; HandleReloadConfigRequest
    (was UNIMPLEMENTED) applies a config sent over gRPC; a config that cannot be served is
    refused and the running one stays."""
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    push_version(a, 1, fixture_model)
    push_version(b, 3, fixture_model)
    path = write_models_config(tmp_path / "models.config", {"a": a})
    srv = start_server(None, model_config_file=path, model_config_file_poll_wait_seconds=0.2)
    ch = grpc.insecure_channel(f"127.0.0.1:{srv.grpc_port}")
    try:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(ch)
        assert _predict_version(stub, model="a") == 1
        write_models_config(path, {"a": a, "b": b}, labels={"a": {"stable": 1}})
        deadline = time.monotonic() + 30
        while srv.core.registry.names() != ["a", "b"] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _predict_version(stub, model="b") == 3 and _predict_version(stub, model="a", label="stable") == 1

        from serving.model_config import read_config_file

        mstub = model_service_pb2_grpc.ModelServiceStub(ch)
        reload = model_management_pb2.ReloadConfigRequest()
        reload.config.CopyFrom(read_config_file(write_models_config(tmp_path / "b.config", {"b": b})))
        mstub.HandleReloadConfigRequest(reload, timeout=60)
        assert srv.core.registry.names() == ["b"]
        with pytest.raises(grpc.RpcError) as info:
            _predict_version(stub, model="a")
        assert info.value.code() == grpc.StatusCode.NOT_FOUND
        bad = model_management_pb2.ReloadConfigRequest()
        for name in ("b", "b"):
            bad.config.model_config_list.config.add(name=name, base_path=b, model_platform="tensorflow")
        with pytest.raises(grpc.RpcError) as info:
            mstub.HandleReloadConfigRequest(bad, timeout=60)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "Illegal to list model b multiple times" in info.value.details()
        assert _predict_version(stub, model="b") == 3
    finally:
        ch.close()
        srv.stop(grace=1.0)


TF_SERVING_FLAGS = {
    # every flag of tensorflow_model_server (model_servers/main.cc), with a sample value
    "port": "8500", "grpc_socket_path": "/tmp/s.sock", "rest_api_port": "8501", "rest_api_num_threads": "8",
    "rest_api_timeout_in_ms": "5000", "rest_api_enable_cors_support": "true", "enable_batching": "true",
    "allow_version_labels_for_unavailable_models": "true", "batching_parameters_file": "",
    "enable_per_model_batching_parameters": "true", "model_config_file": "/m.config",
    "model_config_file_poll_wait_seconds": "60", "model_name": "m", "model_base_path": "/m",
    "num_load_threads": "2", "num_unload_threads": "2", "max_num_load_retries": "3",
    "load_retry_interval_micros": "1000", "file_system_poll_wait_seconds": "2",
    "flush_filesystem_caches": "false", "tensorflow_session_parallelism": "2",
    "tensorflow_session_config_file": "/s.config", "tensorflow_intra_op_parallelism": "2",
    "tensorflow_inter_op_parallelism": "2", "use_alts_credentials": "false", "ssl_config_file": "/ssl.config",
    "platform_config_file": "/p.config", "per_process_gpu_memory_fraction": "0.5", "saved_model_tags": "serve",
    "grpc_channel_arguments": "grpc.max_connection_age_ms=2000", "grpc_max_threads": "16",
    "enable_model_warmup": "false", "num_request_iterations_for_warmup": "2",
    "monitoring_config_file": "/mon.config", "remove_unused_fields_from_bundle_metagraph": "false",
    "prefer_tflite_model": "true", "num_tflite_pools": "2", "num_tflite_interpreters_per_pool": "2",
    "enable_signature_method_name_check": "true", "xla_cpu_compilation_enabled": "true",
    "xla_gpu_compilation_enabled": "true", "enable_profiler": "true", "thread_pool_factory_config_file": "/t",
    "mixed_precision": "bfloat16", "skip_initialize_tpu": "true", "enable_grpc_healthcheck_service": "true",
    "enable_serialization_as_tensor_content": "true",
}


def test_every_tensorflow_model_server_flag_is_accepted_and_documented(caplog):
    from serving.flags import IGNORED
    from serving.server import build_parser, config_from_args, main

    args = build_parser().parse_args([f"--{k}={v}" for k, v in TF_SERVING_FLAGS.items()])
    cfg = config_from_args(args)
    assert cfg.rest_api_timeout_in_ms == 5000 and cfg.rest_api_enable_cors_support and cfg.max_num_load_retries == 3
    assert cfg.model_config_file == "/m.config" and cfg.grpc_socket_path == "/tmp/s.sock"
    assert set(cfg.ignored_flags) == {name for name, *_ in IGNORED}
    with caplog.at_level("WARNING"):
        assert main(["--version", "--bogus_flag=1"]) == 0  # unknown arguments: logged, as TF Serving does
    assert "unknown argument: --bogus_flag=1" in caplog.text

    with open(os.path.join(REPO, "docs", "serving.md"), encoding="utf-8") as f:
        docs = f.read()
    missing = [k for k in [*TF_SERVING_FLAGS, "version"] if f"`--{k}`" not in docs]
    assert not missing, f"docs/serving.md does not list {missing}"


def test_socket_path_ssl_cors_and_load_retries(tmp_path, model_base, fixture_model):
    """--grpc_socket_path, --ssl_config_file (SSLConfig with inline PEM),
    --rest_api_enable_cors_support, --max_num_load_retries and --saved_model_tags."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
            .sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    cert_pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    ssl_config = tmp_path / "ssl.config"
    ssl_config.write_text(f"server_key: {json.dumps(key_pem)}\nserver_cert: {json.dumps(cert_pem)}\n")
    sock = str(tmp_path / "grpc.sock")
    os.makedirs(os.path.join(model_base, "2"))
    with open(os.path.join(model_base, "2", "saved_model.pb"), "wb") as f:
        f.write(b"not a saved model")
    srv = start_server(model_base, port=free_port(), grpc_socket_path=sock, ssl_config_file=str(ssl_config),
                       rest_api_enable_cors_support=True, max_num_load_retries=2)
    try:
        creds = grpc.ssl_channel_credentials(root_certificates=cert_pem.encode())
        with grpc.secure_channel(f"localhost:{srv.grpc_port}", creds) as ch:
            assert _predict_version(prediction_service_pb2_grpc.PredictionServiceStub(ch)) == 1
        with grpc.insecure_channel(f"127.0.0.1:{srv.grpc_port}") as ch:
            with pytest.raises(grpc.RpcError):
                _predict_version(prediction_service_pb2_grpc.PredictionServiceStub(ch))
        with grpc.secure_channel(f"unix:{sock}", creds, options=[("grpc.ssl_target_name_override", "localhost")]) as ch:
            assert _predict_version(prediction_service_pb2_grpc.PredictionServiceStub(ch)) == 1
        with urllib.request.urlopen(f"http://127.0.0.1:{srv.rest_port}/v1/models/intentrec", timeout=30) as r:
            assert r.headers["Access-Control-Allow-Origin"] == "*"
        req = urllib.request.Request(f"http://127.0.0.1:{srv.rest_port}/v1/models/intentrec:predict",
                                     method="OPTIONS")
        with urllib.request.urlopen(req, timeout=30) as r:
            assert r.status == 200 and "POST" in r.headers["Access-Control-Allow-Methods"]
        (v2,) = srv.core.manager.statuses(2)
        assert v2.state == "END" and "Could not parse SavedModel" in v2.error.message
    finally:
        srv.stop(grace=1.0)
    srv = start_server(model_base, saved_model_tags="serve,gpu")
    try:
        assert not srv.core.manager.available
        (v1,) = srv.core.manager.statuses(1)
        assert "matching supplied tags: { gpu serve }" in v1.error.message
    finally:
        srv.stop(grace=1.0)


def test_max_num_load_retries_retries_then_gives_up(model_base, monkeypatch):
    from serving.servable import ServableVersion

    calls = []
    load = ServableVersion.load

    def failing_load(self, *args, **kwargs):
        if self.version == 2:
            calls.append(time.monotonic())
            raise ServingError(grpc.StatusCode.DATA_LOSS, "flaky storage")
        return load(self, *args, **kwargs)

    monkeypatch.setattr(ServableVersion, "load", failing_load)
    os.makedirs(os.path.join(model_base, "2"))
    with open(os.path.join(model_base, "2", "saved_model.pb"), "wb") as f:
        f.write(b"x")
    srv = start_server(model_base, max_num_load_retries=2, load_retry_interval_micros=100_000,
                       file_system_poll_wait_seconds=0)
    try:
        assert len(calls) == 3 and calls[2] - calls[0] >= 0.2  # 1 attempt + 2 retries, 0.1 s apart
        assert srv.core.manager.serving_versions() == [1]
        assert srv.core.manager.statuses(2)[0].error.message == "flaky storage"
    finally:
        srv.stop(grace=1.0)
