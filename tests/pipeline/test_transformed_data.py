"""The Trainer's reading of Transform's files (pipeline.transformed_data): in memory, the
numpy encoder's splits; streamed, the same rows in the same length-bucketed batches,
trained through `model.training.fit_and_evaluate` (the e2e test runs the in-memory
path inside TFX and compares it with model.train)."""

import numpy as np
import pytest

from model.batching import SequenceBatches
from pipeline import transformed_data as td

pytestmark = pytest.mark.timeout(1800)


def _real_rows(x, y):
    """Multiset of the rows with a target, as their real item ids (padding stripped)."""
    keep = td.has_target(y["item"])
    return sorted(tuple(row[row != 0].tolist()) for row in x["item"][keep])


def test_in_memory_splits_are_the_numpy_encoders(tiny_transform):
    t = tiny_transform
    data = td.load(t["files"]["train"], t["files"]["eval"], t["tfo"], t["cfg"], max_in_memory_mb=1e6)
    assert not data.streamed and data.source.startswith("in memory")
    assert data.feature_spec == t["enc"].feature_spec
    np.testing.assert_array_equal(data.item_popularity, t["enc"].item_popularity)
    for name in ("train", "val"):
        ours, ref = data.split(name), t["enc"].split(name)
        assert ours.user_ids.tolist() == ref.user_ids.tolist(), name
        for k, v in ref.x.items():
            np.testing.assert_allclose(ours.x[k], v, rtol=1e-4, atol=1e-4, err_msg=f"{name}/{k}")
            assert ours.x[k].dtype == v.dtype or k == "time", (name, k, ours.x[k].dtype, v.dtype)
        for k, v in ref.y.items():
            np.testing.assert_array_equal(ours.y[k], v, err_msg=f"{name}/{k}")
        np.testing.assert_allclose(ours.w, ref.w, rtol=1e-5, atol=1e-6)
    seen = [set(data.val.seen.ids[a:b].tolist()) for a, b in zip(data.val.seen.indptr[:-1], data.val.seen.indptr[1:])]
    ref = t["enc"].val.seen
    assert seen == [set(ref.ids[a:b].tolist()) for a, b in zip(ref.indptr[:-1], ref.indptr[1:])]


def test_rows_stream_when_they_exceed_the_memory_limit(tiny_transform):
    t = tiny_transform
    data = td.load(t["files"]["train"], t["files"]["eval"], t["tfo"], t["cfg"], max_in_memory_mb=0)
    assert data.streamed and data.source.startswith("streamed")
    assert len(data.val) == len(t["enc"].val)  # validation is always in memory


def test_streamed_batches_are_the_in_memory_batches(tiny_transform):
    t = tiny_transform
    full = td.read_split(t["files"]["train"], t["tfo"], t["cfg"])
    ref = SequenceBatches(full.x, {**full.y, "weight": full.w}, batch_size=16, num_buckets=3)
    stream = td.StreamingBatches(t["files"]["train"], t["tfo"], t["cfg"], batch_size=16, num_buckets=3)
    assert (stream.num_batches, stream.boundaries) == (ref.num_batches, ref.boundaries)
    assert (stream.rows, stream.targets) == (len(full), int((full.w > 0).sum()))
    for epoch in range(2):  # a second pass reshuffles and starts over
        batches = [stream[i] for i in range(stream.num_batches)]
        stream.on_epoch_end()
        lengths = {x["item"].shape[1] for x, _ in batches}
        assert lengths <= set(ref.boundaries) and len(lengths) > 1, lengths
        assert all(x["item"].shape[0] == 16 for x, _ in batches)
        rows = _real_rows({"item": np.concatenate([np.pad(x["item"], ((0, 0), (t["cfg"].max_len - x["item"].shape[1], 0)))
                                                  for x, _ in batches])},
                          {"item": np.concatenate([np.pad(y["item"], ((0, 0), (t["cfg"].max_len - y["item"].shape[1], 0)))
                                                  for _, y in batches])})
        assert rows == _real_rows(full.x, full.y), epoch


def test_streamed_training_through_fit_and_evaluate(tiny_transform):
    import keras

    from model import training
    from pipeline.trainer import build_model
    from tests.pipeline import helpers

    t = tiny_transform
    data = td.load(t["files"]["train"], t["files"]["eval"], t["tfo"], t["cfg"], max_in_memory_mb=0)
    keras.utils.set_random_seed(0)
    model = build_model(data.feature_spec, helpers.TINY_HPARAMS)
    stream = td.StreamingBatches(t["files"]["train"], t["tfo"], t["cfg"], batch_size=16,
                                 input_names=model.input_names)
    cfg = training.TrainConfig(epochs=2, batch_size=16, exclude_seen=True, verbose=0)
    with pytest.warns(UserWarning, match="optimiser steps"):
        result = training.fit_and_evaluate(model, data, cfg, evaluate_splits=("val",), batches=stream)
    # Keras reads two batches ahead of the first epoch: every epoch still runs them all.
    assert result["epochs_run"] == 2
    protocol = result["protocol"]
    assert (protocol["train_rows"], protocol["steps_per_epoch"]) == (len(t["enc"].train), stream.num_batches)
    assert protocol["train_targets"] == int((t["enc"].train.w > 0).sum())
    assert 0.0 <= result["val"]["ndcg@10"] <= 1.0
