"""The reference numpy encoder: id conventions, padding, leave-one-out, features, history encoding."""

import json

import numpy as np
import pandas as pd
import pytest

import datasets
from datasets import IngestReport, IntentSpec, InteractionSchema
from datasets.dataset import finalize
from datasets.schema import OOV_ID, PAD_ID
from datasets.feature_spec import FeatureSpec, IntentHead
from datasets.encoder import encode, encode_histories, encode_history
from datasets.preprocessor import Preprocessor

SCHEMA = InteractionSchema(
    categorical=("kind",), multi_label=("genre",), numeric=("dur",),
    intents=(IntentSpec("kind"), IntentSpec("genre", "multi")), has_timestamps=True, has_weight=True)


def make_ds(rows, schema=SCHEMA):
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp", "kind", "genre", "dur", "weight"])
    frame["timestamp"] = frame["timestamp"].astype(np.int64)
    frame["dur"] = frame["dur"].astype(float)
    frame["weight"] = frame["weight"].astype(float)
    report = IngestReport(source="test", rows_read=len(frame))
    return finalize("t", frame, schema, pd.DataFrame({"item_id": frame.item_id.unique(),
                                                      "title": "T-" + frame.item_id.unique()}), report)


DAY = 86400


@pytest.fixture
def tiny():
    rows = []
    for k, it in enumerate(["a", "a", "b", "c", "T1", "T2"]):
        rows.append(("u1", it, 1000 + k * DAY, "p" if k % 2 else "q", "x|y" if it != "c" else "", 10.0 + k, 1.0))
    for k, it in enumerate(["b", "c", "a", "d", "V", "W"]):
        rows.append(("u2", it, 5000 + k * 3600, "p", "y", np.nan if k == 1 else 20.0, 2.0 if k else np.nan))
    rows += [("u3", "a", 0, "p", "x", 1.0, 1.0), ("u3", "b", 60, "zz", "new", 1.0, 1.0)]  # m == 2: train only
    rows += [("u4", "a", 0, "p", "x", 1.0, 1.0)]  # m == 1: dropped
    rows += [("u5", "a", 0, "p", "x", 1.0, 1.0), ("u5", "b", 1, "p", "x", 1.0, 1.0),
             ("u5", "c", 2, "p", "x", 1.0, 1.0)]  # m == 3: val/test only
    return make_ds(rows)


def test_vocab_ids_from_training_portion(tiny):
    enc = encode(tiny, max_len=5)
    # training portion: u1 a a b c | u2 b c a d | u3 a b | u5 a  -> a:5 b:3 c:2 d:1
    assert enc.vocabs["item"] == ["<pad>", "<oov>", "a", "b", "c", "d"]
    assert enc.vocabs["kind"][:2] == ["<pad>", "<oov>"]
    assert enc.vocabs["genre"] == ["<pad>", "<oov>", "y", "x", "new"]  # y:7 x:5 new:1
    assert enc.item_titles[:3] == ["<pad>", "<oov>", "T-a"]
    assert enc.item_popularity.tolist() == [0, 0, 5, 3, 2, 1]
    spec = enc.feature_spec
    assert spec.item_vocab_size == 6 and spec.max_len == 5
    assert dict(spec.categorical) == {"kind": len(enc.vocabs["kind"]), "hour_of_day": len(enc.vocabs["hour_of_day"]),
                                      "day_of_week": len(enc.vocabs["day_of_week"])}
    assert dict(spec.multi_hot) == {"genre": 5} and spec.numeric == ("dur",)
    assert spec.intents == (IntentHead("kind", "single", len(enc.vocabs["kind"])), IntentHead("genre", "multi", 5))
    assert FeatureSpec.from_dict(spec.to_dict()) == spec


def test_vocabulary_order_and_ties():
    from datasets.vocabulary import Vocabulary

    v = Vocabulary.fit(["b", "a", "c", "c", "", None, "b"])
    # c:2 b:2 (a tie: descending value, as tft.vocabulary) a:1
    assert v.tokens == ["<pad>", "<oov>", "c", "b", "a"]
    assert v.values == ["c", "b", "a"]
    assert v.lookup(["a", "zzz", "", None, "b"]).tolist() == [4, OOV_ID, OOV_ID, OOV_ID, 3]


