"""Fuzz / bad-input suite: each case gets TF Serving's status code and the server stays up."""

from __future__ import annotations

import random

import grpc
import numpy as np
import pytest
from tensorflow.core.framework import tensor_pb2, types_pb2
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    predict_pb2,
)

from serving.tensor_codec import ndarray_to_proto
from tests.serving.conftest import example_bytes, history, predict_request

INVALID = grpc.StatusCode.INVALID_ARGUMENT
NOT_FOUND = grpc.StatusCode.NOT_FOUND


def _raw_request(item_id, timestamp, action_type):
    req = predict_pb2.PredictRequest()
    req.model_spec.name = "intentrec"
    req.model_spec.signature_name = "predict_raw"
    for name, arr in (("item_id", item_id), ("timestamp", timestamp), ("action_type", action_type)):
        if arr is not None:
            req.inputs[name].CopyFrom(ndarray_to_proto(arr))
    return req


def _s(rows):
    return np.array(rows, dtype=object)


def _cases():
    ok = example_bytes(0)
    cases = {}

    def case(name, code, fragment=None):
        def deco(fn):
            cases[name] = (fn, code, fragment)
            return fn
        return deco

    @case("unknown model", NOT_FOUND, "Servable not found for request: Latest(nope)")
    def _():
        return predict_request([ok], model="nope")

    @case("unknown version", NOT_FOUND, "Specific(intentrec, 7)")
    def _():
        return predict_request([ok], version=7)

    @case("version label", INVALID, "Unrecognized servable version label")
    def _():
        r = predict_request([ok])
        r.model_spec.version_label = "stable"
        return r

    @case("missing model spec", INVALID, "Missing ModelSpec")
    def _():
        r = predict_pb2.PredictRequest()
        r.inputs["examples"].CopyFrom(ndarray_to_proto(_s([ok])))
        return r

    @case("unknown signature", INVALID, 'Serving signature name: "nope" not found in signature def')
    def _():
        return predict_request([ok], signature="nope")

    @case("unknown input name", INVALID, "input tensor alias not found in signature: bogus")
    def _():
        r = predict_request([ok])
        r.inputs["bogus"].CopyFrom(ndarray_to_proto(_s([ok])))
        return r

    @case("no inputs", INVALID, "Missing but required: {examples}")
    def _():
        r = predict_request([ok])
        del r.inputs["examples"]
        return r

    @case("missing raw input", INVALID, "Missing but required: {timestamp}")
    def _():
        return _raw_request(_s([[b"1"]]), None, _s([[b"play"]]))

    @case("wrong dtype", INVALID, "to be DT_STRING but DT_FLOAT is provided")
    def _():
        r = predict_request([ok])
        r.inputs["examples"].CopyFrom(ndarray_to_proto(np.zeros(1, np.float32)))
        return r

    @case("wrong int dtype for raw timestamp", INVALID, "to be DT_INT64 but DT_INT32")
    def _():
        return _raw_request(_s([[b"1"]]), np.zeros((1, 1), np.int32), _s([[b"play"]]))

    @case("wrong rank", INVALID, "incompatible with the signature's [-1]")
    def _():
        r = predict_request([ok])
        r.inputs["examples"].CopyFrom(ndarray_to_proto(_s([[ok]])))
        return r

    @case("scalar input", INVALID, "has shape []")
    def _():
        r = predict_request([ok])
        r.inputs["examples"].CopyFrom(ndarray_to_proto(np.array(ok, dtype=object)))
        return r

    @case("raw batch sizes differ", INVALID, "different batch sizes")
    def _():
        return _raw_request(_s([[b"1"], [b"2"]]), np.zeros((1, 1), np.int64), _s([[b"a"], [b"b"]]))

    @case("raw lengths differ", INVALID, None)
    def _():
        return _raw_request(_s([[b"1", b"2"]]), np.zeros((1, 3), np.int64), _s([[b"a", b"b"]]))

    @case("tf.Example features of unequal length", INVALID,
          "feature 'timestamp' has 29 values but 'item_id' has 30")
    def _():
        from serving.examples import make_example

        h = history(0, 30)
        ex = make_example(h["item_ids"], h["timestamps"], h["metadata"])
        del ex.features.feature["timestamp"].int64_list.value[-1]  # one short
        return predict_request([ok, ex.SerializeToString()])

    @case("raw inputs of different lengths", INVALID, "'timestamp' has length 55 but 'item_id' has 60")
    def _():  # both longer than the model's n (50): the cut used to hide the mismatch
        return _raw_request(_s([[b"1"] * 60]), np.zeros((1, 55), np.int64), _s([[b"play"] * 60]))

    @case("more examples than --max_examples_per_request", INVALID,
          "1001 examples; this server accepts at most 1000 (--max_examples_per_request)")
    def _():
        return predict_request([example_bytes(0, 3)] * 1001)

    @case("history longer than --max_history_length", INVALID,
          "examples[1] holds 10001 interactions; this server accepts at most 10000 per history "
          "(--max_history_length)")
    def _():
        return predict_request([ok, example_bytes(0, 10_001)])

    @case("raw history longer than --max_history_length", INVALID, "(--max_history_length)")
    def _():
        n = 10_001
        return _raw_request(_s([[b"1"] * n]), np.zeros((1, n), np.int64), _s([[b"play"] * n]))

    @case("corrupt tf.Example", INVALID, "Could not parse example input")
    def _():
        return predict_request([b"\x0a\xff\xff\xff garbage"])

    @case("one corrupt tf.Example among good ones", INVALID, None)
    def _():
        return predict_request([ok, b"\x0a\xff\xff\xff garbage", ok])

    @case("tensor_content of wrong length", INVALID, "tensor_content has 3 bytes")
    def _():
        r = predict_request([ok], signature="predict_raw")
        del r.inputs["examples"]
        r.inputs["item_id"].CopyFrom(ndarray_to_proto(_s([[b"1"]])))
        r.inputs["action_type"].CopyFrom(ndarray_to_proto(_s([[b"a"]])))
        t = r.inputs["timestamp"]
        t.dtype = types_pb2.DT_INT64
        t.tensor_shape.dim.add(size=1)
        t.tensor_shape.dim.add(size=1)
        t.tensor_content = b"abc"
        return r

    @case("more values than the shape holds", INVALID, "3 string values for shape [2]")
    def _():
        r = predict_request([ok])
        t = r.inputs["examples"]
        t.tensor_shape.dim[0].size = 2
        t.string_val[:] = [ok, ok, ok]
        return r

    @case("negative dimension", INVALID, "negative dimension")
    def _():
        r = predict_request([ok])
        r.inputs["examples"].tensor_shape.dim[0].size = -3
        return r

    @case("unknown rank", INVALID, "unknown rank")
    def _():
        r = predict_request([ok])
        r.inputs["examples"].tensor_shape.unknown_rank = True
        return r

    @case("unsupported dtype", INVALID, "DT_COMPLEX64")
    def _():
        r = predict_request([ok])
        t = tensor_pb2.TensorProto(dtype=types_pb2.DT_COMPLEX64)
        t.tensor_shape.dim.add(size=1)
        t.scomplex_val.extend([1.0, 2.0])
        r.inputs["examples"].CopyFrom(t)
        return r

    @case("value broadcast to a huge tensor", grpc.StatusCode.RESOURCE_EXHAUSTED, "expands to")
    def _():
        r = predict_request([ok])
        r.inputs["examples"].tensor_shape.dim[0].size = 10 ** 12
        return r

    @case("unknown output filter", INVALID, "output tensor alias not found in signature: nope")
    def _():
        r = predict_request([ok])
        r.output_filter.append("nope")
        return r

    @case("duplicate output filter", INVALID, "duplicate output tensor alias")
    def _():
        r = predict_request([ok])
        r.output_filter.extend(["top_k_ids", "top_k_ids"])
        return r

    @case("request over the message size limit", grpc.StatusCode.RESOURCE_EXHAUSTED, None)
    def _():
        return predict_request([b"x" * 1_000_000] * 5)  # 5 MB > the 4 MiB limit of this server

    return cases


