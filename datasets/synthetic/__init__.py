"""Synthetic Netflix-like engagement logs with ground-truth latent session intents.

`datasets.load("synthetic", num_users=1000, seed=0)`; see docs/datasets.md for the
generative process. In short:

* a catalogue of titles (movies and shows; shows have episodes), each with 1-3
  genres, a release date (some released during the simulated period), a runtime
  and a popularity;
* users with a persona: a mix of action intents (discover / continue / rewatch),
  genre tastes, a movie-vs-show preference, an appetite for new releases, a
  chronotype (when in the day they watch), a binge factor and a visit frequency;
* sessions: separated by hours or days with a diurnal pattern; each session
  draws a latent intent (action, mood genre, movie/show, new/catalogue) from the
  persona *modulated by the session's time context* (late night, weekend
  afternoon, ...), and the intent persists for the whole session;
* within a session each interaction follows the intent (continue -> an
  in-progress title, usually the one just watched; rewatch -> a finished title;
  discover -> an unseen, released title scored by mood, type and release match),
  except for a `noise` fraction of off-intent popularity picks and fallbacks when
  the intent cannot be served (nothing in progress, ...);
* the observed `action_type` is what actually happened (first time / in progress /
  finished before), `duration` depends on completion (intent-dependent), and
  `weight` is the watched hours.

Generation is vectorised across users: one Python iteration per interaction
*index* (not per interaction), in chunks of users.
"""

from __future__ import annotations

import math
from typing import Optional

import numpy as np
import pandas as pd

from datasets.dataset import Dataset, IngestReport, finalize
from datasets.schema import (
    ITEM,
    MULTI_LABEL_SEP,
    RELEASE_BUCKET_BOUNDS_DAYS,
    RELEASE_BUCKET_NAMES,
    TIMESTAMP,
    USER,
    WEIGHT,
    IntentSpec,
    InteractionSchema,
)

GENRES = ("action", "animation", "comedy", "crime", "documentary", "drama", "family",
          "horror", "reality", "romance", "scifi", "thriller")
G = len(GENRES)
_GI = {g: i for i, g in enumerate(GENRES)}
GENRE_PRIOR = np.array([.11, .05, .15, .08, .07, .16, .06, .06, .04, .07, .06, .09])
GENRE_PRIOR = GENRE_PRIOR / GENRE_PRIOR.sum()
_AFFINITY = {
    "action": ("thriller", "scifi", "crime", "comedy"), "animation": ("family", "comedy", "action"),
    "comedy": ("romance", "family", "drama"), "crime": ("drama", "thriller"),
    "documentary": ("crime", "drama", "reality"), "drama": ("romance", "crime", "thriller"),
    "family": ("animation", "comedy"), "horror": ("thriller", "scifi"),
    "reality": ("documentary", "comedy"), "romance": ("comedy", "drama"),
    "scifi": ("action", "thriller", "horror"), "thriller": ("crime", "action", "horror", "drama"),
}

# Latent / observed action types.
DISCOVER, CONTINUE, REWATCH = 0, 1, 2
ACTIONS = ("discover", "continue", "rewatch")
ITEM_TYPES = ("movie", "show")
RELEASE_INTENTS = ("catalog", "new")
CHRONOTYPES = ("evening", "night_owl", "daytime")

# Time-context slots: period of the day x weekend.
PERIODS = ("night", "daytime", "evening", "late_night")  # 2-8h, 8-17h, 17-22h, 22-2h
SLOTS = tuple(f"{w}_{p}" for w in ("weekday", "weekend") for p in PERIODS)

SIM_START = 1672531200  # 2023-01-01T00:00:00Z
DAY = 86400
NEW_RELEASE_DAYS = 30.0  # "new release" for the generator's intent (= buckets new_week + new_month)

_IN_PROGRESS_SLOTS = 4
_FINISHED_SLOTS = 12