def test_splits_padding_and_targets(tiny):
    enc = encode(tiny, max_len=5)
    s = enc.stats
    assert s["users_dropped_single_interaction"] == 1 and s["users_train_only"] == 1
    assert s["users_without_train_window"] == 1
    assert list(enc.train.user_ids) == ["u1", "u2", "u3"]
    assert list(enc.val.user_ids) == list(enc.test.user_ids) == ["u1", "u2", "u5"]
    a, b, c, d = 2, 3, 4, 5
    # u1 = a a b c T1 T2; train t = a a b c: inputs a a b, targets a b c (left-padded)
    assert enc.train.x["item"][0].tolist() == [0, 0, a, a, b]
    assert enc.train.y["item"][0].tolist() == [0, 0, a, b, c]
    assert (enc.train.w[0][:2] == 0).all() and (enc.train.w[0][2:] > 0).all()
    # u3 (m == 2): input a, target b
    assert enc.train.x["item"][2].tolist() == [0, 0, 0, 0, a] and enc.train.y["item"][2].tolist() == [0, 0, 0, 0, b]
    # val: inputs s[:-2], target s[-2] at the last position only
    assert enc.val.x["item"][0].tolist() == [0, a, a, b, c]
    assert enc.val.y["item"][0].tolist() == [0, 0, 0, 0, OOV_ID]
    assert (enc.val.w[:, :-1] == 0).all() and (enc.val.w[:, -1] > 0).all()
    # test: inputs s[:-1] (last n), target s[-1]
    assert enc.test.x["item"][0].tolist() == [a, a, b, c, OOV_ID]
    assert enc.test.y["item"][0].tolist() == [0, 0, 0, 0, OOV_ID]
    assert enc.test.x["item"][2].tolist() == [0, 0, 0, a, b] and enc.test.y["item"][2, -1] == c
    assert s["val_target_oov"] == 2 and s["test_target_oov"] == 2
    # single intent targets: ids of the next interaction's 'kind'; multi: multi-hot
    kind = enc.preprocessor.categorical_vocabs["kind"]
    assert enc.train.y["kind"][0].tolist() == [0, 0, *kind.lookup(["p", "q", "p"])]
    assert enc.train.y["genre"][0].tolist() == [[0] * 5, [0] * 5, [0, 0, 1, 1, 0], [0, 0, 1, 1, 0], [0] * 5]
    # unseen categorical value in an input -> OOV ('zz' only in u3's last row which is a training row: known)
    assert "zz" in enc.vocabs["kind"]


def test_dtypes_and_shapes(small_synth):
    enc = datasets.encode(small_synth, max_len=16)
    n = 16
    for split in (enc.train, enc.val, enc.test):
        R = len(split)
        for k, v in split.x.items():
            if k in dict(enc.feature_spec.multi_hot):
                assert v.dtype == np.float32 and v.shape == (R, n, dict(enc.feature_spec.multi_hot)[k])
            elif k in ("time", *enc.feature_spec.numeric):
                assert v.dtype == np.float32 and v.shape == (R, n)
            else:
                assert v.dtype == np.int32 and v.shape == (R, n), k
        assert set(split.x) == {"item", "time", "action_type", "item_type", "release_bucket", "hour_of_day",
                                "day_of_week", "genre", "duration"}
        assert set(split.y) == {"item", "action_type", "genre", "item_type", "release_bucket"}
        assert split.y["genre"].dtype == np.float32 and split.y["item"].dtype == np.int32
        assert split.w.dtype == np.float32 and split.w.shape == (R, n)
        for name, size in enc.feature_spec.categorical:
            assert split.x[name].max() < size
        assert split.x["item"].max() < enc.feature_spec.item_vocab_size
        pad = split.x["item"] == PAD_ID
        assert (split.x["time"][pad] == 0).all() and (split.x["genre"][pad] == 0).all()
        assert (split.x["duration"][pad] == 0).all() and (split.w[pad] == 0).all()
        # left padding: once a position is real, every later one is too
        assert (np.diff(pad.astype(int), axis=1) <= 0).all()
        assert not pad[:, -1].any()
    # time: days since the first interaction in the window, non-decreasing, 0 at the first
    t = enc.train.x["time"]
    first = np.argmax(enc.train.x["item"] != 0, axis=1)
    assert (t[np.arange(len(t)), first] == 0).all()
    assert (np.diff(t, axis=1)[~(enc.train.x["item"][:, :-1] == 0)] >= 0).all()
    # weights: mean 1 over training targets
    w = enc.train.w[enc.train.y["item"] != 0]
    assert w.mean() == pytest.approx(1.0, rel=1e-5)


