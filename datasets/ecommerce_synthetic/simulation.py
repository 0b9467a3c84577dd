"""The steps of the e-commerce generator (the package docstring's generative process).

`generate` runs them in this order, which is also the order of the random draws
(a seed gives the same log): the catalogue (`Catalogue`), the users (`Users`), the
page views (`simulate_views`: sessions, their categories, re-views, times), the
funnel (`funnel`: cart / fav / buy), and `assemble` (sorted rows, integer
timestamps, scrambled ids).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd

from datasets.ecommerce_synthetic.reference import BEHAVIORS, HOUR_PROFILE, MIN_SESSION_GAP, WINDOW_START

# In a two-category session most views stay on the main intent.
_SECOND_SHARE = 0.3
# Largest taste (categories per user) kept; Poisson(taste_size) rarely exceeds it.
_MAX_TASTE = 32


class Catalogue:
    """Categories with Zipf popularity and sizes growing with it, items with Zipf
    popularity within their category (never materialised: items are drawn by rank)."""

    def __init__(self, rng, num_items: int, num_categories: int, category_zipf: float,
                 category_size_exponent: float, item_zipf: float):
        C = int(num_categories)
        self.num_categories = C
        self.category_zipf = category_zipf
        self.item_zipf = item_zipf
        cat_pop = np.arange(1, C + 1, dtype=np.float64) ** -category_zipf
        size_w = cat_pop ** category_size_exponent * rng.lognormal(0.0, 0.5, C)
        self.size = 1 + rng.multinomial(max(int(num_items) - C, 0), size_w / size_w.sum())
        self.offset = np.concatenate([[0], np.cumsum(self.size)[:-1]])

    @property
    def num_items(self) -> int:
        return int(self.size.sum())

    def popular_categories(self, rng, shape) -> np.ndarray:
        """Categories drawn by global popularity."""
        return _zipf_rank(rng.random(shape), self.num_categories, self.category_zipf)

    def new_items(self, rng, cats: np.ndarray) -> np.ndarray:
        """An item of each category of `cats`, by its popularity within the category."""
        return self.offset[cats] + _zipf_rank(rng.random(len(cats)), self.size[cats], self.item_zipf)


@dataclasses.dataclass
class Users:
    """Per-user traits: page views, category taste, exploration and re-view rates,
    propensity to act, typical session length."""

    views: np.ndarray
    taste_cat: np.ndarray  # [U, _MAX_TASTE] categories
    taste_logw: np.ndarray  # [U, _MAX_TASTE] log weights, -inf past the user's taste size
    p_explore: np.ndarray
    p_revisit: np.ndarray
    propensity: np.ndarray
    sess_len: np.ndarray

    @classmethod
    def draw(cls, rng, catalogue: Catalogue, num_users: int, *, mean_views, activity_sigma, min_views, max_views,
             taste_size, explore, revisit, buyer_sigma, views_per_session) -> "Users":
        U = int(num_users)
        views = np.round(rng.lognormal(math.log(mean_views) - activity_sigma ** 2 / 2, activity_sigma, U))
        views = np.clip(views, max(1, min_views), max_views).astype(np.int64)
        n_taste = np.minimum(1 + rng.poisson(max(taste_size - 1.0, 0.0), U), _MAX_TASTE)
        taste_cat = catalogue.popular_categories(rng, (U, _MAX_TASTE))
        taste_logw = np.log(rng.gamma(0.7, 1.0, (U, _MAX_TASTE)) + 1e-300)
        taste_logw[np.arange(_MAX_TASTE)[None, :] >= n_taste[:, None]] = -np.inf
        p_explore = _beta_mean(rng, explore, U)
        p_revisit = _beta_mean(rng, revisit, U)
        propensity = rng.lognormal(-buyer_sigma ** 2 / 2, buyer_sigma, U)
        sess_len = rng.lognormal(math.log(views_per_session) - 0.125, 0.5, U)
        return cls(views, taste_cat, taste_logw, p_explore, p_revisit, propensity, sess_len)


@dataclasses.dataclass
class Views:
    """One entry per page view, grouped by user, in order."""

    uid: np.ndarray
    first: np.ndarray  # per user: the index of their first view
    cat: np.ndarray
    item: np.ndarray
    time: np.ndarray  # seconds from the window start
    gap_after: np.ndarray  # seconds to the next view of the session (120 after the last)


def simulate_views(rng, catalogue: Catalogue, users: Users, *, second_category, recency_exponent, recency_scale,
                   view_gap_seconds, days) -> Views:
    """Page views: sessions, their categories, re-views and new items, times."""
    views = users.views
    V = int(views.sum())
    uid = np.repeat(np.arange(len(views)), views)
    first = np.concatenate([[0], np.cumsum(views)[:-1]])
    pos = np.arange(V) - np.repeat(first, views)
    starts = (pos == 0) | (rng.random(V) < 1.0 / np.maximum(users.sess_len[uid], 1.0))
    sid = np.cumsum(starts) - 1
    s_uid = uid[starts]
    v_cat = _view_categories(rng, catalogue, users, s_uid, sid, second_category)
    src = _review_sources(rng, users, uid, pos, v_cat, recency_exponent, recency_scale)
    v_item = catalogue.new_items(rng, v_cat)[src]
    v_time, gap_after = _view_times(rng, s_uid, starts, sid, view_gap_seconds, days)
    return Views(uid, first, v_cat, v_item, v_time, gap_after)


def _view_categories(rng, catalogue: Catalogue, users: Users, s_uid, sid, second_category) -> np.ndarray:
    """Each session's primary (and maybe second) category, from the user's taste or,
    exploring, from global popularity; then each view's category."""
    S, V = len(s_uid), len(sid)

    def session_category(n):
        exp = rng.random(n) < users.p_explore[s_uid]
        pick = np.argmax(users.taste_logw[s_uid] + _gumbel(rng, (n, _MAX_TASTE)), 1)
        return np.where(exp, catalogue.popular_categories(rng, n), users.taste_cat[s_uid, pick])

    primary = session_category(S)
    secondary = session_category(S)
    two = rng.random(S) < second_category
    return np.where(two[sid] & (rng.random(V) < _SECOND_SHARE), secondary[sid], primary[sid])


