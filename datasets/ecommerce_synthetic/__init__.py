"""Synthetic e-commerce logs in the exact Taobao UserBehavior.csv format.

    frame = generate(num_users=1000, seed=0)           # user, item, category, behavior, timestamp
    write_csv("UserBehavior.csv", num_users=1000)      # header-less, like the Tianchi file
    ds = datasets.load("taobao-synthetic", num_users=1000, seed=0)   # or resolve("ecommerce-small")

`load` writes the CSV to a temporary file and reads it back with the `taobao` preset
of `datasets.generic`, so generated data takes exactly the parsing path of a real
UserBehavior file (pv -> view, behaviour weights, categorical category...).

Reference statistics (what the defaults reproduce)
--------------------------------------------------
* Tianchi "User Behavior Data from Taobao for Recommendation" (dataset 649,
  https://tianchi.aliyun.com/dataset/649), released with Zhu et al., "Learning
  Tree-based Deep Model for Recommender Systems", KDD 2018: 987,994 users,
  4,162,024 items, 9,439 categories, 100,150,807 behaviours (~101 per user) over
  the 9 days 2017-11-25 .. 2017-12-03 (China time, UTC+8) (sizes as listed on the
  dataset page, e.g. reproduced in github.com/Ye0416/data-mining). Behaviour
  counts, from public SQL analyses of the file: pv 89,716,264 (89.6%), cart
  5,530,446 (5.5%), fav 2,888,258 (2.9%), buy 2,015,839 (2.0%) (buy ~2% also in
  jayzhu1020.github.io/Alibaba_Userdata_visualization).
* Diurnal traffic of Chinese e-commerce: lowest at 4-5 h, rising from 7 h, a
  daytime plateau, highest at 20-22 h (e.g. the Double-11 traffic report
  reprinted at m.qdxinzhong.com/Info_2398.aspx); analyses of this log report that
  browsing concentrates in the evening.
* Re-consumption: Anderson et al., "The Dynamics of Repeat Consumption", WWW
  2014: recency is the strongest predictor of which past item is consumed again,
  with a power-law-with-exponential-cutoff dependence on how many steps ago it was.
* The sample of the real file that motivated this generator (84k events, 55k
  distinct items; of its leave-one-out test targets 28% among the user's last 50
  interactions, 54% never seen in training) calibrates what no publication
  reports: the re-view rate and the within-category Zipf exponent. The funnel
  parameters (`unviewed_action_share`, `checkout_share`, `revisit_action_lift`)
  are plausible assumptions, not measurements.

Generative process
------------------
1. **Catalogue** (never materialised): `num_categories` categories with Zipf
   popularity (exponent `category_zipf`); `num_items` items split over categories,
   popular categories holding more items (`category_size_exponent`); within a
   category item popularity is Zipf (`item_zipf`). Item and category ids are
   scrambled integers, like the serialised ids of the real file.
2. **Users**: a log-normal number of page views (mean `events_per_user` x the pv
   share, spread `activity_sigma`); a category taste (1 + Poisson(`taste_size` - 1)
   categories drawn by global popularity, Dirichlet weights); an exploration rate
   (mean `explore`), a re-view rate (mean `revisit`), a buying propensity
   (log-normal, `buyer_sigma`) and a typical session length (`views_per_session`).
3. **Sessions**: each page view ends the session with probability 1 / session
   length (geometric lengths). Sessions start on a uniform day of the `days`-day
   window at an hour drawn from the diurnal profile `HOUR_PROFILE`, in time order,
   at least `MIN_SESSION_GAP` after the previous one ends; views within a session
   are a log-normal `view_gap_seconds` apart.
4. **Session intent**: a primary category from the user's taste (or, with the
   user's exploration rate, from global popularity), and with probability
   `second_category` a second one; each view is in the primary category except a
   `_SECOND_SHARE` of views in the second. The intent persists within the session
   and switches between sessions following the taste.
5. **Views**: with the user's re-view rate, a view returns to an item the user
   viewed earlier *in the same category*, k same-category views back with
   P(k) ~ k^-`recency_exponent` exp(-k / `recency_scale`); otherwise it draws an
   item of the category by its Zipf popularity.
6. **Funnel**: cart / fav / buy counts are set by `behavior_shares`. A share
   `unviewed_action_share` of them land on items the user never viewed in the
   window (bought from a list page or carted before the window starts); a share
   `checkout_share` of buys check out an item carted earlier, at a later view;
   the rest follow a view of the same item within seconds, choosing the views by
   the user's propensity x `revisit_action_lift` for re-views (users compare
   before they commit).

Timestamps are integer epoch seconds, strictly increasing within a user (so no two
rows are identical and the loader rejects nothing). `describe(frame)` measures all
of the above on a generated or a real UserBehavior frame. See docs/datasets.md.
"""

