"""Predict / GetModelMetadata / GetModelStatus over real gRPC on loopback, and the client."""

from __future__ import annotations

import json

import numpy as np
import pytest
from google.protobuf import wrappers_pb2
from tensorflow_serving.apis import get_model_metadata_pb2, get_model_status_pb2

from serving import contract
from serving.tensor_codec import ndarray_to_proto, proto_to_ndarray
from tests.serving.conftest import K, NUM_ITEMS, example_bytes, history, predict_request


def _outputs(resp):
    return {k: proto_to_ndarray(v) for k, v in resp.outputs.items()}


def test_predict_matches_in_process_savedmodel(stub, fixture_model):
    import tensorflow as tf

    examples = [example_bytes(s) for s in range(3)]
    resp = stub.Predict(predict_request(examples), timeout=30)
    assert resp.model_spec.name == "intentrec"
    assert resp.model_spec.version.value == 1
    assert resp.model_spec.signature_name == "serving_default"
    out = _outputs(resp)
    heads = ["action_type", "genre"]
    assert set(out) == set(contract.expected_outputs(heads))
    assert out["top_k_ids"].shape == (3, K) and out["top_k_ids"].dtype == object
    assert out["top_k_scores"].dtype == np.float32
    assert np.all(np.diff(out["top_k_scores"], axis=1) <= 0)
    np.testing.assert_allclose(out["intent_attention"].sum(axis=1), 1.0, rtol=1e-5)
    assert out["primary_intent"].shape == (3,)

    ref = tf.saved_model.load(fixture_model).signatures["serving_default"](examples=tf.constant(examples))
    for name, arr in ref.items():
        if arr.dtype == tf.string:
            assert out[name].tolist() == arr.numpy().tolist(), name
        else:
            np.testing.assert_allclose(out[name], arr.numpy(), rtol=1e-6, err_msg=name)


def test_raw_signature_agrees_with_examples(stub):
    from serving.examples import left_pad

    hs = [history(s, length) for s, length in ((1, 12), (2, 30))]
    req = predict_request([example_bytes(1, 12), example_bytes(2, 30)])
    ref = _outputs(stub.Predict(req, timeout=30))

    raw = predict_request([], signature="predict_raw")
    del raw.inputs["examples"]
    raw.inputs["item_id"].CopyFrom(ndarray_to_proto(left_pad([h["item_ids"] for h in hs], None, object)))
    raw.inputs["timestamp"].CopyFrom(ndarray_to_proto(left_pad([h["timestamps"] for h in hs], None, np.int64)))
    raw.inputs["action_type"].CopyFrom(ndarray_to_proto(
        left_pad([[a.encode() for a in h["metadata"]["action_type"]] for h in hs], None, object)))
    out = _outputs(stub.Predict(raw, timeout=30))
    assert out["top_k_ids"].tolist() == ref["top_k_ids"].tolist()
    np.testing.assert_allclose(out["top_k_scores"], ref["top_k_scores"], rtol=1e-5)


def test_output_filter_and_specific_version(stub):
    req = predict_request([example_bytes(0)], version=1)
    req.output_filter.extend(["top_k_ids", "primary_intent"])
    resp = stub.Predict(req, timeout=30)
    assert set(resp.outputs) == {"top_k_ids", "primary_intent"}
    assert resp.model_spec.version.value == 1


def test_empty_batch(stub):
    out = _outputs(stub.Predict(predict_request([]), timeout=30))
    assert out["top_k_ids"].shape == (0, K)
    assert out["intent_attention"].shape == (0, 2)
    assert out["primary_intent"].shape == (0,)


def test_large_batch_within_limit(stub):
    examples = [example_bytes(s % 7) for s in range(500)]
    out = _outputs(stub.Predict(predict_request(examples), timeout=60))
    assert out["top_k_ids"].shape == (500, K)


