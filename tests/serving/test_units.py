"""Unit tests: tensor codec, batching, warm-up files, contract, flags."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import tensorflow as tf

from serving import contract, tensor_codec
from serving.errors import ServingError
from tests.serving.conftest import example_bytes


@pytest.mark.parametrize("arr", [
    np.arange(12, dtype=np.float32).reshape(3, 4),
    np.arange(6, dtype=np.int64).reshape(2, 3) - 3,
    np.array([True, False]),
    np.array([[b"a", b""], [b"\xff\x00", b"long" * 100]], dtype=object),
    np.array([], dtype=np.float64).reshape(0, 5),
    np.array(3.5, dtype=np.float16),
    np.array([1, 2], dtype=np.uint8),
])
def test_codec_roundtrip_agrees_with_tensorflow(arr):
    tp = tensor_codec.ndarray_to_proto(arr)
    back = tensor_codec.proto_to_ndarray(tp)
    ref = tf.make_ndarray(tp)
    assert back.shape == arr.shape == ref.shape
    assert back.tolist() == arr.tolist() == ref.tolist()
    # ...and decodes what tf.make_tensor_proto produces (typed *_val fields, broadcast).
    tp2 = tf.make_tensor_proto(arr)
    assert tensor_codec.proto_to_ndarray(tp2).tolist() == arr.tolist()


def test_codec_typed_fields_and_broadcast():
    tp = tf.make_tensor_proto([1.5], shape=[2, 3])  # one value, repeated like TF does
    np.testing.assert_array_equal(tensor_codec.proto_to_ndarray(tp), np.full((2, 3), 1.5, np.float32))
    tp = tensor_codec.ndarray_to_proto(np.zeros(0, np.int32))
    tp.tensor_shape.dim[0].size = 4
    tp.int_val.extend([7, 8])
    assert tensor_codec.proto_to_ndarray(tp).tolist() == [7, 8, 8, 8]
    s = tensor_codec.ndarray_to_proto(np.array(["é", "x"], dtype=object))
    assert list(s.string_val) == ["é".encode(), b"x"]
    with pytest.raises(ServingError):
        bad = tensor_codec.ndarray_to_proto(np.zeros(2, np.float32))
        bad.tensor_content = b"123"
        tensor_codec.proto_to_ndarray(bad)


def test_batcher_merges_and_splits(fixture_model):
    from serving.batching import Batcher
    from serving.model_manager import ServableVersion

    sv = ServableVersion("intentrec", 1, fixture_model)
    sv.load()
    sig = sv.signatures["serving_default"]
    names = sig.output_names
    inputs = [np.array([example_bytes(s, 5 + s)] * (1 + s % 3), dtype=object) for s in range(12)]
    expected = [sig.run({"examples": x}, names) for x in inputs]
    batcher = Batcher(max_batch_size=8, batch_timeout_micros=50_000, num_batch_threads=1)
    results = [None] * len(inputs)
    barrier = threading.Barrier(len(inputs))

    def go(i):
        barrier.wait()
        results[i] = batcher.run("k", {"examples": inputs[i]}, len(inputs[i]),
                                 lambda merged: sig.run(merged, names))

    threads = [threading.Thread(target=go, args=(i,)) for i in range(len(inputs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    batcher.close()
    assert batcher.tasks_run == len(inputs) and batcher.batches_run < len(inputs)
    for got, want in zip(results, expected):
        assert got["top_k_ids"].tolist() == want["top_k_ids"].tolist()
        np.testing.assert_allclose(got["top_k_scores"], want["top_k_scores"], rtol=1e-5)

    # A bad request merged with good ones fails alone.
    batcher = Batcher(max_batch_size=8, batch_timeout_micros=100_000, num_batch_threads=1)
    payloads = [example_bytes(0), b"\x0a\xff\xff\xff garbage", example_bytes(1)]
    outcome = [None] * 3

    def go2(i):
        try:
            batcher.run("k", {"examples": np.array([payloads[i]], dtype=object)}, 1,
                        lambda merged: sig.run(merged, names))
            outcome[i] = "ok"
        except ServingError as e:
            outcome[i] = e.code.name

    threads = [threading.Thread(target=go2, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    batcher.close()
    assert outcome == ["ok", "INVALID_ARGUMENT", "ok"]
    with pytest.raises(ServingError):
        batcher.run("k", {"examples": inputs[0]}, 1, lambda m: {})  # closed


def test_warmup_roundtrip(tmp_path):
    from serving.examples import make_example
    from serving.warmup import read_warmup_requests, write_warmup_requests

    exs = [make_example(["1", "2"], [10, 20], {"action_type": ["play", "rate"]}) for _ in range(5)]
    path = write_warmup_requests(str(tmp_path), exs, batch_size=2)
    assert path.endswith("assets.extra/tf_serving_warmup_requests")
    logs = read_warmup_requests(str(tmp_path))
    assert len(logs) == 3
    req = logs[0].predict_log.request
    assert req.model_spec.signature_name == "serving_default"
    assert len(req.inputs["examples"].string_val) == 2
    parsed = tf.train.Example.FromString(req.inputs["examples"].string_val[0])
    assert list(parsed.features.feature["item_id"].bytes_list.value) == [b"1", b"2"]
    assert list(parsed.features.feature["timestamp"].int64_list.value) == [10, 20]
    assert read_warmup_requests(str(tmp_path / "none")) == []


def test_contract_helpers(tmp_path):
    assert contract.intent_output_name("genre") == "intent_genre"
    with pytest.raises(ValueError):
        contract.intent_output_name("attention")
    assert contract.intent_heads_from_outputs(
        ["intent_genre", "intent_embedding", "intent_attention", "top_k_ids"]) == ["genre"]
    meta = contract.make_metadata(["genre"], {"genre": ["a", "b"]}, {"1": "One"}, k=5)
    contract.write_metadata(str(tmp_path), meta)
    assert contract.read_metadata(str(tmp_path)) == meta
    with pytest.raises(ValueError):
        contract.make_metadata(["genre"], {"other": ["x"]})


def test_server_flags(tmp_path):
    from serving.server import build_parser, config_from_args, parse_channel_arguments

    params = tmp_path / "batching.txt"
    params.write_text("max_batch_size { value: 64 }\nbatch_timeout_micros { value: 2000 }\n")
    args = build_parser().parse_args([
        "--model_base_path=/m", "--enable_batching", f"--batching_parameters_file={params}",
        "--model_version_policy=latest:2", "--rest_api_port=0"])
    cfg = config_from_args(args)
    assert cfg.enable_batching and cfg.max_batch_size == 64 and cfg.batch_timeout_micros == 2000
    assert cfg.port == 8500 and cfg.host == "127.0.0.1" and cfg.file_system_poll_wait_seconds == 1
    assert cfg.rest_api_port == 0 and cfg.model_version_policy == "latest:2"
    assert not config_from_args(build_parser().parse_args(
        ["--model_base_path=/m", "--enable_batching=false"])).enable_batching
    assert parse_channel_arguments("grpc.max_concurrent_streams=100,grpc.foo=bar") == [
        ("grpc.max_concurrent_streams", 100), ("grpc.foo", "bar")]


def test_flat_call_path_matches_public_call(fixture_model):
    """The server calls signatures through their flat calling convention; the fixture's
    predict_raw declares its inputs out of alphabetical order, two of them DT_STRING."""
    from serving.model_manager import ServableVersion
    from tests.serving.conftest import history

    sv = ServableVersion("intentrec", 1, fixture_model)
    sv.load()
    sig = sv.signatures["predict_raw"]
    assert sig._flat is not None and sig._flat[0] == ["action_type", "item_id", "timestamp"]
    h = history(7, 12)
    inputs = {"item_id": np.array([h["item_ids"]], dtype=object),
              "timestamp": np.array([h["timestamps"]], dtype=np.int64),
              "action_type": np.array([[a.encode() for a in h["metadata"]["action_type"]]], dtype=object)}
    fast = sig.run(inputs, sig.output_names)
    public = {k: v.numpy() for k, v in sig.fn(**inputs).items()}
    assert set(fast) == set(public)
    for k in fast:
        assert fast[k].tolist() == public[k].tolist(), k


def test_rest_response_is_one_write():
    """Head and body written apart leave the body to Nagle until the client's delayed ACK
    (~40 ms per keep-alive request with Python's http.client)."""
    import asyncio

    from serving.http_server import HttpServer

    class Writer:
        def __init__(self):
            self.writes = []

        def write(self, data):
            self.writes.append(data)

        async def drain(self):
            pass

    server = HttpServer(lambda request: (200, [], b""), "127.0.0.1", 0, num_threads=1, max_body_bytes=1 << 20,
                        request_timeout=5.0, error_body=lambda m: m.encode())
    try:
        writer = Writer()
        asyncio.run(server._respond(writer, "POST", 200, [("Content-Type", "application/json")], b'{"a": 1}', True))
        assert len(writer.writes) == 1
        assert writer.writes[0].startswith(b"HTTP/1.1 200 OK\r\n") and writer.writes[0].endswith(b'\r\n\r\n{"a": 1}')
        head = Writer()
        asyncio.run(server._respond(head, "HEAD", 200, [], b'{"a": 1}', True))
        assert len(head.writes) == 1 and head.writes[0].endswith(b"\r\n\r\n")
    finally:
        server.close()