def _review_sources(rng, users: Users, uid, pos, v_cat, recency_exponent, recency_scale) -> np.ndarray:
    """Per view, the view whose fresh item it shows: itself, or for a re-view an
    earlier view of the same user and category, k such views back with
    P(k) ~ k^-exponent exp(-k / scale), followed back through chains of re-views."""
    V = len(uid)
    order = np.lexsort((pos, v_cat, uid))
    grp_start = np.ones(V, dtype=bool)
    grp_start[1:] = (uid[order][1:] != uid[order][:-1]) | (v_cat[order][1:] != v_cat[order][:-1])
    g = np.arange(V) - np.maximum.accumulate(np.where(grp_start, np.arange(V), 0))
    rev = (g > 0) & (rng.random(V) < users.p_revisit[uid[order]])
    k = np.arange(1, int(users.views.max()) + 1, dtype=np.float64)
    kernel = np.cumsum(k ** -recency_exponent * np.exp(-k / recency_scale))
    back = np.searchsorted(kernel, rng.random(V) * kernel[np.maximum(g, 1) - 1], side="right") + 1
    src = np.arange(V)
    src[order[rev]] = order[np.flatnonzero(rev) - np.minimum(back[rev], g[rev])]
    while True:
        nxt = src[src]
        if np.array_equal(nxt, src):
            break
        src = nxt
    return src


