"""Health checking, and graceful shutdown of `python -m serving.server` on SIGTERM."""

from __future__ import annotations

import os
import signal
import time

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from tensorflow_serving.apis import prediction_service_pb2_grpc

from tests.serving.conftest import example_bytes, predict_request, push_version, start_server

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def test_health_follows_model_availability(tmp_path, fixture_model):
    base = str(tmp_path / "intentrec")
    os.makedirs(base)
    srv = start_server(base, rest_api_port=0, file_system_poll_wait_seconds=0.1)
    try:
        assert srv.rest_port is None  # 0 disables REST, as in TF Serving
        ch = grpc.insecure_channel(f"127.0.0.1:{srv.grpc_port}")
        health = health_pb2_grpc.HealthStub(ch)

        def check(service=""):
            return health.Check(health_pb2.HealthCheckRequest(service=service), timeout=10).status

        assert check() == NOT_SERVING and check("intentrec") == NOT_SERVING
        stub = prediction_service_pb2_grpc.PredictionServiceStub(ch)
        try:
            stub.Predict(predict_request([example_bytes(0)]), timeout=10)
            raise AssertionError("Predict should fail without a version")
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.NOT_FOUND
        push_version(base, 1, fixture_model)
        deadline = time.monotonic() + 30
        while check() != SERVING and time.monotonic() < deadline:
            time.sleep(0.05)
        assert check() == SERVING and check("intentrec") == SERVING
        assert stub.Predict(predict_request([example_bytes(0)]), timeout=10).model_spec.version.value == 1
        ch.close()
    finally:
        srv.stop(grace=1.0)


def test_sigterm_drains_in_flight_request(server_process):
    """The subprocess batches with an 8 s timeout, so a lone request stays in flight; SIGTERM
    then must let it finish (OK, without waiting out the timeout), and the process exit 0."""
    address = server_process.wait_ready()
    ch = grpc.insecure_channel(address)
    health = health_pb2_grpc.HealthStub(ch)
    assert health.Check(health_pb2.HealthCheckRequest(service="intentrec"), timeout=30).status == SERVING
    stub = prediction_service_pb2_grpc.PredictionServiceStub(ch)
    t0 = time.monotonic()
    future = stub.Predict.future(predict_request([example_bytes(0)]), timeout=60)
    time.sleep(1.5)
    assert not future.done()
    os.kill(server_process.proc.pid, signal.SIGTERM)
    resp = future.result(timeout=60)
    assert resp.model_spec.version.value == 1 and len(resp.outputs["top_k_ids"].string_val) == 10
    assert time.monotonic() - t0 < 7.0, "shutdown should flush the batch instead of waiting its timeout"
    assert server_process.proc.wait(timeout=30) == 0, server_process.log()
    try:
        stub.Predict(predict_request([example_bytes(0)]), timeout=5)
        raise AssertionError("the server should be gone")
    except grpc.RpcError as e:
        assert e.code() == grpc.StatusCode.UNAVAILABLE
    ch.close()
    assert "Server stopped" in server_process.log()