from __future__ import annotations

import math
import os
import tempfile
from typing import Mapping, Optional

import numpy as np
import pandas as pd

from datasets.dataset import Dataset

COLUMNS = ("user", "item", "category", "behavior", "timestamp")
BEHAVIORS = ("pv", "cart", "fav", "buy")
# Shares of the 100,150,807 rows of the real UserBehavior.csv.
TAOBAO_BEHAVIOR_SHARES = {"pv": 0.8958, "cart": 0.0552, "fav": 0.0288, "buy": 0.0201}
TAOBAO_NUM_ITEMS = 4_162_024
TAOBAO_NUM_CATEGORIES = 9_439

WINDOW_START = 1511539200  # 2017-11-25 00:00 China time: the first day of the real log
CHINA_UTC_OFFSET = 8 * 3600
# Relative traffic by hour of day (China time): trough 3-5 h, plateau 10-18 h, peak 20-22 h.
HOUR_PROFILE = np.array([0.55, 0.30, 0.18, 0.12, 0.10, 0.12, 0.25, 0.50, 0.75, 0.90, 1.00, 1.00,
                         1.00, 1.00, 1.00, 1.00, 0.95, 0.95, 1.00, 1.20, 1.45, 1.60, 1.40, 0.95])
HOUR_PROFILE = HOUR_PROFILE / HOUR_PROFILE.sum()
# The usual 30-minute inactivity rule then recovers the generated sessions.
MIN_SESSION_GAP = 1800
# In a two-category session most views stay on the main intent.
_SECOND_SHARE = 0.3
# Largest taste (categories per user) kept; Poisson(taste_size) rarely exceeds it.
_MAX_TASTE = 32


