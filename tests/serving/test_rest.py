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