def _hour_profiles() -> np.ndarray:
    evening = np.full(24, 0.15)
    evening[7:12] = 0.5
    evening[12:17] = 1.0
    evening[17:19] = 2.5
    evening[19:23] = 5.0
    evening[23] = 2.0
    night = np.full(24, 0.3)
    night[10:17] = 0.8
    night[17:20] = 1.5
    night[20:22] = 3.0
    night[22:24] = 5.0
    night[0:3] = 4.0
    day = np.full(24, 0.1)
    day[8:12] = 2.0
    day[12:18] = 3.5
    day[18:22] = 2.0
    out = np.stack([evening, night, day])
    return out / out.sum(1, keepdims=True)


HOUR_PROFILES = _hour_profiles()


def _context_tables():
    """Additive logit effects of the session's time slot on its intent."""
    S = len(SLOTS)
    act = np.zeros((S, 3))
    gen = np.zeros((S, G))
    show = np.zeros(S)
    new = np.zeros(S)
    for s, name in enumerate(SLOTS):
        weekend, period = name.split("_", 1)
        we = weekend == "weekend"
        if period == "late_night":
            act[s, CONTINUE] += 0.6
            gen[s, [_GI["horror"], _GI["thriller"], _GI["scifi"]]] += [0.9, 0.6, 0.3]
            show[s] += 0.3
        elif period == "daytime":
            if we:
                gen[s, [_GI["family"], _GI["animation"], _GI["comedy"]]] += [1.1, 1.1, 0.3]
                act[s, REWATCH] += 0.4
                show[s] -= 0.3
            else:
                gen[s, [_GI["documentary"], _GI["reality"]]] += [0.5, 0.5]
        elif period == "evening":
            if we:
                gen[s, [_GI["action"], _GI["comedy"], _GI["romance"], _GI["scifi"]]] += [0.6, 0.4, 0.3, 0.3]
                act[s, DISCOVER] += 0.5
                show[s] -= 0.8
                new[s] += 0.9
            else:
                gen[s, [_GI["drama"], _GI["crime"], _GI["reality"]]] += [0.3, 0.5, 0.4]
                act[s, CONTINUE] += 0.3
                show[s] += 0.5
                new[s] -= 0.2
        else:  # night
            act[s, CONTINUE] += 0.3
    return act, gen, show, new


CTX_ACTION, CTX_GENRE, CTX_SHOW, CTX_NEW = _context_tables()

_ADJ = ("Silent", "Broken", "Golden", "Hidden", "Last", "Crimson", "Electric", "Lost", "Wild",
        "Frozen", "Midnight", "Secret", "Burning", "Distant", "Hollow", "Iron", "Velvet", "Savage",
        "Quiet", "Bright", "Dark", "Little", "Endless", "Final", "Northern", "Paper", "Glass",
        "Scarlet", "Stolen", "Bitter", "Lucky", "Restless", "Sunken", "Twisted", "Wandering")
_NOUN = ("Harbor", "Kingdom", "Witness", "Garden", "Signal", "Empire", "River", "Mirror", "Frontier",
         "Circus", "Protocol", "Orchard", "Detective", "Voyage", "Horizon", "Crown", "Station",
         "Island", "Letters", "Machine", "Summer", "Winter", "Family", "Heist", "Academy", "Dynasty",
         "Shadows", "Paradise", "Tides", "Files", "Code", "Valley", "Outpost", "Reckoning", "Games")


def _titles(rng: np.random.Generator, n: int, is_show: np.ndarray) -> list[str]:
    a = rng.integers(0, len(_ADJ), n)
    b = rng.integers(0, len(_NOUN), n)
    seen: dict[str, int] = {}
    out = []
    for i in range(n):
        base = f"The {_ADJ[a[i]]} {_NOUN[b[i]]}" if (a[i] + b[i]) % 3 == 0 else f"{_ADJ[a[i]]} {_NOUN[b[i]]}"
        k = seen.get(base, 0)
        seen[base] = k + 1
        if k:
            base = f"{base}: Season {k + 1}" if is_show[i] else f"{base} {k + 1}"
        out.append(base)
    return out