CASES = _cases()


@pytest.mark.parametrize("name", list(CASES))
def test_bad_predict(stub, name):
    make, code, fragment = CASES[name]
    with pytest.raises(grpc.RpcError) as info:
        stub.Predict(make(), timeout=30)
    assert info.value.code() == code, info.value.details()
    if fragment:
        assert fragment in info.value.details()


def test_bad_metadata_and_status(stub, model_stub):
    req = get_model_metadata_pb2.GetModelMetadataRequest()
    req.model_spec.name = "intentrec"
    for fields, code in (([], INVALID), (["bogus"], INVALID)):
        req.metadata_field[:] = fields
        with pytest.raises(grpc.RpcError) as info:
            stub.GetModelMetadata(req, timeout=30)
        assert info.value.code() == code
    req.metadata_field[:] = ["signature_def"]
    req.model_spec.name = "nope"
    with pytest.raises(grpc.RpcError) as info:
        stub.GetModelMetadata(req, timeout=30)
    assert info.value.code() == NOT_FOUND

    sreq = get_model_status_pb2.GetModelStatusRequest()
    sreq.model_spec.name = "intentrec"
    sreq.model_spec.version.value = 9
    with pytest.raises(grpc.RpcError) as info:
        model_stub.GetModelStatus(sreq, timeout=30)
    assert info.value.code() == NOT_FOUND and "Could not find version 9" in info.value.details()
    sreq.model_spec.name = "nope"
    sreq.model_spec.ClearField("version")
    with pytest.raises(grpc.RpcError) as info:
        model_stub.GetModelStatus(sreq, timeout=30)
    assert info.value.code() == NOT_FOUND