def test_no_target_leaks(small_synth):
    """Per user: val/test targets are the last two rows and never training targets;
    every input precedes its target."""
    enc = datasets.encode(small_synth, max_len=12, train_windows="sliding")
    df = small_synth.interactions
    last = df.groupby("user_id").tail(1).index.to_numpy()
    second = df.groupby("user_id").tail(2).groupby(df["user_id"]).head(1).index.to_numpy()
    assert sorted(enc.test.target_rows[:, -1]) == sorted(last)
    assert sorted(enc.val.target_rows[:, -1]) == sorted(second)
    train_targets = enc.train.target_rows[enc.train.target_rows >= 0]
    assert not np.isin(train_targets, np.r_[last, second]).any()
    assert len(np.unique(train_targets)) == len(train_targets)  # sliding windows don't overlap
    user_of_row = df["user_id"].to_numpy()
    for split in (enc.train, enc.val, enc.test):
        rows = split.rows
        valid = rows >= 0
        # every input row belongs to the split row's user
        assert (user_of_row[rows[valid]] == np.repeat(split.user_ids, valid.sum(1))).all()
    for split in (enc.val, enc.test):
        # all inputs strictly precede the (single, last-position) target
        assert (split.target_rows[:, :-1] == -1).all()
        assert (np.where(split.rows >= 0, split.rows, -1).max(1) == split.target_rows[:, -1] - 1).all()
    tr = enc.train
    ok = tr.target_rows >= 0
    assert (tr.target_rows[ok] == tr.rows[ok] + 1).all()
    # every training target is used once with sliding windows: all rows but each user's first & last two
    sizes = df.groupby("user_id").size()
    assert len(train_targets) == int((sizes - 3).clip(lower=0).sum())


def test_sliding_vs_last(small_synth):
    last = datasets.encode(small_synth, max_len=8, train_windows="last")
    sliding = datasets.encode(small_synth, max_len=8, train_windows="sliding")
    assert len(last.train) == small_synth.num_users
    assert len(sliding.train) > len(last.train)
    # the "last" windows are among the sliding ones
    key = lambda s: {(u, tuple(r)) for u, r in zip(s.user_ids, s.x["item"])}  # noqa: E731
    assert key(last.train) <= key(sliding.train)
    assert np.array_equal(last.test.x["item"], sliding.test.x["item"])


def test_numeric_and_weights(tiny):
    enc = encode(tiny, max_len=5)
    p = enc.preprocessor
    train_durs = [10, 11, 12, 13, 20, 20, 20, 1, 1, 1]  # u2's NaN excluded
    mean, std = p.numeric_stats["dur"]
    assert mean == pytest.approx(np.mean(train_durs)) and std == pytest.approx(np.std(train_durs))
    assert enc.stats["numeric_missing:dur"] == 1
    assert enc.stats["weight_invalid"] == 1
    # u2 row 1 has NaN duration -> 0 after scaling
    assert enc.train.x["dur"][1].tolist()[3] == 0.0
    assert enc.train.x["dur"][0][2] == pytest.approx((10 - mean) / std)
    tw = enc.train.w[enc.train.y["item"] != 0]
    assert tw.mean() == pytest.approx(1.0)
    # raw weights 1 (u1) and 2 (u2): normalised ratio preserved
    assert enc.train.w[1][-1] / enc.train.w[0][-1] == pytest.approx(2.0)


def test_derived_time_features():
    rows = [("u", "a", 0, "p", "x", 1, 1), ("u", "b", 5 * 3600 + 4 * DAY, "p", "x", 1, 1),
            ("u", "c", 10 * DAY, "p", "x", 1, 1), ("u", "d", 11 * DAY, "p", "x", 1, 1)]
    enc = encode(make_ds(rows), max_len=4)
    hour = enc.preprocessor.categorical_vocabs["hour_of_day"]
    dow = enc.preprocessor.categorical_vocabs["day_of_week"]
    # 1970-01-01 00:00 UTC was a Thursday (3); +4 days 05:00 is Monday (0)
    assert enc.val.x["hour_of_day"][0, -2:].tolist() == hour.lookup(["0", "5"]).tolist()
    assert enc.val.x["day_of_week"][0, -2:].tolist() == dow.lookup(["3", "0"]).tolist()
    assert enc.test.x["time"][0, -3:].tolist() == pytest.approx([0.0, 4 + 5 / 24, 10.0])
    no_ts = encode(make_ds(rows, InteractionSchema(has_timestamps=True)), max_len=4, derive_time_features=False)
    assert "hour_of_day" not in no_ts.test.x