def test_get_model_metadata(stub):
    req = get_model_metadata_pb2.GetModelMetadataRequest()
    req.model_spec.name = "intentrec"
    req.metadata_field.append("signature_def")
    resp = stub.GetModelMetadata(req, timeout=30)
    assert resp.model_spec.version.value == 1
    sdm = get_model_metadata_pb2.SignatureDefMap()
    assert resp.metadata["signature_def"].Unpack(sdm)
    sigs = sdm.signature_def
    assert {"serving_default", "predict_raw", "intentrec_metadata"} <= set(sigs)
    assert sigs["serving_default"].inputs["examples"].dtype == 7  # DT_STRING
    assert [d.size for d in sigs["serving_default"].outputs["top_k_ids"].tensor_shape.dim] == [-1, K]
    assert set(sigs["predict_raw"].inputs) == {"item_id", "timestamp", "action_type"}

    # Our extension: the assets.extra metadata document.
    req.metadata_field[:] = ["intentrec_metadata"]
    resp = stub.GetModelMetadata(req, timeout=30)
    sv = wrappers_pb2.StringValue()
    resp.metadata["intentrec_metadata"].Unpack(sv)
    meta = json.loads(sv.value)
    assert meta["intent_heads"] == ["action_type", "genre"]
    assert len(meta["item_titles"]) == NUM_ITEMS


def test_get_model_status(model_stub):
    req = get_model_status_pb2.GetModelStatusRequest()
    req.model_spec.name = "intentrec"
    resp = model_stub.GetModelStatus(req, timeout=30)
    (st,) = resp.model_version_status
    assert st.version == 1
    assert st.state == get_model_status_pb2.ModelVersionStatus.AVAILABLE
    assert st.status.error_code == 0


def test_client_recommend(server):
    from serving.client import IntentRecClient

    h = history(3)
    with IntentRecClient("127.0.0.1", server.grpc_port, "intentrec") as client:
        rec = client.recommend(h["item_ids"], h["timestamps"], h["metadata"])
        raw_client = IntentRecClient(f"127.0.0.1:{server.grpc_port}", None, "intentrec",
                                     signature="predict_raw")
        rec_raw = raw_client.recommend(h["item_ids"], h["timestamps"], h["metadata"])
        raw_client.close()
        status = client.status()
    assert rec.model_version == 1 and rec.signature_name == "serving_default"
    assert len(rec.items) == K
    assert all(i.title and i.title.startswith(f"Movie {i.item_id} ") for i in rec.items)
    assert set(rec.intents) == {"action_type", "genre"}
    assert rec.intents["genre"].labels[2] == "Action"
    assert rec.primary_intent in rec.intents
    assert rec.primary_weight == pytest.approx(max(rec.attention.values()))
    assert len(rec.intent_embedding) == 16
    assert [i.item_id for i in rec_raw.items] == [i.item_id for i in rec.items]
    assert rec_raw.signature_name == "predict_raw"
    assert status[0]["state"] == "AVAILABLE"
    text = rec.format()
    assert "Primary intent:" in text and "Top-10 recommendations" in text


