"""TF Serving's REST API: predict (row / columnar, b64), status, metadata, errors."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request

import numpy as np
import pytest

from serving.tensor_codec import proto_to_ndarray
from tests.serving.conftest import K, example_bytes, history, predict_request


def _call(server, path, body=None, method=None, raw: bytes | None = None):
    url = f"http://127.0.0.1:{server.rest_port}{path}"
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(url, data=data, method=method or ("POST" if data is not None else "GET"))
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_predict_row_format_b64_matches_grpc(server, stub):
    examples = [example_bytes(0), example_bytes(1)]
    ref = {k: proto_to_ndarray(v) for k, v in stub.Predict(predict_request(examples), timeout=30).outputs.items()}
    body = {"signature_name": "serving_default",
            "instances": [{"b64": base64.b64encode(e).decode()} for e in examples]}
    status, doc = _call(server, "/v1/models/intentrec:predict", body)
    assert status == 200, doc
    preds = doc["predictions"]
    assert len(preds) == 2
    assert preds[0]["top_k_ids"] == [b.decode() for b in ref["top_k_ids"][0]]
    np.testing.assert_allclose(preds[1]["top_k_scores"], ref["top_k_scores"][1], rtol=1e-6)
    assert preds[0]["primary_intent"] == ref["primary_intent"][0].decode()
    # Named single input + versioned URL.
    body = {"instances": [{"examples": {"b64": base64.b64encode(examples[0]).decode()}}]}
    status, doc = _call(server, "/v1/models/intentrec/versions/1:predict", body)
    assert status == 200 and doc["predictions"][0]["top_k_ids"] == preds[0]["top_k_ids"]


def test_predict_raw_signature_row_and_columnar(server):
    h = history(2, 6)
    row = {"item_id": h["item_ids"], "timestamp": h["timestamps"], "action_type": h["metadata"]["action_type"]}
    status, rows = _call(server, "/v1/models/intentrec:predict",
                         {"signature_name": "predict_raw", "instances": [row, row]})
    assert status == 200, rows
    assert len(rows["predictions"]) == 2 and len(rows["predictions"][0]["top_k_ids"]) == K
    status, cols = _call(server, "/v1/models/intentrec:predict",
                         {"signature_name": "predict_raw", "inputs": {k: [v] for k, v in row.items()}})
    assert status == 200, cols
    assert cols["outputs"]["top_k_ids"][0] == rows["predictions"][0]["top_k_ids"]
    assert np.asarray(cols["outputs"]["intent_attention"]).shape == (1, 2)


def test_status_and_metadata(server):
    status, doc = _call(server, "/v1/models/intentrec")
    assert status == 200
    assert doc == {"model_version_status": [
        {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}]}
    status, doc = _call(server, "/v1/models/intentrec/versions/1/metadata")
    assert status == 200
    assert doc["model_spec"]["version"] == "1"
    sigs = doc["metadata"]["signature_def"]["signature_def"]
    assert sigs["serving_default"]["inputs"]["examples"]["dtype"] == "DT_STRING"


@pytest.mark.parametrize("path,body,raw,code,fragment", [
    ("/v1/models/nope:predict", {"instances": []}, None, 404, "Servable not found"),
    ("/v1/models/intentrec/versions/9:predict", {"instances": []}, None, 404, "Specific(intentrec, 9)"),
    ("/v1/models/intentrec:predict", None, b"{not json", 400, "JSON Parse error"),
    ("/v1/models/intentrec:predict", {"signature_name": "nope", "instances": []}, None, 400,
     "Serving signature name"),
    ("/v1/models/intentrec:predict", {"instances": ["not base64 bytes"]}, None, 400, "parse example"),
    ("/v1/models/intentrec:predict", {"instances": [{"b64": "%%%"}]}, None, 400, "base64"),
    ("/v1/models/intentrec:predict", {"foo": 1}, None, 400, "Missing 'inputs' or 'instances'"),
    ("/v1/models/intentrec:predict", {"signature_name": "predict_raw",
                                      "instances": [{"item_id": ["1"], "timestamp": [1.5],
                                                     "action_type": ["play"]}]}, None, 400, "integers"),
    ("/v1/models/intentrec:predict", {"signature_name": "predict_raw",
                                      "inputs": {"item_id": [["1", "2"], ["3"]], "timestamp": [[1, 2], [3]],
                                                 "action_type": [["a", "b"], ["c"]]}}, None, 400, None),
    ("/v1/models/intentrec:classify", {"examples": []}, None, 501, "not implemented"),
    ("/v2/whatever", None, None, 404, "Malformed request"),
])
def test_rest_errors(server, path, body, raw, code, fragment):
    status, doc = _call(server, path, body, raw=raw)
    assert status == code, doc
    assert "error" in doc
    if fragment:
        assert fragment.lower() in doc["error"].lower()


def test_rest_body_over_limit_and_server_survives(server):
    import http.client

    # Announce a 5 MB body (over this server's 4 MiB limit): refused before it is read.
    conn = http.client.HTTPConnection("127.0.0.1", server.rest_port, timeout=30)
    conn.putrequest("POST", "/v1/models/intentrec:predict")
    conn.putheader("Content-Length", str(5 * 1024 * 1024))
    conn.endheaders()
    resp = conn.getresponse()
    assert resp.status == 413 and "exceeds the limit" in json.loads(resp.read())["error"]
    conn.close()
    status, doc = _call(server, "/v1/models/intentrec:predict",
                        {"instances": [{"b64": base64.b64encode(example_bytes(0)).decode()}]})
    assert status == 200


def _deep(n: int) -> bytes:
    return b'{"instances": ' + b"[" * n + b"]" * n + b"}"


RAW_ROW = {"item_id": ["1", "2"], "timestamp": [10, 20], "action_type": ["play", "rate"]}


def _raw(**changes):
    return {"signature_name": "predict_raw", "instances": [{**RAW_ROW, **changes}]}


@pytest.mark.parametrize("method,path,body,raw,code,fragment", [
    # Issue 13 #7: client mistakes are 400 with a JSON error, never a 500 with a Python exception.
    ("POST", "/v1/models/intentrec:predict", {"signature_name": "intentrec_metadata", "inputs": {}}, None,
     400, "Failed to get input map for signature: intentrec_metadata"),
    ("POST", "/v1/models/intentrec:predict", None, _deep(100_000), 400, "nesting too deep"),
    ("POST", "/v1/models/intentrec:predict", None, _deep(200), 400, "nested deeper than 64"),
    ("POST", "/v1/models/intentrec:predict", None, b"", 400, "The document is empty"),
    ("POST", "/v1/models/intentrec:predict", None, b"[1, 2]", 400, "Is not object"),
    ("POST", "/v1/models/intentrec:predict", {"signature_name": 7, "instances": [1]}, None, 400,
     "'signature_name' key must be a string"),
    ("POST", "/v1/models/intentrec:predict", {"instances": []}, None, 400, "No values in 'instances' array"),
    ("POST", "/v1/models/intentrec:predict", {"signature_name": "predict_raw", "instances": [RAW_ROW, {}]},
     None, 400, "Failed to process element: 1 of 'instances' list"),
    ("GET", "/v1/models/intentrec/bogus", None, None, 400, "Malformed request: GET /v1/models/intentrec/bogus"),
    ("GET", "/v1/models/intentrec/versions/x", None, None, 400, "Malformed request"),
    ("GET", "/v1/models/intentrec/versions/99999999999999999999", None, None, 400, "Failed to convert version"),
    ("GET", "/v1/models", None, None, 400, "Missing model name in request."),
    ("POST", "/v1/models/intentrec", {"instances": [1]}, None, 400, "Malformed request: POST"),
    ("PUT", "/v1/models/intentrec:predict", {"instances": [1]}, None, 400, "Malformed request: PUT"),
    ("DELETE", "/v1/models/intentrec", None, None, 400, "Malformed request: DELETE"),
    # Issue 13 #8: values of the wrong JSON type are refused, not coerced (null -> NaN, "5" -> 5).
    ("POST", "/v1/models/intentrec:predict", _raw(timestamp=[10, None]), None, 400,
     "Failed to process element: 0 key: timestamp of 'instances' list. Error: JSON Value: null Type: "
     "Null is not of expected type: int64"),
    ("POST", "/v1/models/intentrec:predict", _raw(timestamp=[10, "20"]), None, 400,
     'JSON Value: "20" Type: String is not of expected type: int64'),
    ("POST", "/v1/models/intentrec:predict", _raw(timestamp=[10, True]), None, 400,
     "JSON Value: true Type: True is not of expected type: int64"),
    ("POST", "/v1/models/intentrec:predict", _raw(timestamp=[10, 20.0]), None, 400,
     "Type: Number is not of expected type: int64"),
    ("POST", "/v1/models/intentrec:predict", _raw(item_id=[1193, 2]), None, 400,
     "JSON Value: 1193 Type: Number is not of expected type: string"),
    ("POST", "/v1/models/intentrec:predict", _raw(item_id=["1", "2", "3"]), None, 400,
     "'action_type' has length 2 but 'item_id' has 3"),
])
def test_rest_client_mistakes_are_json_400s(server, method, path, body, raw, code, fragment):
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", server.rest_port, timeout=30)
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    conn.request(method, path, body=data, headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    doc = json.loads(resp.read())
    conn.close()
    assert resp.status == code, doc
    assert resp.getheader("Content-Type") == "application/json"
    assert fragment in doc["error"], doc["error"]


def test_rest_paths_as_tf_serving_parses_them(server):
    """Issue 13 #7: paths match case-insensitively and names are URL-decoded (TF Serving's
    http_rest_api_util.cc); HEAD gets a JSON error header and no body; the Server header
    does not advertise the Python version."""
    import http.client

    body = {"instances": [{"b64": base64.b64encode(example_bytes(0)).decode()}]}
    status, doc = _call(server, "/V1/Models/intentrec")
    assert status == 200 and doc["model_version_status"][0]["state"] == "AVAILABLE"
    status, doc = _call(server, "/v1/models/intent%72ec/Versions/1/METADATA")
    assert status == 200 and doc["model_spec"]["version"] == "1"
    status, doc = _call(server, "/v1/models/intent%72ec:PREDICT", body)
    assert status == 200 and len(doc["predictions"][0]["top_k_ids"]) == K
    status, doc = _call(server, "/v1/models/INTENTREC")  # the name itself is case-sensitive
    assert status == 404

    conn = http.client.HTTPConnection("127.0.0.1", server.rest_port, timeout=30)
    conn.request("HEAD", "/v1/models/intentrec")
    resp = conn.getresponse()
    assert resp.status == 400 and resp.getheader("Content-Type") == "application/json"
    assert resp.read() == b""
    assert "python" not in (resp.getheader("Server") or "").lower()
    conn.close()


def test_json_float_inputs_take_numbers_only():
    """Issue 13 #8: for a DT_FLOAT input numpy turned null, "1.5" and true into NaN, 1.5 and
    1.0; TF Serving (json_tensor.cc) refuses them, and so do we."""
    from types import SimpleNamespace

    from serving.errors import ServingError
    from serving.rest_json import json_to_array
    from serving.tensor_codec import DT

    spec = SimpleNamespace(dtype=DT.DT_FLOAT)
    np.testing.assert_array_equal(json_to_array([[1, 2.5]], spec), np.array([[1, 2.5]], np.float32))
    for bad, fragment in ((None, "Type: Null"), ("1.5", "Type: String"), (True, "Type: True"),
                          ({"b64": "AA=="}, "Type: Object"), (2 ** 25, "without loss of precision"),
                          (1e39, "without loss of precision")):
        with pytest.raises(ServingError) as info:
            json_to_array([[1.0, bad]], spec)
        assert info.value.code.name == "INVALID_ARGUMENT" and fragment in info.value.message, bad
    with pytest.raises(ServingError, match="unexpected size"):
        json_to_array([[1.0, 2.0], [3.0]], spec)
