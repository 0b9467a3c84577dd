"""Generic CSV/Parquet adapter, the taobao preset, and timestamp-free sequence files."""

import numpy as np
import pandas as pd
import pytest

import datasets
from datasets import DatasetError, IntentSpec
from datasets.generic import parse_timestamps

from .conftest import write


def test_csv_with_header_and_roles(tmp_path):
    f = write(tmp_path / "log.csv", "\n".join([
        "uid,sku,ts,device,tags,secs,w",
        "a,i1,2024-01-01T10:00:00Z,tv,x|y,30,1.5",
        "a,i2,2024-01-01T10:05:00,phone,y,abc,2",       # invalid numeric -> NaN, kept
        "a,i3,2024-01-01 10:10:00+00:00,,z|x|x,,-1",    # missing categorical, numeric; bad weight
        "b,i1,not a date,tv,x,10,1",                    # rejected
        'b,"i,2",2024-01-02T00:00:00Z,tv,,5,1',         # quoted comma in the item id
        "b,i1,2024-01-02T00:00:00Z,tv,,5",              # too few fields
    ]) + "\n")
    ds = datasets.load("generic", path=f, columns={"user": "uid", "item": "sku", "timestamp": "ts",
                                                   "device": "device", "genre": "tags", "duration": "secs"},
                       categorical=["device"], multi_label=["genre"], numeric=["duration"],
                       intents=["device", "genre"], weight="w")
    ds.validate()
    r = ds.report
    assert r.rows_read == 6 and r.rows_kept == 4
    assert r.rejected == {"bad_timestamp": 1, "wrong_field_count": 1}
    assert r.notes["timestamp_unit"] == "iso"
    assert r.repaired["invalid_numeric:duration"] == 1
    assert r.repaired["missing_numeric:duration"] == 1
    assert r.repaired["missing_value:device"] == 1
    assert r.repaired["invalid_weight"] == 1  # the negative weight
    assert r.to_dict()["examples"]["bad_timestamp"][0].startswith("log.csv:5: field 'ts': 'not a date'")
    assert [(i.column, i.kind) for i in ds.schema.intents] == [("device", "single"), ("genre", "multi")]
    df = ds.interactions
    a = df[df.user_id == "a"]
    assert list(a.timestamp) == [1704103200, 1704103500, 1704103800]  # naive = UTC
    assert list(a.genre) == ["x|y", "y", "x|z"]
    assert list(a.device) == ["tv", "phone", ""]
    assert np.isnan(a.duration.iloc[1]) and np.isnan(a.duration.iloc[2])
    assert np.isnan(a.weight.iloc[2])
    assert "i,2" in set(df.item_id)


def test_headerless_with_names_and_positions(tmp_path):
    f = write(tmp_path / "log.tsv", "u1\tA\t1700000000000\nu1\tB\t1700000060000\nu2\tA\t1700000000000\n")
    ds = datasets.load("generic", path=f, names=["u", "i", "t"], columns={"user": "u", "item": "i", "timestamp": "t"})
    assert ds.report.notes["timestamp_unit"] == "ms" and ds.report.notes["header"] is False
    assert list(ds.interactions.timestamp) == [1700000000, 1700000060, 1700000000]
    ds2 = datasets.load("generic", path=f, header=False, columns={"user": 0, "item": 1, "timestamp": 2})
    pd.testing.assert_frame_equal(ds.interactions, ds2.interactions)


def test_no_timestamp_column_uses_file_order(tmp_path):
    f = write(tmp_path / "log.csv", "user,item\nu1,b\nu2,a\nu1,a\nu1,b\n")
    ds = datasets.load("generic", path=f, columns={"user": "user", "item": "item"})
    assert not ds.schema.has_timestamps
    u1 = ds.interactions[ds.interactions.user_id == "u1"]
    assert list(u1.item_id) == ["b", "a", "b"] and list(u1.timestamp) == [0, 1, 2]


def test_parquet(tmp_path):
    f = tmp_path / "log.parquet"
    pd.DataFrame({
        "user": [1, 1, 2, 2],
        "item": [10.0, 11.0, 10.0, np.nan],
        "when": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-01", "2024-01-03"]),
        "kind": ["view", "buy", "view", "view"],
    }).to_parquet(f)
    ds = datasets.load("generic", path=f, columns={"user": "user", "item": "item", "timestamp": "when",
                                                   "action_type": "kind"},
                       categorical=["action_type"], intents=["action_type"])
    ds.validate()
    assert ds.report.rejected == {"missing_item": 1}
    assert ds.report.to_dict()["examples"]["missing_item"] == ["log.parquet:4: field 'item': '' is empty"]
    assert list(ds.interactions.item_id) == ["10", "11", "10"]
    assert ds.interactions.timestamp.iloc[0] == 1704067200
    bad = write(tmp_path / "bad.parquet", "not parquet at all")
    with pytest.raises(DatasetError, match="bad.parquet: cannot read as Parquet"):
        datasets.load("generic", path=bad, columns={"user": "u", "item": "i"})


