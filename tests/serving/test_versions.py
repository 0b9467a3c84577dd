"""Hot reload under load, version policy, corrupt / half-written versions, drain on unload."""

from __future__ import annotations

import os
import shutil
import threading
import time

import grpc
import pytest
from tensorflow_serving.apis import get_model_status_pb2, prediction_service_pb2_grpc

from tests.serving.conftest import example_bytes, predict_request, push_version, start_server

State = get_model_status_pb2.ModelVersionStatus


def _wait(cond, timeout=30.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _states(srv):
    return {sv.version: (sv.state, sv.error.message if sv.error else "")
            for sv in srv.core.manager.statuses()}


def test_hot_swap_under_load_has_no_failed_request(model_base, fixture_model):
    """At least 2000 requests from 8 threads, and the load goes on until both pushed
    versions have been swapped in (on a busy machine loading under load takes seconds)."""
    srv = start_server(model_base, file_system_poll_wait_seconds=0.05)
    total, threads = 2000, 8
    swapped = threading.Event()
    per_thread = total // threads
    results = [[] for _ in range(threads)]
    errors = []
    done = [0]
    lock = threading.Lock()
    examples = [example_bytes(s, 20) for s in range(threads)]
    try:
        ch = grpc.insecure_channel(f"127.0.0.1:{srv.grpc_port}")
        stub = prediction_service_pb2_grpc.PredictionServiceStub(ch)

        def worker(i):
            req = predict_request([examples[i]])
            sent = 0
            while sent < per_thread or not swapped.is_set():
                sent += 1
                try:
                    resp = stub.Predict(req, timeout=30)
                    results[i].append(resp.model_spec.version.value)
                except grpc.RpcError as e:  # pragma: no cover - the assertion reports it
                    errors.append((e.code(), e.details()))
                with lock:
                    done[0] += 1

        ts = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
        for t in ts:
            t.start()
        _wait(lambda: done[0] >= total // 4, what="first quarter")
        push_version(model_base, 2, fixture_model)
        _wait(lambda: 2 in srv.core.manager.serving_versions(), what="v2")
        _wait(lambda: done[0] >= total * 5 // 8, what="more requests")
        push_version(model_base, 3, fixture_model)
        _wait(lambda: srv.core.manager.serving_versions() == [3], what="v3")
        swapped.set()
        for t in ts:
            t.join(120)
        ch.close()
        assert not errors, errors[:5]
        versions = [v for r in results for v in r]
        assert len(versions) == done[0] >= total
        assert set(versions) <= {1, 2, 3}
        assert 2 in versions or 3 in versions, "the swap never happened under load"
        for r in results:  # latest policy: a thread never goes back to an older version
            assert r == sorted(r)
        _wait(lambda: srv.core.manager.serving_versions() == [3], what="v3 served")
        _wait(lambda: _states(srv)[1][0] == "END" and _states(srv)[2][0] == "END", what="unload")
        assert all(not err for _, err in _states(srv).values())
    finally:
        srv.stop(grace=1.0)


def test_retired_version_unloads_only_after_in_flight_requests_drain(model_base, fixture_model):
    from serving.model_manager import ModelManager

    mgr = ModelManager("intentrec", model_base, poll_wait_seconds=0)
    mgr.start()
    try:
        held = mgr.acquire()  # an in-flight request on v1
        assert held.version == 1
        push_version(model_base, 2, fixture_model)
        mgr.poll_once()
        assert mgr.serving_versions() == [2]
        current = mgr.acquire()
        assert current.version == 2
        mgr.release(current)
        time.sleep(0.3)
        assert held.state == "UNLOADING" and held.signatures  # still usable by its holder
        mgr.release(held)
        _wait(lambda: held.state == "END", what="v1 unloaded")
        assert held.loaded is None
    finally:
        mgr.stop()


@pytest.mark.filterwarnings("ignore:Unexpected end-group tag")
def test_corrupt_and_half_written_versions_are_reported_not_served(model_base, fixture_model):
    srv = start_server(model_base)
    try:
        ch = grpc.insecure_channel(f"127.0.0.1:{srv.grpc_port}")
        stub = prediction_service_pb2_grpc.PredictionServiceStub(ch)
        from tensorflow_serving.apis import model_service_pb2_grpc

        mstub = model_service_pb2_grpc.ModelServiceStub(ch)
        # v2: garbage saved_model.pb.
        os.makedirs(os.path.join(model_base, ".tmp2"))
        with open(os.path.join(model_base, ".tmp2", "saved_model.pb"), "wb") as f:
            f.write(b"\x00not a saved model\xff" * 10)
        os.rename(os.path.join(model_base, ".tmp2"), os.path.join(model_base, "2"))
        # v3: half-written (saved_model.pb without its variables).
        v3 = os.path.join(model_base, "3")
        shutil.copytree(fixture_model, v3, ignore=shutil.ignore_patterns("variables*"))
        # v4: still being copied (no saved_model.pb yet).
        os.makedirs(os.path.join(model_base, "4", "variables"))
        _wait(lambda: {2, 3} <= {v for v, (s, _) in _states(srv).items() if s == "END"},
              what="v2/v3 failed")
        _wait(lambda: 4 in _states(srv), what="v4 seen")

        req = get_model_status_pb2.GetModelStatusRequest()
        req.model_spec.name = "intentrec"
        status = {s.version: s for s in mstub.GetModelStatus(req, timeout=30).model_version_status}
        assert status[1].state == State.AVAILABLE
        for v in (2, 3):
            assert status[v].state == State.END
            assert status[v].status.error_code != 0 and status[v].status.error_message
        assert status[4].state == State.START
        assert stub.Predict(predict_request([example_bytes(0)]), timeout=30).model_spec.version.value == 1

        # Unchanged failures are not retried; fixing v3's files makes it load and serve.
        loads_before = srv.core.manager.statuses(3)[0]
        time.sleep(0.5)
        assert srv.core.manager.statuses(3)[0] is loads_before
        shutil.copytree(os.path.join(fixture_model, "variables"), os.path.join(v3, "variables"))
        _wait(lambda: srv.core.manager.serving_versions() == [3], what="v3 served after fix")
        resp = stub.Predict(predict_request([example_bytes(0)]), timeout=30)
        assert resp.model_spec.version.value == 3
        assert _states(srv)[2][0] == "END"  # still failed, never served
        ch.close()
    finally:
        srv.stop(grace=1.0)


def test_failed_warmup_fails_the_load(model_base, fixture_model, tmp_path):
    from serving.examples import make_example
    from serving.warmup import write_warmup_requests

    bad = str(tmp_path / "bad")
    shutil.copytree(fixture_model, bad)
    write_warmup_requests(bad, [make_example(["1"])], signature_name="no_such_signature")
    srv = start_server(model_base)
    try:
        push_version(model_base, 2, bad)
        _wait(lambda: _states(srv).get(2, ("", ""))[0] == "END", what="v2 failed")
        assert "Failed to warm up model" in _states(srv)[2][1]
        assert srv.core.manager.serving_versions() == [1]
    finally:
        srv.stop(grace=1.0)


def test_version_policies(model_base, fixture_model):
    from serving.errors import ServingError
    from serving.model_manager import ModelManager, VersionPolicy

    on_disk = [1, 2, 5, 9]
    for policy, want in (("latest", {9}), ("latest:2", {5, 9}), ("all", set(on_disk)),
                         ("specific:1,2,7", {1, 2}), ("specific:7", set())):
        assert VersionPolicy.parse(policy).select(on_disk) == want, policy
    with pytest.raises(ValueError):
        VersionPolicy.parse("newest")
    assert VersionPolicy.parse("1,3") == VersionPolicy("specific", versions=(1, 3))

    push_version(model_base, 2, fixture_model)
    push_version(model_base, 5, fixture_model)
    mgr = ModelManager("intentrec", model_base, policy="latest:2", poll_wait_seconds=0)
    mgr.start()
    try:
        assert mgr.serving_versions() == [2, 5]
        for version, want in ((None, 5), (2, 2)):  # unversioned requests get the latest
            sv = mgr.acquire(version)
            assert sv.version == want
            mgr.release(sv)
        with pytest.raises(ServingError):
            mgr.acquire(1)
    finally:
        mgr.stop()
    mgr = ModelManager("intentrec", model_base, policy="specific:7", poll_wait_seconds=0)
    mgr.start()
    try:
        assert mgr.serving_versions() == [] and not mgr.available
    finally:
        mgr.stop()


def test_version_dirs_that_are_not_int64_are_ignored(model_base, fixture_model):
    """Issue 13 #1: a directory named 99999999999999999999 (over int64) must not become the
    served version (TF Serving ignores names that do not parse as int64)."""
    from serving.versions import latest_version, parse_version

    assert parse_version("9223372036854775807") == 2 ** 63 - 1
    for name in ("99999999999999999999", "9223372036854775808", "-1", "+2", " 3", "1e3", "٣", ""):
        assert parse_version(name) is None, name
    for name in ("99999999999999999999", "٣", "7.tmp"):
        shutil.copytree(fixture_model, os.path.join(model_base, name))
    assert latest_version(model_base) == 1
    srv = start_server(model_base)
    try:
        ch = grpc.insecure_channel(f"127.0.0.1:{srv.grpc_port}")
        stub = prediction_service_pb2_grpc.PredictionServiceStub(ch)
        from tensorflow_serving.apis import model_service_pb2_grpc

        assert stub.Predict(predict_request([example_bytes(0)]), timeout=30).model_spec.version.value == 1
        req = get_model_status_pb2.GetModelStatusRequest()
        req.model_spec.name = "intentrec"
        status = model_service_pb2_grpc.ModelServiceStub(ch).GetModelStatus(req, timeout=30)
        assert [s.version for s in status.model_version_status] == [1]
        ch.close()
    finally:
        srv.stop(grace=1.0)



def test_status_lists_newest_version_first(model_base, fixture_model):
    """Issue 13 #5: after a swap, model_version_status[0] is the served version (TF Serving's
    ServableStateMonitor orders versions newest first); the unloaded one stays listed as END."""
    srv = start_server(model_base)
    try:
        push_version(model_base, 2, fixture_model)
        _wait(lambda: _states(srv).get(1, ("",))[0] == "END", what="v1 unloaded")
        resp = srv.core.status_for("intentrec", None)
        assert [(s.version, s.state) for s in resp.model_version_status] == [
            (2, State.AVAILABLE), (1, State.END)]
    finally:
        srv.stop(grace=1.0)