class _Catalogue:
    def __init__(self, rng: np.random.Generator, num_items: int, horizon_days: float):
        I = num_items
        self.I = I
        self.is_show = rng.random(I) < 0.4
        primary = rng.choice(G, size=I, p=GENRE_PRIOR)
        gm = np.zeros((I, G), dtype=bool)
        gm[np.arange(I), primary] = True
        aff = np.zeros((G, G))
        for g, comps in _AFFINITY.items():
            for j, c in enumerate(comps):
                aff[_GI[g], _GI[c]] = 1.0 / (j + 1)
        aff = 0.75 * aff / aff.sum(1, keepdims=True) + 0.25 * GENRE_PRIOR[None, :]
        aff[np.arange(G), np.arange(G)] = 0
        aff /= aff.sum(1, keepdims=True)
        cdf = np.cumsum(aff, 1)[primary]
        sec = np.minimum((cdf < rng.random(I)[:, None]).sum(1), G - 1)
        has_sec = rng.random(I) < 0.55
        gm[np.arange(I)[has_sec], sec[has_sec]] = True
        has_third = rng.random(I) < 0.15
        third = rng.integers(0, G, I)
        gm[np.arange(I)[has_third], third[has_third]] = True
        self.genres = gm
        self.primary = primary
        kind = rng.choice(3, size=I, p=[0.45, 0.15, 0.40])
        offset_days = np.where(
            kind == 0, -rng.uniform(365, 365 * 25, I),
            np.where(kind == 1, -rng.uniform(30, 365, I), rng.uniform(-30, horizon_days, I)))
        self.release_ts = (SIM_START + np.floor(offset_days) * DAY + 8 * 3600).astype(np.int64)
        movie_rt = np.clip(rng.normal(105, 18, I), 75, 170)
        ep_rt = rng.choice([24.0, 30.0, 45.0, 55.0], size=I, p=[.25, .15, .35, .25]) + rng.normal(0, 3, I)
        self.runtime = np.round(np.where(self.is_show, np.clip(ep_rt, 18, 70), movie_rt), 1)
        self.n_eps = np.where(self.is_show, 4 + rng.poisson(6, I), 1).astype(np.int16)
        self.popularity = rng.lognormal(0.0, 1.0, I)
        self.logpop = np.log(self.popularity)
        self.titles = _titles(rng, I, self.is_show)
        width = max(5, len(str(I)))
        self.ids = np.array([f"t{i:0{width}d}" for i in range(I)], dtype=object)
        self.genre_str = np.array(
            [MULTI_LABEL_SEP.join(GENRES[g] for g in np.flatnonzero(row)) for row in gm], dtype=object)
        # Samplers: popularity-weighted per genre pool, by release order, global.
        pools = [np.flatnonzero(gm[:, g]) for g in range(G)]
        self.pool_items = np.concatenate(pools)
        lens = np.array([len(p) for p in pools])
        self.pool_start = np.concatenate([[0], np.cumsum(lens)[:-1]])
        self.pool_end = np.cumsum(lens)
        self.pool_cum = np.concatenate([[0.0], np.cumsum(self.popularity[self.pool_items])])
        self.rel_order = np.argsort(self.release_ts, kind="stable")
        self.rel_sorted = self.release_ts[self.rel_order]
        self.rel_cum = np.concatenate([[0.0], np.cumsum(self.popularity[self.rel_order])])
        self.glob_cum = np.concatenate([[0.0], np.cumsum(self.popularity)])

    def frame(self) -> pd.DataFrame:
        rel = pd.to_datetime(self.release_ts, unit="s", utc=True)
        return pd.DataFrame({
            ITEM: self.ids,
            "title": self.titles,
            "item_type": np.where(self.is_show, "show", "movie").astype(object),
            "genre": self.genre_str,
            "release_date": rel.strftime("%Y-%m-%d").to_numpy(dtype=object),
            "release_ts": self.release_ts,
            "runtime_minutes": self.runtime,
            "episodes": self.n_eps.astype(np.int64),
            "popularity": self.popularity,
        })

    # Samplers: uniform u in [cum[lo], cum[hi]) -> index via searchsorted.
    @staticmethod
    def _draw(cum, lo, hi, u):
        a = cum[lo][:, None]
        b = cum[hi][:, None]
        x = a + u * (b - a)
        j = np.searchsorted(cum, x, side="right") - 1
        return np.clip(j, lo[:, None], np.maximum(hi - 1, lo)[:, None])

    def sample_genre(self, rng, genre, k):
        lo, hi = self.pool_start[genre], self.pool_end[genre]
        j = self._draw(self.pool_cum, lo, hi, rng.random((len(genre), k)))
        out = self.pool_items[np.minimum(j, len(self.pool_items) - 1)]
        return np.where((hi > lo)[:, None], out, -1)

    def sample_new(self, rng, ts, k):
        lo = np.searchsorted(self.rel_sorted, ts - NEW_RELEASE_DAYS * DAY, side="left")
        hi = np.searchsorted(self.rel_sorted, ts, side="right")
        j = self._draw(self.rel_cum, lo, hi, rng.random((len(ts), k)))
        out = self.rel_order[np.minimum(j, self.I - 1)]
        return np.where((hi > lo)[:, None], out, -1)

    def sample_global(self, rng, n, k):
        lo = np.zeros(n, dtype=np.int64)
        hi = np.full(n, self.I, dtype=np.int64)
        return self._draw(self.glob_cum, lo, hi, rng.random((n, k)))