def test_encode_history_matches_test_inputs(small_synth):
    enc = datasets.encode(small_synth, max_len=10)
    df = small_synth.interactions
    for i, user in enumerate(enc.test.user_ids[:25]):
        hist = df[df.user_id == user].iloc[:-1]
        x = enc.encode_history(hist)
        for k in enc.test.x:
            np.testing.assert_array_equal(x[k][0], enc.test.x[k][i], err_msg=k)
    # list of dicts, shuffled order -> sorted by timestamp
    user = enc.test.user_ids[0]
    hist = df[df.user_id == user].iloc[:-1]
    recs = hist.sample(frac=1.0, random_state=0).to_dict("records")
    x = encode_history(enc.preprocessor, recs)
    np.testing.assert_array_equal(x["item"][0], enc.test.x["item"][0])
    # batch of histories
    xb = encode_histories(enc, [hist, hist.iloc[:3]])
    assert xb["item"].shape == (2, 10) and (xb["item"][1, :7] == 0).all()


def test_encode_history_edge_cases(tiny):
    enc = encode(tiny, max_len=4)
    empty = enc.encode_history([])
    assert all((v == 0).all() for v in empty.values()) and empty["genre"].shape == (1, 4, 5)
    x = enc.encode_history([{"item_id": "a", "timestamp": 0, "kind": "p", "genre": "x|unknownG", "dur": 5},
                            {"item_id": "never-seen", "timestamp": 60}])
    assert x["item"][0].tolist() == [0, 0, 2, OOV_ID]
    assert x["genre"][0, 2].tolist() == [0, 1, 0, 1, 0]  # x (id 3) plus the OOV slot
    assert x["genre"][0, 3].tolist() == [0] * 5 and x["dur"][0, 3] == 0.0
    assert x["kind"][0, 3] == OOV_ID  # missing categorical -> OOV
    long = [{"item_id": it, "timestamp": k} for k, it in enumerate("abcdabcd")]
    assert enc.encode_history(long)["item"][0].tolist() == [2, 3, 4, 5]  # most recent n


def test_preprocessor_roundtrip_and_reuse(tmp_path, small_synth):
    enc = datasets.encode(small_synth, max_len=10)
    path = tmp_path / "prep.json"
    enc.preprocessor.save(path)
    json.loads(path.read_text())
    p2 = Preprocessor.load(path)
    assert p2.feature_spec() == enc.feature_spec
    hist = small_synth.interactions[small_synth.interactions.user_id == enc.test.user_ids[3]].iloc[:-1]
    a, b = enc.encode_history(hist), encode_history(p2, hist)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    other = datasets.load("synthetic", num_users=30, seed=9)
    enc2 = datasets.encode(other, max_len=10, preprocessor=enc.preprocessor)
    assert enc2.feature_spec == enc.feature_spec
    assert enc2.preprocessor.weight_scale == enc.preprocessor.weight_scale


def test_batches(small_synth):
    enc = datasets.encode(small_synth, max_len=8)
    seen = 0
    for x, y, w in enc.batches("train", 64):
        assert x["item"].shape[1] == 8 and y["item"].shape == w.shape
        seen += len(w)
    assert seen == len(enc.train)
    a = [w for _, _, w in enc.batches("train", 64, shuffle=True, seed=1)]
    b = [w for _, _, w in enc.batches("train", 64, shuffle=True, seed=1)]
    assert all(np.array_equal(u, v) for u, v in zip(a, b))
    assert sum(len(w) for _, _, w in enc.batches("val", 64, drop_remainder=True)) == 192
    with pytest.raises(ValueError):
        next(enc.batches("nope", 4))


def test_bad_arguments(tiny):
    with pytest.raises(ValueError):
        encode(tiny, max_len=0)
    with pytest.raises(ValueError):
        encode(tiny, max_len=4, train_windows="all")
    bad = InteractionSchema(multi_label=("genre",), intents=(IntentSpec("genre", "single"),))
    rows = [("u", "a", 0, "p", "x", 1, 1), ("u", "b", 1, "p", "x", 1, 1)]
    with pytest.raises(ValueError, match="multi"):
        encode(make_ds(rows, bad), max_len=4)