def generate(
    num_users: int = 1000,
    seed: int = 0,
    *,
    events_per_user: float = 100.0,
    activity_sigma: float = 0.8,
    min_views: int = 5,
    max_views: int = 2000,
    num_items: int = TAOBAO_NUM_ITEMS,
    num_categories: int = TAOBAO_NUM_CATEGORIES,
    category_zipf: float = 1.1,
    category_size_exponent: float = 0.7,
    item_zipf: float = 0.85,
    taste_size: float = 6.0,
    explore: float = 0.3,
    second_category: float = 0.35,
    views_per_session: float = 10.0,
    view_gap_seconds: float = 45.0,
    days: int = 9,
    revisit: float = 0.2,
    recency_exponent: float = 1.0,
    recency_scale: float = 50.0,
    behavior_shares: Optional[Mapping[str, float]] = None,
    unviewed_action_share: float = 0.12,
    checkout_share: float = 0.3,
    revisit_action_lift: float = 4.0,
    buyer_sigma: float = 1.0,
) -> pd.DataFrame:
    """Generate a UserBehavior-format log (deterministic given all arguments).

    Returns a frame with int64 `user`, `item`, `category`, `timestamp` (epoch
    seconds) and str `behavior` in {"pv", "cart", "fav", "buy"}, sorted by user
    and time. The module docstring describes the process.

    Args:
        num_users: users (ids 1..num_users).
        seed: random seed.
        events_per_user: mean behaviours per user; the real log has ~101.
        activity_sigma: log-normal spread of views per user: real users range from
            a few dozen to hundreds of behaviours in the 9 days.
        min_views / max_views: clip of views per user (min >= 3 keeps every user
            in the leave-one-out val and test splits).
        num_items / num_categories: catalogue size; the real catalogue's by default,
            so that a small sample of users sees a long tail of items nobody else
            touched, as a random user sample of the real log does.
        category_zipf: Zipf exponent of category popularity (a few head categories
            take a large share of traffic; thousands are rare).
        category_size_exponent: items per category ~ popularity^this (popular
            categories are also the big ones), with log-normal noise.
        item_zipf: Zipf exponent of item popularity within a category; with the
            large catalogue it makes most items appear once in a 1,000-user sample.
        taste_size: mean number of categories a user keeps coming back to.
        explore: mean probability that a session's category is drawn from global
            popularity instead of the user's taste.
        second_category: probability that a session mixes a second category.
        views_per_session: mean views per session (per-user log-normal around it).
        view_gap_seconds: median seconds between views in a session.
        days: length of the window (9 days like the real log).
        revisit: mean per-user probability that a view returns to an item of the
            same category viewed before, when there is one.
        recency_exponent / recency_scale: P(k same-category views back) ~
            k^-exponent exp(-k / scale): recent items are revisited most.
        behavior_shares: {"pv", "cart", "fav", "buy"} -> share of all rows
            (default `TAOBAO_BEHAVIOR_SHARES`).
        unviewed_action_share: share of cart / fav / buy on items the user did not
            view in the window (list-page actions, items viewed before the window).
        checkout_share: share of buys that check out an earlier cart at a later view.
        revisit_action_lift: how much likelier a re-view is than a first view to be
            followed by cart / fav / buy.
        buyer_sigma: log-normal spread of the per-user propensity to act.
    """
    if num_users < 1:
        raise ValueError("num_users must be >= 1")
    shares = dict(TAOBAO_BEHAVIOR_SHARES if behavior_shares is None else behavior_shares)
    if set(shares) != set(BEHAVIORS) or min(shares.values()) < 0 or shares["pv"] <= 0:
        raise ValueError(f"behavior_shares needs non-negative shares for {BEHAVIORS}, pv > 0")
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0xEC0]))
    U = int(num_users)

    # ---- catalogue ----
    C = int(num_categories)
    cat_pop = np.arange(1, C + 1, dtype=np.float64) ** -category_zipf
    size_w = cat_pop ** category_size_exponent * rng.lognormal(0.0, 0.5, C)
    cat_size = 1 + rng.multinomial(max(int(num_items) - C, 0), size_w / size_w.sum())
    cat_offset = np.concatenate([[0], np.cumsum(cat_size)[:-1]])

    def new_items(cats):
        return cat_offset[cats] + _zipf_rank(rng.random(len(cats)), cat_size[cats], item_zipf)

    # ---- users ----
    pv_share = shares["pv"] / sum(shares.values())
    mean_views = events_per_user * pv_share
    views = np.round(rng.lognormal(math.log(mean_views) - activity_sigma ** 2 / 2, activity_sigma, U))
    views = np.clip(views, max(1, min_views), max_views).astype(np.int64)
    n_taste = np.minimum(1 + rng.poisson(max(taste_size - 1.0, 0.0), U), _MAX_TASTE)
    taste_cat = _zipf_rank(rng.random((U, _MAX_TASTE)), C, category_zipf)
    taste_logw = np.log(rng.gamma(0.7, 1.0, (U, _MAX_TASTE)) + 1e-300)
    taste_logw[np.arange(_MAX_TASTE)[None, :] >= n_taste[:, None]] = -np.inf
    p_explore = _beta_mean(rng, explore, U)
    p_revisit = _beta_mean(rng, revisit, U)
    propensity = rng.lognormal(-buyer_sigma ** 2 / 2, buyer_sigma, U)
    sess_len = rng.lognormal(math.log(views_per_session) - 0.125, 0.5, U)

    # ---- page views and sessions (one row per view, grouped by user, in order) ----
    V = int(views.sum())
    uid = np.repeat(np.arange(U), views)
    first = np.concatenate([[0], np.cumsum(views)[:-1]])
    pos = np.arange(V) - np.repeat(first, views)
    starts = (pos == 0) | (rng.random(V) < 1.0 / np.maximum(sess_len[uid], 1.0))
    sid = np.cumsum(starts) - 1
    S = int(sid[-1]) + 1
    s_uid = uid[starts]

    def session_category(n):
        exp = rng.random(n) < p_explore[s_uid]
        pick = np.argmax(taste_logw[s_uid] + _gumbel(rng, (n, _MAX_TASTE)), 1)
        return np.where(exp, _zipf_rank(rng.random(n), C, category_zipf), taste_cat[s_uid, pick])

    primary = session_category(S)
    secondary = session_category(S)
    two = rng.random(S) < second_category
    v_cat = np.where(two[sid] & (rng.random(V) < _SECOND_SHARE), secondary[sid], primary[sid])

    # Re-views: point to an earlier view of the same user and category, then copy
    # its item (following chains of re-views back to a fresh draw).
    order = np.lexsort((pos, v_cat, uid))
    grp_start = np.ones(V, dtype=bool)
    grp_start[1:] = (uid[order][1:] != uid[order][:-1]) | (v_cat[order][1:] != v_cat[order][:-1])
    g = np.arange(V) - np.maximum.accumulate(np.where(grp_start, np.arange(V), 0))
    rev = (g > 0) & (rng.random(V) < p_revisit[uid[order]])
    k = np.arange(1, int(views.max()) + 1, dtype=np.float64)
    kernel = np.cumsum(k ** -recency_exponent * np.exp(-k / recency_scale))
    back = np.searchsorted(kernel, rng.random(V) * kernel[np.maximum(g, 1) - 1], side="right") + 1
    src = np.arange(V)
    src[order[rev]] = order[np.flatnonzero(rev) - np.minimum(back[rev], g[rev])]
    while True:
        nxt = src[src]
        if np.array_equal(nxt, src):
            break
        src = nxt
    v_item = new_items(v_cat)[src]

    # ---- view times ----
    gap = np.clip(rng.lognormal(math.log(view_gap_seconds), 1.0, V), 2.0, MIN_SESSION_GAP - 300)
    gap_before = np.where(starts, 0.0, gap)
    elapsed = np.cumsum(gap_before)
    in_sess = elapsed - elapsed[starts][sid]
    sess_dur = np.bincount(sid, weights=gap_before, minlength=S)
    hour = rng.choice(24, size=S, p=HOUR_PROFILE)
    t_draw = rng.integers(0, days, S) * 86400.0 + hour * 3600.0 + rng.random(S) * 3600.0
    # Session starts in time order per user, then pushed to keep MIN_SESSION_GAP:
    # s_k = max(t_k, s_{k-1} + dur_{k-1} + gap) = D_k + cummax_j<=k (t_j - D_j).
    t_sorted = t_draw[np.lexsort((t_draw, s_uid))]
    step = sess_dur + MIN_SESSION_GAP
    s_first = np.flatnonzero(np.r_[True, s_uid[1:] != s_uid[:-1]])
    d = np.cumsum(step) - step
    d -= np.repeat(d[s_first], np.diff(np.r_[s_first, S]))
    big = 1e8 * s_uid
    s_start = d + np.maximum.accumulate(t_sorted - d + big) - big
    # Pushed sessions of very active users may run past the window: move them back.
    s_last = np.r_[s_first[1:], S] - 1
    spill = np.maximum(s_start[s_last] + sess_dur[s_last] + 600 - days * 86400.0, 0.0)
    s_start -= np.minimum(spill, s_start[s_first])[np.searchsorted(s_first, np.arange(S), side="right") - 1]
    v_time = s_start[sid] + in_sess
    next_same = np.r_[~starts[1:], False]
    gap_after = np.where(next_same, np.r_[gap_before[1:], 0.0], 120.0)

    # ---- funnel: cart / fav / buy ----
    seen = pd.DataFrame({"u": uid, "i": v_item}).duplicated().to_numpy()
    n_act = {b: int(round(V * shares[b] / shares["pv"])) for b in BEHAVIORS[1:]}
    n_blind = {b: int(round(n * unviewed_action_share)) for b, n in n_act.items()}
    n_checkout = int(round((n_act["buy"] - n_blind["buy"]) * checkout_share))
    weight = propensity[uid] * np.where(seen, revisit_action_lift, 1.0)
    a_user, a_item, a_cat, a_beh, a_time = [], [], [], [], []

    def act(rows, beh, items, after):
        """`beh` on `items` by the users of views `rows`, seconds after view `after`."""
        a_user.append(uid[rows])
        a_item.append(items)
        a_cat.append(v_cat[rows])
        a_beh.append(np.full(len(rows), BEHAVIORS.index(beh)))
        a_time.append(v_time[after] + gap_after[after] * rng.uniform(0.1, 0.6, len(rows)))

    followed = {}
    for b in BEHAVIORS[1:]:
        n_follow = n_act[b] - n_blind[b] - (n_checkout if b == "buy" else 0)
        followed[b] = _weighted_sample(rng, weight, n_follow)
        act(followed[b], b, v_item[followed[b]], followed[b])
        blind = _weighted_sample(rng, propensity[uid], n_blind[b])
        act(blind, b, new_items(v_cat[blind]), blind)
    # Checkouts: an earlier cart is bought after a later view of the same user.
    last = np.repeat(first + views - 1, views)
    carts = followed["cart"]
    eligible = carts[carts < last[carts]]
    co = eligible[rng.permutation(len(eligible))[:n_checkout]]
    later = co + 1 + np.floor(rng.random(len(co)) * (last[co] - co)).astype(np.int64)
    act(co, "buy", v_item[co], later)

    # ---- assemble ----
    user = np.concatenate([uid, *a_user])
    item = np.concatenate([v_item, *a_item])
    cat = np.concatenate([v_cat, *a_cat])
    beh = np.concatenate([np.zeros(V, np.int64), *a_beh])
    t = np.concatenate([v_time, *a_time])
    o = np.lexsort((t, user))
    user, item, cat, beh, t = user[o], item[o], cat[o], beh[o], t[o]
    # Integer seconds, strictly increasing within a user: ts_k = k + cummax(floor(t_j) - j).
    n = len(user)
    j = np.arange(n, dtype=np.int64)
    big_u = np.int64(10 ** 10) * user
    ts = j + np.maximum.accumulate(np.floor(t).astype(np.int64) - j + big_u) - big_u
    return pd.DataFrame({
        "user": user + 1,
        "item": _scramble(item, int(cat_size.sum()), rng) + 1,
        "category": _scramble(cat, C, rng) + 1,
        "behavior": np.asarray(BEHAVIORS, dtype=object)[beh],
        "timestamp": WINDOW_START + ts,
    })


