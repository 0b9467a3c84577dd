"""SequenceExampleGen building blocks: leave-one-out rows, canonical checks, grouping."""

import numpy as np
import pandas as pd
import pytest

from components import sequence_example_gen as seg
from datasets import IntentSpec, InteractionSchema

SCHEMA = InteractionSchema(categorical=("kind",), multi_label=("genre",), numeric=("dur",),
                           intents=(IntentSpec("kind"), IntentSpec("genre", "multi")), has_weight=True)


def rows(m):
    return {"item_id": np.array([f"i{k}" for k in range(m)], dtype=object),
            "timestamp": np.arange(m, dtype=np.int64) * 3600,
            "kind": np.array(["a"] * m, dtype=object), "genre": np.array(["x|y"] * m, dtype=object),
            "dur": np.arange(m, dtype=np.float64), "weight": np.ones(m)}


def items_of(ex):
    return [v.decode() for v in ex.features.feature["item_id"].bytes_list.value]


def mode_of(ex):
    return ex.features.feature[seg.LABEL_MODE].int64_list.value[0]


def by_split(out):
    return {s: e for s, e in out}


def test_single_interaction_is_dropped():
    assert seg.user_examples("u", rows(1), SCHEMA, max_len=4) == []


def test_two_interactions_train_only():
    out = by_split(seg.user_examples("u", rows(2), SCHEMA, max_len=4))
    assert set(out) == {"train"}
    assert items_of(out["train"]) == ["i0", "i1"]
    assert mode_of(out["train"]) == seg.LABEL_MODE_TRAIN


def test_leave_one_out_never_shows_the_future_to_training():
    out = by_split(seg.user_examples("u", rows(10), SCHEMA, max_len=4))
    # train: s[:-2] whole (the training portion); eval: s[:-1], last n + 1; test: s, last n + 1.
    assert items_of(out["train"]) == [f"i{k}" for k in range(8)]
    assert items_of(out["eval"]) == [f"i{k}" for k in range(4, 9)]
    assert items_of(out["test"]) == [f"i{k}" for k in range(5, 10)]
    assert "i8" not in items_of(out["train"]) and "i9" not in items_of(out["train"])
    assert mode_of(out["eval"]) == mode_of(out["test"]) == seg.LABEL_MODE_EVAL
    f = out["test"].features.feature
    assert f[seg.HISTORY_LENGTH].int64_list.value[0] == 9
    assert f[seg.HISTORY_BUCKET].bytes_list.value[0] == b"006-020"
    assert list(f["genre"].bytes_list.value) == [b"x|y"] * 5
    assert list(f["timestamp"].int64_list.value) == [k * 3600 for k in range(5, 10)]


def test_eval_and_test_examples_list_the_whole_history_before_the_target():
    r = rows(10)
    r["item_id"][3] = "i1"  # a re-view: listed once
    out = by_split(seg.user_examples("u", r, SCHEMA, max_len=4, train_windows="sliding"))

    def seen(ex):
        return [v.decode() for v in ex.features.feature[seg.SEEN_ITEMS].bytes_list.value]

    # More than the n + 1 interactions written: every item before s[-2] / s[-1].
    assert seen(out["eval"]) == ["i0", "i1", "i2", "i4", "i5", "i6", "i7"]
    assert seen(out["test"]) == ["i0", "i1", "i2", "i4", "i5", "i6", "i7", "i8"]
    assert seen(out["train"]) == []  # present, so that the schema inferred from train has it


def test_three_interactions_keep_the_training_row():
    out = by_split(seg.user_examples("u", rows(3), SCHEMA, max_len=4))
    assert items_of(out["train"]) == ["i0"]  # no target, but part of the training portion
    assert items_of(out["eval"]) == ["i0", "i1"]
    assert items_of(out["test"]) == ["i0", "i1", "i2"]


def test_max_train_history_caps_the_train_sequence():
    out = by_split(seg.user_examples("u", rows(10), SCHEMA, max_len=4, max_train_history=3))
    assert items_of(out["train"]) == ["i5", "i6", "i7"]


def test_check_canonical_rejects_with_reasons():
    frame = pd.DataFrame({
        "user_id": ["u1", "", "u3", "u4", "u5"],
        "item_id": ["a", "b", None, "d", "e"],
        "timestamp": [1, 2, 3, "x", 5],
        "kind": ["k"] * 5, "genre": ["g"] * 5,
        "dur": [1.0, 2.0, 3.0, 4.0, "abc"],
        "weight": [1.0, 1.0, 1.0, 1.0, 1.0],
    })
    kept, rejected = seg.check_canonical(frame, SCHEMA, "test.csv")
    assert list(kept["user_id"]) == ["u1"]
    assert sorted(r["reason"] for r in rejected) == ["bad_numeric:dur", "bad_timestamp", "missing_item",
                                                     "missing_user"]
    assert all(r["source"] == "test.csv" and "row" in r for r in rejected)


def test_check_canonical_missing_column_is_a_config_error():
    with pytest.raises(ValueError, match="lacks columns"):
        seg.check_canonical(pd.DataFrame({"user_id": ["u"]}), SCHEMA, "x")


def test_user_chunks_group_rows_by_user_keeping_order():
    frame = pd.DataFrame({"user_id": ["b", "a", "b", "a"], "item_id": ["1", "2", "3", "4"],
                          "timestamp": [1, 2, 3, 4], "kind": ["k"] * 4, "genre": [""] * 4,
                          "dur": [1.0] * 4, "weight": [1.0] * 4})
    chunks = dict(seg.frame_to_user_chunks(frame, SCHEMA, order_base=100))
    assert list(chunks["b"]["item_id"]) == ["1", "3"]
    assert list(chunks["a"]["_order"]) == [101, 103]


def test_history_buckets():
    assert seg.history_bucket(0) == "001-005"
    assert seg.history_bucket(5) == "001-005"
    assert seg.history_bucket(6) == "006-020"
    assert seg.history_bucket(201) == "201+"


def test_sliding_windows_cover_every_training_target():
    out = seg.user_examples("u", rows(12), SCHEMA, max_len=3, train_windows="sliding")
    train = [e for s, e in out if s == "train"]
    # t = i0..i9: last window inputs i6..i8 (+ target i9), then i3..i5 (+i6), i0..i2 (+i3).
    assert [items_of(e) for e in train] == [[f"i{k}" for k in range(10)], ["i3", "i4", "i5", "i6"],
                                            ["i0", "i1", "i2", "i3"]]
    assert [mode_of(e) for e in train] == [seg.LABEL_MODE_TRAIN] + [seg.LABEL_MODE_TRAIN_WINDOW] * 2
