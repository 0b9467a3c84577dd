"""Streaming export: Parquet (row groups) and TFRecord round trips."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from analysis import export
from analysis.inference import count_users, iter_user_batches
from tests.analysis.conftest import HEADS, LABELS, FakeIntentModel


def _expected(model, ds, history="full"):
    rows = {}
    for batch in iter_user_batches(ds, model.max_len, batch_size=1000, history=history):
        out = model.infer(batch.histories)
        for i, u in enumerate(batch.user_ids):
            rows[u] = ({k: v[i] for k, v in out.items()}, int(batch.timestamps[i]))
    return rows


@pytest.mark.parametrize("history", ["full", "test"])
def test_parquet_and_tfrecord_round_trip(tmp_path, planted_data, history):
    _, ds, _ = planted_data
    model = FakeIntentModel(d_proj=5, max_len=3)
    pq_path, tf_path = str(tmp_path / "intents.parquet"), str(tmp_path / "intents.tfrecord")
    n = export.export_intents(model, ds, pq_path, tf_path, batch_size=7, history=history, progress=False)
    users = count_users(ds, history)
    assert n == users == 240
    # streaming: the model saw batches of at most 7 users, one row group per batch
    assert max(model.calls) == 7 and sum(model.calls) == users
    f = pq.ParquetFile(pq_path)
    assert f.num_row_groups == -(-users // 7)
    assert f.metadata.num_rows == users
    names = f.schema_arrow.names
    assert names[:2] == ["user_id", "timestamp"]
    assert [c for c in names if c.startswith("z_")] == [f"z_{i}" for i in range(5)]
    assert {f"alpha_{h}" for h in HEADS} | {"primary_intent"} <= set(names)
    meta = export.parquet_metadata(pq_path)
    assert meta["heads"] == HEADS and meta["labels"] == LABELS and meta["d_proj"] == 5

    expected = _expected(FakeIntentModel(d_proj=5, max_len=3), ds, history)
    seen = 0
    for rb in export.read_parquet_batches(pq_path):  # row group by row group
        d = rb.to_pydict()
        for i, u in enumerate(d["user_id"]):
            out, ts = expected[u]
            assert d["timestamp"][i] == ts
            np.testing.assert_allclose([d[f"z_{j}"][i] for j in range(5)], out["intent_embedding"], rtol=1e-6)
            att = np.array([d[f"alpha_{h}"][i] for h in HEADS])
            np.testing.assert_allclose(att, out["intent_attention"], rtol=1e-6)
            assert d["primary_intent"][i] == HEADS[int(np.argmax(out["intent_attention"]))]
            for h in HEADS:
                np.testing.assert_allclose(d[f"intent_{h}"][i], out[f"intent_{h}"], rtol=1e-6)
                assert d[f"intent_{h}_top"][i] == LABELS[h][int(np.argmax(out[f"intent_{h}"]))]
            seen += 1
    assert seen == users

    with open(tf_path + ".meta.json") as fh:
        assert json.load(fh)["heads"] == HEADS
    count = 0
    for batch in export.read_tfrecord(tf_path, batch_size=50):
        for i, u in enumerate(batch["user_id"].numpy()):
            out, ts = expected[u.decode()]
            assert int(batch["timestamp"][i]) == ts
            np.testing.assert_allclose(batch["intent_embedding"][i].numpy(), out["intent_embedding"], rtol=1e-6)
            np.testing.assert_allclose(batch["intent_attention"][i].numpy(), out["intent_attention"], rtol=1e-6)
            for h in HEADS:
                np.testing.assert_allclose(batch[f"intent_{h}"][i].numpy(), out[f"intent_{h}"], rtol=1e-6)
            assert batch["primary_intent"][i].numpy().decode() == HEADS[int(np.argmax(out["intent_attention"]))]
            count += 1
    assert count == users


def test_export_without_intent_aggregation(tmp_path, planted_data):
    """A V0/V1-like model (no Z, no α): zero-width Z, NaN α, empty primary intent."""
    _, ds, _ = planted_data
    model = FakeIntentModel(d_proj=0, max_len=3)
    path = str(tmp_path / "v0.parquet")
    export.export_intents(model, ds, parquet=path, batch_size=100, progress=False)
    t = pq.read_table(path)
    assert t.num_rows == 240 and not any(c.startswith("z_") for c in t.column_names)
    assert set(t.column("primary_intent").to_pylist()) == {""}
    assert np.isnan(t.column("alpha_genre").to_numpy()).all()


def test_writer_requires_a_path():
    with pytest.raises(ValueError):
        export.IntentWriter(HEADS, LABELS, 4)