def write_csv(path, **kwargs) -> str:
    """Write `generate(**kwargs)` as UserBehavior.csv: no header, comma-separated
    user_id,item_id,category_id,behavior_type,timestamp. Returns the path."""
    generate(**kwargs).to_csv(path, header=False, index=False, columns=list(COLUMNS))
    return str(path)


def load(num_users: int = 1000, seed: int = 0, **kwargs) -> Dataset:
    """Generate, write a temporary UserBehavior.csv and read it with the `taobao` preset."""
    from datasets import generic

    with tempfile.TemporaryDirectory(prefix="taobao-synthetic-") as tmp:
        path = write_csv(os.path.join(tmp, "UserBehavior.csv"), num_users=num_users, seed=seed, **kwargs)
        ds = generic.load(path, preset="taobao", name="taobao-synthetic")
    ds.report.note("generator", dict(num_users=num_users, seed=seed, **kwargs))
    return ds


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


def _zipf_rank(u: np.ndarray, n, a: float) -> np.ndarray:
    """0-based ranks in [0, n) with P(rank r) ~ (r + 1)^-a: the inverse CDF of the
    continuous power law on [1, n + 1), floored (n may be an array)."""
    n = np.asarray(n, dtype=np.float64)
    if abs(a - 1.0) < 1e-9:
        x = np.exp(u * np.log(n + 1.0))
    else:
        b = 1.0 - a
        x = (1.0 + u * ((n + 1.0) ** b - 1.0)) ** (1.0 / b)
    return np.clip(np.floor(x).astype(np.int64) - 1, 0, n.astype(np.int64) - 1)