def test_recommend_cli(server, tmp_path, capsys):
    from serving.cli import main

    ids = ",".join(history(4, 8)["item_ids"])
    assert main(["--host", f"127.0.0.1:{server.grpc_port}", "--model", "intentrec", "--history", ids]) == 0
    out = capsys.readouterr().out
    assert "Top-10 recommendations" in out and "Primary intent" in out and "Movie " in out

    h = history(5, 6)
    csv_path = tmp_path / "hist.csv"
    rows = ["user_id,item_id,timestamp,action_type"] + [
        f"u1,{i},{t},{a}" for i, t, a in zip(h["item_ids"], h["timestamps"], h["metadata"]["action_type"])]
    csv_path.write_text("\n".join(rows[:1] + rows[1:][::-1]) + "\n")  # unsorted on purpose
    assert main(["--host", f"127.0.0.1:{server.grpc_port}", "--history", str(csv_path), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert len(doc["items"]) == K and doc["primary_intent"]["head"] in ("action_type", "genre")

    # Errors are reported, not raised.
    assert main(["--host", f"127.0.0.1:{server.grpc_port}", "--model", "nope", "--history", ids]) == 1
    assert "NOT_FOUND" in capsys.readouterr().err


def test_recommend_update_cli(server, capsys):
    """`recommend update`: one served call answers the intents before and after a new event."""
    from analysis.cli import main

    h = history(4, 8)
    ids = ",".join(h["item_ids"])
    new_item = history(9, 1)["item_ids"][0]
    host = f"127.0.0.1:{server.grpc_port}"
    assert main(["update", "--host", host, "--history", ids, "--event", f"item_id={new_item}", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["event"]["item_id"] == new_item and doc["history_length"] == len(h["item_ids"])
    before, after = doc["before"], doc["after"]
    assert len(after["items"]) == K and set(after["attention"]) == {"action_type", "genre"}
    assert sum(after["attention"].values()) == pytest.approx(1.0, abs=1e-4)
    # The model sees a different history after the event, so Z moves.
    assert before["intent_embedding"] != after["intent_embedding"]
    assert main(["update", "--host", host, "--history", ids]) == 2  # --event is required
    assert "needs --event" in capsys.readouterr().err


def test_history_parsing(tmp_path):
    from serving.client import load_history, load_titles

    assert load_history("5, 7,9").item_ids == ["5", "7", "9"]
    p = tmp_path / "h.jsonl"
    p.write_text('{"item_id": "3", "timestamp": 20, "genre": "Drama"}\n'
                 '{"item_id": "2", "timestamp": 10, "genre": "Comedy"}\n')
    h = load_history(str(p))
    assert h.item_ids == ["2", "3"] and h.timestamps == [10, 20] and h.metadata["genre"] == ["Comedy", "Drama"]
    multi = tmp_path / "m.csv"
    multi.write_text("user_id,item_id,timestamp\na,1,1\nb,2,2\na,3,3\n")
    with pytest.raises(ValueError, match="--user"):
        load_history(str(multi))
    assert load_history(str(multi), user="a").item_ids == ["1", "3"]
    movies = tmp_path / "movies.dat"
    movies.write_text("1::Toy Story (1995)::Animation|Children's\n2::Jumanji (1995)::Adventure\n")
    assert load_titles(str(movies)) == {"1": "Toy Story (1995)", "2": "Jumanji (1995)"}


def test_recommend_cli_process_starts_without_tensorflow(server):
    """`python -m serving.cli` (the `recommend` console script) in its own process: only
    the protos are imported, not TensorFlow, so it starts in about a second."""
    import os
    import subprocess
    import sys

    from tests.serving.conftest import REPO

    ids = ",".join(history(6, 5)["item_ids"])
    proc = subprocess.run(
        [sys.executable, "-c", "import sys; from analysis.cli import main; rc = main(); "
         "assert 'tensorflow.python' not in sys.modules; sys.exit(rc)",
         "--host", f"127.0.0.1:{server.grpc_port}", "--history", ids],
        cwd=REPO, capture_output=True, text=True, timeout=120, env=dict(os.environ))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Primary intent" in proc.stdout and "Top-10 recommendations" in proc.stdout


def test_predict_raw_and_metadata_signatures_are_warmed_up_at_load(model_base, monkeypatch):
    """Issue 13 #10: the warm-up file holds serving_default requests only, so predict_raw's
    first call paid for its graph initialisation (1,054 ms on the real model). The load now
    also calls the contract signatures the file does not cover, once, with a history taken
    from the file's first example."""
    from serving.signature import Signature
    from tests.serving.conftest import start_server

    calls = []
    run = Signature.run

    def recording(self, inputs, output_names):
        calls.append((self.name, {n: a.shape for n, a in inputs.items()}))
        return run(self, inputs, output_names)

    monkeypatch.setattr(Signature, "run", recording)
    srv = start_server(model_base)
    srv.stop(grace=1.0)
    names = [name for name, _ in calls]
    assert names.count("serving_default") == 2  # the file's two records
    raw = [shapes for name, shapes in calls if name == "predict_raw"]
    assert raw == [{"item_id": (1, 5), "timestamp": (1, 5), "action_type": (1, 5)}]  # first record: 5 items
    assert "intentrec_metadata" in names
