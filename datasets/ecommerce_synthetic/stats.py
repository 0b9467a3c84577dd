"""Statistics of a UserBehavior log, generated or real: what the generator is calibrated on.

`describe(frame)` measures behaviour shares, activity per user, re-views, where
cart / fav / buy land relative to views, catalogue coverage and popularity skew,
sessions (30-minute gaps), the diurnal peak and trough, and what the leave-one-out
test targets look like (docs/datasets.md).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from datasets.ecommerce_synthetic.reference import BEHAVIORS, CHINA_UTC_OFFSET, MIN_SESSION_GAP


def describe(frame: pd.DataFrame, history: int = 50) -> dict:
    """Statistics of a UserBehavior frame (columns `COLUMNS`, generated or real).

    Sessions are split at 30-minute gaps. The `test_target_*` entries follow the
    leave-one-out split of `datasets.encode` (users with >= 3 events; the test
    target is a user's last event, the training portion every user's events but
    the last two): the share of test targets among the user's last `history`
    events, and the share never seen in any user's training portion.
    """
    df = frame.sort_values(["user", "timestamp"], kind="stable").reset_index(drop=True)
    u = df["user"].to_numpy()
    beh = df["behavior"].to_numpy()
    ts = df["timestamp"].to_numpy()
    n = len(df)
    new_user = np.r_[True, u[1:] != u[:-1]]
    ustart = np.flatnonzero(new_user)
    lens = np.diff(np.r_[ustart, n])
    pos = np.arange(n) - np.repeat(ustart, lens)
    is_pv = beh == "pv"
    pv = df.loc[is_pv, ["user", "item"]]
    seen_pv = pv.duplicated().to_numpy()
    # First pv of each (user, item): an action is on a viewed item if one came earlier.
    first_pv = pv.loc[~seen_pv].assign(first=np.flatnonzero(is_pv)[~seen_pv])
    acts = df.loc[~is_pv, ["user", "item"]].assign(row=np.flatnonzero(~is_pv))
    acts = acts.merge(first_pv, on=["user", "item"], how="left")
    viewed_before = (acts["first"] < acts["row"]).to_numpy()
    items = df["item"].to_numpy()
    # An action right after a view (or a re-view) of the same item by the same user.
    after_view = np.r_[False, (items[1:] == items[:-1]) & ~new_user[1:] & is_pv[:-1]]
    review = np.zeros(n, dtype=bool)
    review[is_pv] = seen_pv
    after_review = after_view & np.r_[False, review[:-1]]
    n_acts = max(int((~is_pv).sum()), 1)
    item_counts = df["item"].value_counts()
    head_events = int(item_counts.iloc[:max(1, len(item_counts) // 100)].sum())
    sess_start = new_user | np.r_[True, np.diff(ts) > MIN_SESSION_GAP]
    sess = np.cumsum(sess_start) - 1
    cats_per_sess = pd.Series(df["category"].to_numpy()).groupby(sess).nunique()
    hours = np.bincount(((ts + CHINA_UTC_OFFSET) // 3600) % 24, minlength=24)

    # Leave-one-out targets, as datasets.encode splits them.
    train_len = np.where(lens >= 3, lens - 2, np.where(lens == 2, 2, 0))
    in_train = pos < np.repeat(train_len, lens)
    train_items = set(items[in_train].tolist())
    eval_users = np.flatnonzero(lens >= 3)
    last = ustart[eval_users] + lens[eval_users] - 1
    in_hist = np.array([items[t] in set(items[max(s, t - history):t].tolist())
                        for s, t in zip(ustart[eval_users], last)], dtype=bool)
    unseen = np.array([items[t] not in train_items for t in last], dtype=bool)

    shares = pd.Series(beh).value_counts(normalize=True)
    return {
        "users": int(len(ustart)),
        "events": int(n),
        "items": int(len(item_counts)),
        "categories": int(df["category"].nunique()),
        "events_per_user": {"mean": round(float(lens.mean()), 1), "p10": int(np.percentile(lens, 10)),
                            "median": int(np.median(lens)), "p90": int(np.percentile(lens, 90)),
                            "max": int(lens.max())},
        "behavior_shares": {b: round(float(shares.get(b, 0.0)), 4) for b in BEHAVIORS},
        "repeat_view_share": round(float(seen_pv.mean()), 4),
        "action_on_viewed_item_share": round(float(viewed_before.mean()), 4) if len(acts) else 0.0,
        "action_right_after_view_share": round(float((after_view & ~is_pv).sum() / n_acts), 4),
        "action_right_after_review_share": round(float((after_review & ~is_pv).sum() / n_acts), 4),
        "items_per_event": round(len(item_counts) / max(n, 1), 4),
        "items_seen_once_share": round(float((item_counts == 1).mean()), 4),
        "top1pct_items_event_share": round(head_events / max(n, 1), 4),
        "sessions_per_user": round(float(sess_start.sum() / len(ustart)), 2),
        "events_per_session": round(float(n / sess_start.sum()), 2),
        "categories_per_session": round(float(cats_per_sess.mean()), 2),
        "sessions_with_at_most_2_categories": round(float((cats_per_sess <= 2).mean()), 4),
        "peak_hour_china": int(hours.argmax()),
        "trough_hour_china": int(hours.argmin()),
        "test_target_in_last_history_share": round(float(in_hist.mean()), 4),
        "test_target_unseen_in_train_share": round(float(unseen.mean()), 4),
    }