def _beta_mean(rng: np.random.Generator, mean: float, size: int, concentration: float = 4.0) -> np.ndarray:
    """Per-user rates spread around `mean` (users differ; a Beta keeps them in [0, 1])."""
    mean = float(np.clip(mean, 1e-6, 1 - 1e-6))
    return rng.beta(mean * concentration, (1 - mean) * concentration, size)


def _gumbel(rng: np.random.Generator, shape) -> np.ndarray:
    return -np.log(-np.log(rng.random(shape) + 1e-300) + 1e-300)


def _weighted_sample(rng: np.random.Generator, weight: np.ndarray, k: int) -> np.ndarray:
    """k distinct indices drawn with probability ~ weight (Efraimidis-Spirakis keys)."""
    k = int(min(max(k, 0), len(weight)))
    if k == 0:
        return np.zeros(0, np.int64)
    keys = np.log(rng.random(len(weight)) + 1e-300) / weight
    return np.sort(np.argpartition(-keys, k - 1)[:k])


def _scramble(x: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """A random bijection of [0, n) (x -> a x + b mod n, gcd(a, n) = 1): ids that do
    not reveal popularity ranks, as in the real file."""
    while True:
        a = int(rng.integers(n // 3 + 1, max(n, 2)))
        if math.gcd(a, n) == 1:
            break
    return (x * a + int(rng.integers(0, n))) % n
