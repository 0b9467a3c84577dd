"""Synthetic Taobao UserBehavior logs: determinism, the exact CSV format through the
taobao preset, and the documented statistics on a 1,000-user sample."""

import numpy as np
import pandas as pd
import pytest

import datasets
from datasets import ecommerce_synthetic as es


@pytest.fixture(scope="module")
def frame():
    return es.generate(num_users=1000, seed=0)


@pytest.fixture(scope="module")
def stats(frame):
    return es.describe(frame)


def test_deterministic_by_seed():
    a = es.generate(num_users=150, seed=7)
    pd.testing.assert_frame_equal(a, es.generate(num_users=150, seed=7))
    assert not a.equals(es.generate(num_users=150, seed=8))
    assert list(a.columns) == list(es.COLUMNS)
    assert set(a["behavior"]) == set(es.BEHAVIORS)
    for c in ("user", "item", "category", "timestamp"):
        assert a[c].dtype == np.int64


def test_csv_is_userbehavior_format_and_roundtrips_through_taobao_preset(tmp_path):
    path = es.write_csv(tmp_path / "UserBehavior.csv", num_users=200, seed=1)
    frame = es.generate(num_users=200, seed=1)
    lines = open(path).read().splitlines()
    assert len(lines) == len(frame)  # no header
    u, i, c, b, t = lines[0].split(",")
    assert u.isdigit() and i.isdigit() and c.isdigit() and t.isdigit() and b in es.BEHAVIORS

    ds = datasets.load("generic", path=path, preset="taobao")
    ds.validate()
    r = ds.report
    assert r.rows_rejected == 0 and r.rows_kept == len(frame) and r.rows_repaired == 0
    assert r.notes["timestamp_unit"] == "s" and "unmapped_values:action_type" not in r.notes
    got = ds.interactions
    assert got["action_type"].value_counts().to_dict() == (
        frame["behavior"].replace({"pv": "view"}).value_counts().to_dict())
    want = frame.assign(user=frame.user.astype(str), item=frame.item.astype(str))
    key = ["user_id", "timestamp"]
    pd.testing.assert_frame_equal(
        got[["user_id", "item_id", "timestamp"]].sort_values(key).reset_index(drop=True),
        want.rename(columns={"user": "user_id", "item": "item_id"})[["user_id", "item_id", "timestamp"]]
        .sort_values(key).reset_index(drop=True), check_dtype=False)


def test_registry_adapter_and_aliases(frame):
    assert "taobao-synthetic" in datasets.available()
    assert {"ecommerce-small", "ecommerce"} <= set(datasets.aliases())
    ds = datasets.resolve("ecommerce-small")  # 1,000 users, seed 0: the `frame` fixture's data
    assert ds.name == "taobao-synthetic" and ds.num_users == 1000
    assert len(ds) == len(frame) >= 50_000 and ds.report.rows_rejected == 0
    enc = datasets.encode(ds)
    oov = enc.stats["test_target_oov"] / enc.stats["test_rows"]
    assert 0.4 <= oov <= 0.7  # most test targets are long-tail items nobody trained on


def test_timestamps_strictly_increase_inside_the_window(frame):
    t = frame["timestamp"].to_numpy()
    same = frame["user"].to_numpy()[1:] == frame["user"].to_numpy()[:-1]
    assert (np.diff(t)[same] >= 1).all()
    assert t.min() >= es.WINDOW_START
    assert (t < es.WINDOW_START + 9 * 86400).mean() > 0.999  # only the most active users spill over


def test_behavior_mix_matches_taobao(stats):
    for b, share in es.TAOBAO_BEHAVIOR_SHARES.items():
        assert stats["behavior_shares"][b] == pytest.approx(share, abs=0.003)


def test_activity_is_heterogeneous(stats):
    assert stats["users"] == 1000
    assert 85 <= stats["events_per_user"]["mean"] <= 115
    assert stats["events_per_user"]["p10"] < 40 and stats["events_per_user"]["p90"] > 150


def test_long_tailed_catalogue(stats):
    assert 300 <= stats["categories"] <= 5000
    assert 0.45 <= stats["items_per_event"] <= 0.75
    assert stats["items_seen_once_share"] >= 0.6
    assert stats["top1pct_items_event_share"] >= 0.05  # yet a head of popular items


def test_re_views_and_funnel(stats):
    assert 0.15 <= stats["repeat_view_share"] <= 0.35
    assert stats["action_on_viewed_item_share"] >= 0.8
    assert stats["action_right_after_view_share"] >= 0.6
    assert stats["action_right_after_review_share"] >= 0.25


def test_sessions_and_leave_one_out_targets(stats):
    assert 5 <= stats["events_per_session"] <= 15
    assert stats["categories_per_session"] <= 1.6
    assert stats["sessions_with_at_most_2_categories"] >= 0.9
    assert 19 <= stats["peak_hour_china"] <= 22 and 2 <= stats["trough_hour_china"] <= 6
    assert 0.2 <= stats["test_target_in_last_history_share"] <= 0.4
    assert 0.4 <= stats["test_target_unseen_in_train_share"] <= 0.7


def test_describe_counts():
    f = pd.DataFrame({
        "user": [1, 1, 1, 1, 1, 2, 2, 2],
        "item": [10, 11, 10, 10, 12, 10, 13, 13],
        "category": [5, 5, 5, 5, 6, 5, 6, 6],
        "behavior": ["pv", "pv", "pv", "cart", "buy", "pv", "pv", "fav"],
        "timestamp": [0, 10, 20, 21, 5000, 0, 10, 11],
    })
    d = es.describe(f)
    assert d["repeat_view_share"] == pytest.approx(1 / 5, abs=1e-4)  # the third view of user 1
    assert d["action_on_viewed_item_share"] == pytest.approx(2 / 3, abs=1e-4)  # buy 12 was never viewed
    assert d["action_right_after_view_share"] == pytest.approx(2 / 3, abs=1e-4)
    assert d["action_right_after_review_share"] == pytest.approx(1 / 3, abs=1e-4)
    assert d["items_seen_once_share"] == pytest.approx(2 / 4, abs=1e-4)
    assert d["sessions_per_user"] == pytest.approx(1.5)
    assert d["test_target_in_last_history_share"] == pytest.approx(1 / 2, abs=1e-4)  # fav 13 right after pv 13
    assert d["test_target_unseen_in_train_share"] == 1.0  # 12 and 13 only occur in users' last two events