def test_unimplemented_methods(stub):
    req = classification_pb2.ClassificationRequest()
    req.model_spec.name = "intentrec"
    with pytest.raises(grpc.RpcError) as info:
        stub.Classify(req, timeout=30)
    assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_garbage_request_bytes(channel):
    call = channel.unary_unary("/tensorflow.serving.PredictionService/Predict",
                               request_serializer=lambda b: b, response_deserializer=lambda b: b)
    with pytest.raises(grpc.RpcError) as info:
        call(b"\xff\xff\xff\xff\x0f garbage", timeout=30)
    assert info.value.code() != grpc.StatusCode.OK


def test_mutated_examples_fuzz(stub):
    """Random byte flips / truncations of a valid tf.Example: only OK or INVALID_ARGUMENT."""
    rng = random.Random(1234)
    base = bytearray(example_bytes(0, 10))
    codes = []
    for _ in range(40):
        b = bytearray(base)
        op = rng.random()
        if op < 0.5:
            for _ in range(rng.randint(1, 4)):
                b[rng.randrange(len(b))] = rng.randrange(256)
        elif op < 0.8:
            b = b[: rng.randrange(len(b))]
        else:
            b = bytes(rng.randrange(256) for _ in range(rng.randint(0, 64)))
        try:
            stub.Predict(predict_request([bytes(b)]), timeout=30)
            codes.append(grpc.StatusCode.OK)
        except grpc.RpcError as e:
            codes.append(e.code())
    assert set(codes) <= {grpc.StatusCode.OK, INVALID}, set(codes)
    assert INVALID in codes


def test_server_still_serves_after_fuzz(stub):
    resp = stub.Predict(predict_request([example_bytes(0)]), timeout=30)
    assert resp.model_spec.version.value == 1
    assert len(resp.outputs["top_k_ids"].string_val) == 10