def _view_times(rng, s_uid, starts, sid, view_gap_seconds, days):
    """View times (seconds from the window start) and the gap after each view.

    Sessions start at an hour of the diurnal profile on a uniform day, in time order
    per user, at least MIN_SESSION_GAP after the previous one ends.
    """
    S, V = len(s_uid), len(sid)
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
    return v_time, gap_after


def funnel(rng, catalogue: Catalogue, users: Users, views: Views, shares, *, unviewed_action_share,
           checkout_share, revisit_action_lift) -> list[tuple]:
    """Cart / fav / buy rows as (user, item, category, behaviour index, time) blocks:
    actions right after a view (re-views likelier), actions on unviewed items, and
    checkouts of earlier carts."""
    uid, v_item, v_cat = views.uid, views.item, views.cat
    V = len(uid)
    seen = pd.DataFrame({"u": uid, "i": v_item}).duplicated().to_numpy()
    n_act = {b: int(round(V * shares[b] / shares["pv"])) for b in BEHAVIORS[1:]}
    n_blind = {b: int(round(n * unviewed_action_share)) for b, n in n_act.items()}
    n_checkout = int(round((n_act["buy"] - n_blind["buy"]) * checkout_share))
    weight = users.propensity[uid] * np.where(seen, revisit_action_lift, 1.0)
    blocks = []

    def act(rows, beh, items, after):
        """`beh` on `items` by the users of views `rows`, seconds after view `after`."""
        blocks.append((uid[rows], items, v_cat[rows], np.full(len(rows), BEHAVIORS.index(beh)),
                       views.time[after] + views.gap_after[after] * rng.uniform(0.1, 0.6, len(rows))))

    followed = {}
    for b in BEHAVIORS[1:]:
        n_follow = n_act[b] - n_blind[b] - (n_checkout if b == "buy" else 0)
        followed[b] = _weighted_sample(rng, weight, n_follow)
        act(followed[b], b, v_item[followed[b]], followed[b])
        blind = _weighted_sample(rng, users.propensity[uid], n_blind[b])
        act(blind, b, catalogue.new_items(rng, v_cat[blind]), blind)
    # Checkouts: an earlier cart is bought after a later view of the same user.
    last = np.repeat(views.first + users.views - 1, users.views)
    carts = followed["cart"]
    eligible = carts[carts < last[carts]]
    co = eligible[rng.permutation(len(eligible))[:n_checkout]]
    later = co + 1 + np.floor(rng.random(len(co)) * (last[co] - co)).astype(np.int64)
    act(co, "buy", v_item[co], later)
    return blocks


def assemble(rng, catalogue: Catalogue, views: Views, actions: list[tuple]) -> pd.DataFrame:
    """Views and actions as UserBehavior rows sorted by user and time, with integer
    timestamps strictly increasing within a user and scrambled item / category ids."""
    a_user, a_item, a_cat, a_beh, a_time = zip(*actions)
    user = np.concatenate([views.uid, *a_user])
    item = np.concatenate([views.item, *a_item])
    cat = np.concatenate([views.cat, *a_cat])
    beh = np.concatenate([np.zeros(len(views.uid), np.int64), *a_beh])
    t = np.concatenate([views.time, *a_time])
    o = np.lexsort((t, user))
    user, item, cat, beh, t = user[o], item[o], cat[o], beh[o], t[o]
    # Integer seconds, strictly increasing within a user: ts_k = k + cummax(floor(t_j) - j).
    n = len(user)
    j = np.arange(n, dtype=np.int64)
    big_u = np.int64(10 ** 10) * user
    ts = j + np.maximum.accumulate(np.floor(t).astype(np.int64) - j + big_u) - big_u
    return pd.DataFrame({
        "user": user + 1,
        "item": _scramble(item, catalogue.num_items, rng) + 1,
        "category": _scramble(cat, catalogue.num_categories, rng) + 1,
        "behavior": np.asarray(BEHAVIORS, dtype=object)[beh],
        "timestamp": WINDOW_START + ts,
    })


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