def test_taobao_preset(tmp_path):
    f = write(tmp_path / "UserBehavior.csv", "\n".join([
        "1,100,5,pv,1511544070",
        "1,101,5,cart,1511544080",
        "1,100,5,buy,1511544090",
        "1,100,5,buy,1511544090",   # exact duplicate -> dropped, counted
        "2,102,7,fav,1511544070",
        "2,103,7,pv,abc",           # bad timestamp
        "2,104,7,pv",               # truncated
        ",105,7,pv,1511544100",     # missing user
        "3,106,8,weird,1511544100",  # unknown behaviour: kept as is, noted
    ]))
    ds = datasets.load("taobao", path=f)
    ds.validate()
    assert ds.schema.categorical == ("action_type", "category")
    assert [(i.column, i.kind) for i in ds.schema.intents] == [("action_type", "single"), ("category", "single")]
    assert ds.report.rejected == {"duplicate_row": 1, "bad_timestamp": 1, "wrong_field_count": 1,
                                  "missing_user": 1}
    assert ds.report.notes["unmapped_values:action_type"] == ["weird"]
    u1 = ds.interactions[ds.interactions.user_id == "1"]
    assert list(u1.action_type) == ["view", "cart", "buy"]
    assert list(u1.weight) == [1.0, 2.0, 4.0]
    assert ds.report.to_dict()["examples"]["duplicate_row"] == [
        "UserBehavior.csv:4: duplicate of line 3 (user '1', item '100', timestamp 1511544090)"]
    same = datasets.load("generic", path=f, preset="ecommerce")
    pd.testing.assert_frame_equal(ds.interactions, same.interactions)


def test_weight_by_leaves_its_own_intent_unweighted(tmp_path):
    """The taobao preset weights events by action type, so the action-type head must train
    unweighted (`model/intent_loss.py`) while the category head keeps the weight, and the
    mark survives the canonical CSV that the TFX pipeline reads back (issue 15)."""
    from collections import defaultdict

    from datasets import generic
    from datasets.feature_spec import FeatureSpec
    from datasets.schema import InteractionSchema
    from pipeline import sources

    f = write(tmp_path / "UserBehavior.csv", "1,100,5,pv,1511544070\n1,101,5,buy,1511544080\n")
    ds = datasets.load("taobao", path=f)
    assert ds.schema.weight_from == "action_type"
    spec = FeatureSpec.build(ds.schema, 10, defaultdict(lambda: 5))
    assert {h.name: h.weighted for h in spec.intents} == {"action_type": False, "category": True}

    kw = sources.generic_kwargs_for(ds.schema)
    ds.interactions.to_csv(tmp_path / "log.csv", index=False)
    again = generic.load(tmp_path / "log.csv", **kw)
    assert again.schema == ds.schema
    assert InteractionSchema.from_dict(sources._generic_schema(kw)) == ds.schema
    # A pipeline source given the preset itself (no explicit columns) declares the same schema.
    assert InteractionSchema.from_dict(sources._generic_schema({"path": str(f), "preset": "taobao"})) == ds.schema
    # A weight column of its own (not from a categorical) keeps every head weighted.
    plain = generic.load(tmp_path / "log.csv", **{**kw, "weight_from": None})
    assert plain.schema.weight_from is None
    with pytest.raises(ValueError, match="weight_from 'rating'"):
        generic.load(tmp_path / "log.csv", **{**kw, "weight_from": "rating"})


def test_generic_errors(tmp_path):
    f = write(tmp_path / "log.csv", "user,item\nu,i\n")
    with pytest.raises(DatasetError, match="no column 'ts'"):
        datasets.load("generic", path=f, columns={"user": "user", "item": "item", "timestamp": "ts"})
    with pytest.raises(ValueError, match="columns"):
        datasets.load("generic", path=f)
    empty = write(tmp_path / "empty.csv", "   \n")
    with pytest.raises(DatasetError, match="empty.csv: file is empty"):
        datasets.load("generic", path=empty, columns={"user": "user", "item": "item"})
    header_only = write(tmp_path / "h.csv", "user,item\n")
    with pytest.raises(DatasetError, match="h.csv: only a header"):
        datasets.load("generic", path=header_only, columns={"user": "user", "item": "item"})
    with pytest.raises(DatasetError, match="missing.csv: no such file"):
        datasets.load("generic", path=tmp_path / "missing.csv", columns={"user": "user", "item": "item"})