def _gumbel(rng, shape):
    return -np.log(-np.log(rng.random(shape) + 1e-12) + 1e-12)


def _slot(ts: np.ndarray) -> np.ndarray:
    hour = (ts // 3600) % 24
    dow = ((ts // DAY) + 3) % 7  # 0 = Monday (1970-01-01 was a Thursday)
    period = np.select([(hour >= 2) & (hour < 8), (hour >= 8) & (hour < 17), (hour >= 17) & (hour < 22)],
                       [0, 1, 2], default=3)
    weekend = (dow >= 5) | ((dow == 4) & (period >= 2))
    weekend &= ~((dow == 6) & (period == 3))  # Sunday late night is a school night
    return (weekend.astype(np.int64) * len(PERIODS) + period).astype(np.int64)


def _upsert(ring_items, ring_time, rows, items, times):
    if len(rows) == 0:
        return
    hit = ring_items[rows] == items[:, None]
    has = hit.any(1)
    slot = np.where(has, hit.argmax(1), ring_time[rows].argmin(1))
    ring_items[rows, slot] = items
    ring_time[rows, slot] = times


def _remove(ring_items, ring_time, rows, items):
    if len(rows) == 0:
        return
    hit = ring_items[rows] == items[:, None]
    has = hit.any(1)
    slot = hit.argmax(1)
    ring_items[rows[has], slot[has]] = -1
    ring_time[rows[has], slot[has]] = -1


def _align_intent(cat: _Catalogue, users, items, s_genre, s_show):
    """A continue / rewatch session is *about* the title it resumes: when that title
    lacks the drawn mood genre, the session's mood (and type) become the title's, and
    persist for the rest of the session."""
    if len(users) == 0:
        return
    miss = ~cat.genres[items, s_genre[users]]
    s_genre[users[miss]] = cat.primary[items[miss]]
    s_show[users] = cat.is_show[items]


def _draw_hours(rng, chrono):
    cdf = np.cumsum(HOUR_PROFILES, 1)[chrono]
    return np.minimum((cdf < rng.random(len(chrono))[:, None]).sum(1), 23)


def _simulate_chunk(rng, cat: _Catalogue, n_users: int, mean_len: float, min_len: int,
                    max_len: int, noise: float, horizon_days: float):
    U, I = n_users, cat.I
    # ---- personas ----
    action_mix = rng.dirichlet([2.0, 2.0, 0.6], U)
    taste = 0.85 * rng.dirichlet(np.full(G, 0.35), U) + 0.15 * GENRE_PRIOR[None, :]
    p_show = rng.beta(2.0, 2.0, U)
    p_new = rng.beta(1.2, 3.0, U)
    chrono = rng.choice(3, size=U, p=[0.55, 0.25, 0.20])
    binge = rng.lognormal(0.0, 0.3, U)
    gap_mean = rng.lognormal(math.log(2.0), 0.5, U)
    sigma = 0.6
    target = np.round(rng.lognormal(math.log(mean_len) - sigma ** 2 / 2, sigma, U))
    target = np.clip(target, min_len, max_len).astype(np.int64)
    start_day = rng.integers(0, max(1, int(horizon_days * 0.8)), U)
    log_mix, log_taste = np.log(action_mix), np.log(taste)
    logit_show = np.log(p_show / (1 - p_show))
    logit_new = np.log(p_new / (1 - p_new))

    # ---- state ----
    started = np.zeros((U, I), dtype=bool)
    eps_done = np.zeros((U, I), dtype=np.int16)
    prog_items = np.full((U, _IN_PROGRESS_SLOTS), -1, np.int64)
    prog_time = np.full((U, _IN_PROGRESS_SLOTS), -1, np.int64)
    fin_items = np.full((U, _FINISHED_SLOTS), -1, np.int64)
    fin_time = np.full((U, _FINISHED_SLOTS), -1, np.int64)
    cur_time = np.zeros(U, np.int64)
    sess_left = np.zeros(U, np.int64)
    sess_id = np.full(U, -1, np.int64)
    s_action = np.zeros(U, np.int64)
    s_genre = np.zeros(U, np.int64)
    s_show = np.zeros(U, bool)
    s_new = np.zeros(U, bool)
    last_item = np.full(U, -1, np.int64)

    total = int(target.sum())
    offsets = np.concatenate([[0], np.cumsum(target)[:-1]])
    o_item = np.zeros(total, np.int64)
    o_ts = np.zeros(total, np.int64)
    o_obs = np.zeros(total, np.int8)
    o_dur = np.zeros(total, np.float64)
    o_sess = np.zeros(total, np.int64)
    o_iact = np.zeros(total, np.int8)
    o_igen = np.zeros(total, np.int8)
    o_ishow = np.zeros(total, bool)
    o_inew = np.zeros(total, bool)
    o_on = np.zeros(total, bool)

    Kg, Kn, Kp = 24, 8, 6
    for t in range(int(target.max())):
        act = np.flatnonzero(target > t)
        if len(act) == 0:
            break
        # ---------------- session starts ----------------
        ns = act[sess_left[act] == 0]
        if len(ns):
            first = sess_id[ns] < 0
            hours = _draw_hours(rng, chrono[ns])
            minute = rng.integers(0, 3600, len(ns))
            day0 = (SIM_START // DAY) + start_day[ns]
            start_first = day0 * DAY + hours * 3600 + minute
            same_day = rng.random(len(ns)) < 0.25
            gap_days = np.maximum(1, np.round(rng.exponential(gap_mean[ns]))).astype(np.int64)
            later_day = (cur_time[ns] // DAY + gap_days) * DAY + hours * 3600 + minute
            later_same = cur_time[ns] + 1800 + (rng.exponential(2.5, len(ns)) * 3600).astype(np.int64)
            start = np.where(first, start_first, np.where(same_day, later_same, later_day))
            start = np.where(first, start, np.maximum(start, cur_time[ns] + 1800))
            # Few sessions start in the small hours: move those to a usual hour.
            h0 = (start // 3600) % 24
            small = (h0 >= 2) & (h0 < 8)
            moved = (start // DAY) * DAY + hours * 3600 + minute
            moved = np.where(moved < cur_time[ns] + 1800, moved + DAY, moved)
            start = np.where(small & ~first & (rng.random(len(ns)) < 0.85), moved, start)
            cur_time[ns] = start
            slot = _slot(start)
            has_prog = (prog_items[ns] >= 0).any(1)
            has_fin = (fin_items[ns] >= 0).any(1)
            la = log_mix[ns] + CTX_ACTION[slot]
            la[:, CONTINUE] -= np.where(has_prog, 0.0, 2.0)
            la[:, REWATCH] -= np.where(has_fin, 0.0, 3.0)
            a = np.argmax(la + _gumbel(rng, la.shape), 1)
            lg = log_taste[ns] + CTX_GENRE[slot]
            g = np.argmax(lg + _gumbel(rng, lg.shape), 1)
            sh = rng.random(len(ns)) < 1 / (1 + np.exp(-(logit_show[ns] + CTX_SHOW[slot])))
            nw = rng.random(len(ns)) < 1 / (1 + np.exp(-(logit_new[ns] + CTX_NEW[slot])))
            lam = np.array([1.3, 3.0, 0.8])[a] * binge[ns]
            lam = np.where((a == DISCOVER) & ~sh, lam * 0.5, lam)
            sess_left[ns] = 1 + rng.poisson(lam)
            sess_id[ns] += 1
            s_action[ns], s_genre[ns], s_show[ns], s_new[ns] = a, g, sh, nw

        # ---------------- item choice ----------------
        A = len(act)
        ts = cur_time[act]
        mood = s_genre[act]
        want_show = s_show[act]
        sa = s_action[act]
        off = rng.random(A) < noise
        chosen = np.full(A, -1, np.int64)

        c = np.flatnonzero((sa == CONTINUE) & ~off)
        if len(c):
            cand = prog_items[act[c]]
            valid = cand >= 0
            cs = np.where(valid, cand, 0)
            score = (2.0 * cat.genres[cs, mood[c, None]] + 1.0 * (cat.is_show[cs] == want_show[c, None])
                     + 2.5 * (cand == last_item[act[c], None]) + 0.8 * _gumbel(rng, cand.shape))
            score = np.where(valid, score, -np.inf)
            ok = valid.any(1)
            chosen[c[ok]] = cand[ok, score[ok].argmax(1)]
            _align_intent(cat, act[c[ok]], chosen[c[ok]], s_genre, s_show)
        r = np.flatnonzero((sa == REWATCH) & ~off)
        if len(r):
            cand = fin_items[act[r]]
            valid = cand >= 0
            cs = np.where(valid, cand, 0)
            score = (2.0 * cat.genres[cs, mood[r, None]] + 0.8 * (cat.is_show[cs] == want_show[r, None])
                     + 0.5 * cat.logpop[cs] + _gumbel(rng, cand.shape))
            score = np.where(valid, score, -np.inf)
            ok = valid.any(1)
            chosen[r[ok]] = cand[ok, score[ok].argmax(1)]
            _align_intent(cat, act[r[ok]], chosen[r[ok]], s_genre, s_show)
        on_intent = ~off & (chosen >= 0)
        d = np.flatnonzero(~off & (chosen < 0))
        if len(d):
            du = act[d]
            cand = np.concatenate([
                cat.sample_genre(rng, mood[d], Kg),
                cat.sample_new(rng, ts[d], Kn),
                cat.sample_global(rng, len(d), Kp)], axis=1)
            valid = cand >= 0
            cs = np.where(valid, cand, 0)
            age = (ts[d, None] - cat.release_ts[cs]) / DAY
            valid &= age >= 0
            valid &= ~started[du[:, None], cs]
            new_i = s_new[du][:, None]
            rel = np.where(new_i, 2.5 * (age <= NEW_RELEASE_DAYS), 0.6 * (age > 365) - 0.5 * (age <= NEW_RELEASE_DAYS))
            score = (2.0 * cat.genres[cs, mood[d, None]] + 1.8 * (cat.is_show[cs] == want_show[d, None])
                     + rel + 0.6 * cat.logpop[cs] + _gumbel(rng, cand.shape))
            score = np.where(valid, score, -np.inf)
            ok = valid.any(1)
            chosen[d[ok]] = cand[ok, score[ok].argmax(1)]
            # A discover session whose action intent was continue/rewatch fell back.
            on_intent[d[ok]] = sa[d[ok]] == DISCOVER
        rest = np.flatnonzero(chosen < 0)
        if len(rest):  # off-intent picks (and the rare unserveable discover)
            ru = act[rest]
            cand = cat.sample_global(rng, len(rest), 8)
            released = cat.release_ts[cand] <= ts[rest, None]
            score = _gumbel(rng, cand.shape) - 3.0 * started[ru[:, None], cand]
            score = np.where(released, score, -np.inf)
            ok = released.any(1)
            chosen[rest[ok]] = cand[ok, score[ok].argmax(1)]
            bad = rest[~ok]
            if len(bad):  # nothing released among the draws: take the oldest title
                chosen[bad] = cat.rel_order[0]
            on_intent[rest] = False

        # ---------------- outcome and state ----------------
        it = chosen
        was_started = started[act, it]
        was_finished = eps_done[act, it] >= cat.n_eps[it]
        obs = np.where(~was_started, DISCOVER, np.where(was_finished, REWATCH, CONTINUE))
        p_complete = np.select([obs == DISCOVER, obs == CONTINUE], [np.where(cat.is_show[it], 0.8, 0.7), 0.92],
                               default=0.55)
        p_complete = np.where(on_intent, p_complete, p_complete * 0.7)
        complete = rng.random(A) < p_complete
        frac = np.where(complete, rng.uniform(0.88, 1.0, A), rng.uniform(0.03, 0.5, A))
        dur = np.round(cat.runtime[it] * frac, 1)
        started[act, it] = True
        progress = complete & (obs != REWATCH)
        eps_done[act[progress], it[progress]] += 1
        finished_now = progress & (eps_done[act, it] >= cat.n_eps[it])
        in_prog = (obs != REWATCH) & ~finished_now
        _upsert(prog_items, prog_time, act[in_prog], it[in_prog], ts[in_prog])
        _remove(prog_items, prog_time, act[finished_now], it[finished_now])
        _upsert(fin_items, fin_time, act[finished_now], it[finished_now], ts[finished_now])
        brk = np.where(complete, rng.uniform(60, 360, A), rng.uniform(30, 180, A))
        cur_time[act] = ts + np.round(dur * 60 + brk).astype(np.int64)
        last_item[act] = it
        sess_left[act] -= 1

        pos = offsets[act] + t
        o_item[pos] = it
        o_ts[pos] = ts
        o_obs[pos] = obs
        o_dur[pos] = dur
        o_sess[pos] = sess_id[act]
        o_iact[pos] = sa
        o_igen[pos] = s_genre[act]  # after a continue/rewatch alignment
        o_ishow[pos] = s_show[act]
        o_inew[pos] = s_new[act]
        o_on[pos] = on_intent

    persona = dict(action_mix=action_mix, taste=taste, p_show=p_show, p_new=p_new, chrono=chrono,
                   binge=binge, gap_mean=gap_mean, target=target, sessions=sess_id + 1)
    out = dict(item=o_item, ts=o_ts, obs=o_obs, dur=o_dur, sess=o_sess, iact=o_iact, igen=o_igen,
               ishow=o_ishow, inew=o_inew, on=o_on, lens=target)
    return persona, out


SCHEMA = InteractionSchema(
    categorical=("action_type", "item_type", "release_bucket"),
    multi_label=("genre",),
    numeric=("duration",),
    intents=(
        IntentSpec("action_type", "single"),
        IntentSpec("genre", "multi"),
        IntentSpec("item_type", "single"),
        IntentSpec("release_bucket", "single"),
    ),
    has_timestamps=True,
    has_weight=True,
)


def release_bucket(age_days: np.ndarray) -> np.ndarray:
    """Days since release -> RELEASE_BUCKET_NAMES (bounds inclusive; negative ages -> first)."""
    idx = np.searchsorted(np.asarray(RELEASE_BUCKET_BOUNDS_DAYS), age_days, side="left")
    return np.asarray(RELEASE_BUCKET_NAMES, dtype=object)[idx]


def load(
    num_users: int = 1000,
    seed: int = 0,
    *,
    num_items: Optional[int] = None,
    interactions_per_user: float = 40.0,
    min_interactions: int = 5,
    max_interactions: Optional[int] = None,
    noise: float = 0.12,
    horizon_days: float = 365.0,
) -> Dataset:
    """Generate a synthetic Netflix-like dataset (deterministic given all arguments).

    Args:
        num_users: number of users.
        seed: random seed.
        num_items: catalogue size (default: num_users / 2 clipped to [300, 3000]).
        interactions_per_user: mean interactions per user (log-normal spread).
        min_interactions / max_interactions: clip per-user lengths
            (default max: 8 x the mean).
        noise: probability that an interaction ignores the session intent.
        horizon_days: length of the simulated period (user start days are spread
            over its first 80%; titles keep being released throughout it).
    """
    if num_users < 1:
        raise ValueError("num_users must be >= 1")
    if num_items is None:
        num_items = int(np.clip(num_users // 2, 300, 3000))
    if max_interactions is None:
        max_interactions = int(max(min_interactions, round(8 * interactions_per_user)))
    min_interactions = max(1, int(min_interactions))
    cat = _Catalogue(np.random.default_rng(np.random.SeedSequence([seed, 0])), num_items, horizon_days)
    chunk = int(max(256, min(num_users, 40_000_000 // (3 * num_items))))
    personas, outs = [], []
    for ci, lo in enumerate(range(0, num_users, chunk)):
        n = min(chunk, num_users - lo)
        rng = np.random.default_rng(np.random.SeedSequence([seed, 1, ci]))
        p, o = _simulate_chunk(rng, cat, n, interactions_per_user, min_interactions, max_interactions,
                               noise, horizon_days)
        personas.append(p)
        outs.append(o)

    def cat_(key, src):
        return np.concatenate([d[key] for d in src])

    width = max(5, len(str(num_users - 1)))
    user_ids = np.array([f"u{i:0{width}d}" for i in range(num_users)], dtype=object)
    lens = cat_("lens", outs)
    users_col = np.repeat(user_ids, lens)
    item = cat_("item", outs)
    ts = cat_("ts", outs)
    dur = cat_("dur", outs)
    age = (ts - cat.release_ts[item]) / DAY
    frame = pd.DataFrame({
        USER: users_col,
        ITEM: cat.ids[item],
        TIMESTAMP: ts,
        "action_type": np.asarray(ACTIONS, dtype=object)[cat_("obs", outs)],
        "item_type": np.where(cat.is_show[item], "show", "movie").astype(object),
        "release_bucket": release_bucket(age),
        "genre": cat.genre_str[item],
        "duration": dur,
        WEIGHT: np.clip(dur / 60.0, 0.02, 3.0),
    })
    latent = pd.DataFrame({
        "session_id": cat_("sess", outs),
        "intent_action": np.asarray(ACTIONS, dtype=object)[cat_("iact", outs)],
        "intent_genre": np.asarray(GENRES, dtype=object)[cat_("igen", outs)],
        "intent_item_type": np.where(cat_("ishow", outs), "show", "movie").astype(object),
        "intent_release": np.where(cat_("inew", outs), "new", "catalog").astype(object),
        "on_intent": cat_("on", outs),
    })
    taste = np.concatenate([p["taste"] for p in personas])
    mix = np.concatenate([p["action_mix"] for p in personas])
    top3 = np.argsort(-taste, axis=1, kind="stable")[:, :3]
    users = pd.DataFrame({
        USER: user_ids,
        "p_discover": mix[:, 0], "p_continue": mix[:, 1], "p_rewatch": mix[:, 2],
        "p_show": cat_("p_show", personas), "p_new_release": cat_("p_new", personas),
        "chronotype": np.asarray(CHRONOTYPES, dtype=object)[cat_("chrono", personas)],
        "binge_factor": cat_("binge", personas), "mean_gap_days": cat_("gap_mean", personas),
        "favourite_genres": np.array([MULTI_LABEL_SEP.join(GENRES[g] for g in row) for row in top3],
                                     dtype=object),
        "num_interactions": lens, "num_sessions": cat_("sessions", personas),
    })
    for gi, gname in enumerate(GENRES):
        users[f"taste_{gname}"] = taste[:, gi]
    report = IngestReport(source="synthetic")
    report.rows_read = len(frame)
    report.note("seed", seed)
    report.note("num_items_catalogue", num_items)
    report.note("noise", noise)
    report.note("on_intent_fraction", round(float(latent["on_intent"].mean()), 4))
    return finalize("synthetic", frame, SCHEMA, cat.frame(), report, users=users, latent=latent,
                    drop_duplicates=False)


generate = load