def test_invalid_utf8_is_repaired_and_counted(tmp_path):
    f = tmp_path / "log.csv"
    f.write_bytes(b"user,item,ts\nu1,caf\xe9,1\nu1,tea,2\n")
    ds = datasets.load("generic", path=f, columns={"user": "user", "item": "item", "timestamp": "ts"})
    assert ds.report.repaired["invalid_encoding"] == 1
    assert ds.report.rows_kept == 2


def test_parse_timestamps_units():
    s = pd.Series(["1700000000", "1700000001"])
    assert parse_timestamps(s)[2] == "s"
    assert parse_timestamps(pd.Series(["1700000000000"]))[2] == "ms"
    assert parse_timestamps(pd.Series(["1700000000000000"]))[2] == "us"
    assert parse_timestamps(pd.Series(["1700000000000000000"]))[2] == "ns"
    ts, bad, unit = parse_timestamps(pd.Series(["2023-11-14T22:13:20Z", "2023-11-14", "junk"]))
    assert unit == "iso" and list(ts[:2]) == [1700000000, 1699920000] and list(bad) == [False, False, True]
    # A value of another magnitude in a seconds column is rejected, not misread.
    ts, bad, unit = parse_timestamps(pd.Series(["1700000000", "1700000001", "1700000000000"]))
    assert unit == "s" and list(bad) == [False, False, True]


# ---------------------------------------------------------------------------------------
# Timestamp-free sequence files
# ---------------------------------------------------------------------------------------
def test_sequences_with_user_column(tmp_path):
    f = write(tmp_path / "seqs.txt", "u1 a b c d\nu2 b c\n\nu3\nu1 e\n")
    ds = datasets.load("sequences", path=f)
    ds.validate()
    assert not ds.schema.has_timestamps and ds.schema.columns == ["user_id", "item_id", "timestamp"]
    u1 = ds.interactions[ds.interactions.user_id == "u1"]
    assert list(u1.item_id) == list("abcde") and list(u1.timestamp) == [0, 1, 2, 3, 4]
    assert ds.report.rows_read == ds.report.rows_kept == 7
    assert ds.report.notes["lines_without_items"] == 1 and ds.report.notes["blank_lines"] == 1
    assert ds.report.notes["users_on_several_lines"] == 1
    assert ds.report.examples["line_without_items"][0].startswith("seqs.txt:4:")


def test_sequences_without_user_comma_separated(tmp_path):
    f = write(tmp_path / "seqs.csv", "a,b,c\nb, ,c,d\nz\n")
    ds = datasets.load("sequences", path=f, has_user=False)
    assert list(ds.interactions.user_id) == ["1", "1", "1", "2", "2", "2", "3"]
    assert ds.report.notes["empty_tokens_skipped"] == 1
    assert ds.report.notes["users_with_single_interaction"] == 1
    enc = datasets.encode(ds, max_len=3)
    assert enc.feature_spec.has_timestamps is False
    assert enc.stats["users_dropped_single_interaction"] == 1
    # time = position index relative to the window's first interaction, 0 at padding
    assert enc.test.x["time"].tolist() == [[0.0, 0.0, 1.0], [0.0, 0.0, 1.0]]


def test_sequences_empty(tmp_path):
    with pytest.raises(DatasetError, match="empty"):
        datasets.load("sequences", path=write(tmp_path / "e.txt", "\n\n"))
    with pytest.raises(DatasetError, match="no items"):
        datasets.load("sequences", path=write(tmp_path / "u.txt", "u1\nu2\n"))


def test_registry():
    assert {"synthetic", "movielens", "generic", "taobao", "sequences"} <= set(datasets.available())
    with pytest.raises(ValueError, match="unknown dataset"):
        datasets.load("nope")
    calls = []
    datasets.register("custom-test", lambda **kw: calls.append(kw) or "ok")
    assert datasets.load("custom-test", a=1) == "ok" and calls == [{"a": 1}]
    assert IntentSpec("x").kind == "single"


def test_declared_schema_is_the_loaded_one(tmp_path):
    """A generic pipeline source declares its schema without reading the data; it must be
    the schema `load` gives, column aliases and IntentSpecs included (the pipeline's own
    copy of the rule missed `time` for `timestamp` and read IntentSpecs as names)."""
    from datasets import generic
    from datasets.schema import InteractionSchema
    from pipeline import sources

    f = write(tmp_path / "log.csv", "u,i,t,g\n1,100,1511544070,a|b\n1,101,1511544080,b\n")
    kw = {"path": str(f), "columns": {"user": "u", "item": "i", "time": "t", "genre": "g"},
          "multi_label": ["genre"], "intents": [IntentSpec("genre", "multi")]}
    loaded = generic.load(**kw).schema
    assert loaded.has_timestamps
    assert InteractionSchema.from_dict(sources._generic_schema(kw)) == loaded
