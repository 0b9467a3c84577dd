"""Simulation of the synthetic viewers, vectorised across users, in chunks of users.

`simulate_chunk` draws the users' personas, then steps through the interaction
index t = 0, 1, ...: every user with more than t interactions takes step t at once
(one Python iteration per index, not per interaction). A step

1. starts a session for users whose previous one is over (`_start_sessions`: a
   start time following the user's chronotype and visit frequency, and a latent
   intent drawn from the persona modulated by the time slot);
2. chooses the title the intent asks for (`_choose_items`: continue / rewatch /
   discover, a `noise` share of off-intent popularity picks, and fallbacks when the
   intent cannot be served);
3. watches it (`_watch`: the observed action, completion, duration, and what the
   user has in progress and has finished).

The order of the random draws is part of the generator: a seed gives the same data.
"""

from __future__ import annotations

import math

import numpy as np

from datasets.synthetic.catalogue import Catalogue
from datasets.synthetic.context import (
    CONTINUE,
    CTX_ACTION,
    CTX_GENRE,
    CTX_NEW,
    CTX_SHOW,
    DAY,
    DISCOVER,
    GENRE_PRIOR,
    NEW_RELEASE_DAYS,
    REWATCH,
    SIM_START,
    G,
    draw_hours,
    time_slot,
)

# Titles remembered per user: the latest in progress, the latest finished.
_IN_PROGRESS_SLOTS = 4
_FINISHED_SLOTS = 12
# Discover candidates per step: by mood genre, among recent releases, by global popularity.
_K_GENRE, _K_NEW, _K_POPULAR = 24, 8, 6
# Output columns (one entry per interaction) and their dtypes.
_COLUMNS = (("item", np.int64), ("ts", np.int64), ("obs", np.int8), ("dur", np.float64), ("sess", np.int64),
            ("iact", np.int8), ("igen", np.int8), ("ishow", bool), ("inew", bool), ("on", bool))


def _gumbel(rng, shape):
    return -np.log(-np.log(rng.random(shape) + 1e-12) + 1e-12)


class _Personas:
    """Per-user traits, fixed for the whole simulation: action mix, genre taste,
    show and new-release appetites, chronotype, binge factor, visit frequency, the
    number of interactions and the first active day."""

    def __init__(self, rng, U: int, mean_len: float, min_len: int, max_len: int, horizon_days: float):
        self.action_mix = rng.dirichlet([2.0, 2.0, 0.6], U)
        self.taste = 0.85 * rng.dirichlet(np.full(G, 0.35), U) + 0.15 * GENRE_PRIOR[None, :]
        self.p_show = rng.beta(2.0, 2.0, U)
        self.p_new = rng.beta(1.2, 3.0, U)
        self.chrono = rng.choice(3, size=U, p=[0.55, 0.25, 0.20])
        self.binge = rng.lognormal(0.0, 0.3, U)
        self.gap_mean = rng.lognormal(math.log(2.0), 0.5, U)
        sigma = 0.6
        target = np.round(rng.lognormal(math.log(mean_len) - sigma ** 2 / 2, sigma, U))
        self.target = np.clip(target, min_len, max_len).astype(np.int64)
        self.start_day = rng.integers(0, max(1, int(horizon_days * 0.8)), U)
        self.log_mix, self.log_taste = np.log(self.action_mix), np.log(self.taste)
        self.logit_show = np.log(self.p_show / (1 - self.p_show))
        self.logit_new = np.log(self.p_new / (1 - self.p_new))

    def summary(self, sessions: np.ndarray) -> dict:
        return dict(action_mix=self.action_mix, taste=self.taste, p_show=self.p_show, p_new=self.p_new,
                    chrono=self.chrono, binge=self.binge, gap_mean=self.gap_mean, target=self.target,
                    sessions=sessions)


class _State:
    """What the simulation tracks per user: titles started and episodes watched, the
    latest in-progress and finished titles (rings of slots, -1 = empty), the clock,
    and the current session (steps left, id, latent intent)."""

    def __init__(self, U: int, I: int):
        self.started = np.zeros((U, I), dtype=bool)
        self.eps_done = np.zeros((U, I), dtype=np.int16)
        self.prog_items = np.full((U, _IN_PROGRESS_SLOTS), -1, np.int64)
        self.prog_time = np.full((U, _IN_PROGRESS_SLOTS), -1, np.int64)
        self.fin_items = np.full((U, _FINISHED_SLOTS), -1, np.int64)
        self.fin_time = np.full((U, _FINISHED_SLOTS), -1, np.int64)
        self.cur_time = np.zeros(U, np.int64)
        self.sess_left = np.zeros(U, np.int64)
        self.sess_id = np.full(U, -1, np.int64)
        self.s_action = np.zeros(U, np.int64)
        self.s_genre = np.zeros(U, np.int64)
        self.s_show = np.zeros(U, bool)
        self.s_new = np.zeros(U, bool)
        self.last_item = np.full(U, -1, np.int64)


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


def _start_sessions(rng, persona: _Personas, state: _State, ns: np.ndarray):
    """Users `ns` start a session: the first on their start day, later ones the same
    day or a few days after the previous one, at an hour of their chronotype."""
    first = state.sess_id[ns] < 0
    hours = draw_hours(rng, persona.chrono[ns])
    minute = rng.integers(0, 3600, len(ns))
    day0 = (SIM_START // DAY) + persona.start_day[ns]
    start_first = day0 * DAY + hours * 3600 + minute
    same_day = rng.random(len(ns)) < 0.25
    gap_days = np.maximum(1, np.round(rng.exponential(persona.gap_mean[ns]))).astype(np.int64)
    now = state.cur_time[ns]
    later_day = (now // DAY + gap_days) * DAY + hours * 3600 + minute
    later_same = now + 1800 + (rng.exponential(2.5, len(ns)) * 3600).astype(np.int64)
    start = np.where(first, start_first, np.where(same_day, later_same, later_day))
    start = np.where(first, start, np.maximum(start, now + 1800))
    # Few sessions start in the small hours: move those to a usual hour.
    h0 = (start // 3600) % 24
    small = (h0 >= 2) & (h0 < 8)
    moved = (start // DAY) * DAY + hours * 3600 + minute
    moved = np.where(moved < now + 1800, moved + DAY, moved)
    start = np.where(small & ~first & (rng.random(len(ns)) < 0.85), moved, start)
    state.cur_time[ns] = start
    _draw_intents(rng, persona, state, ns, time_slot(start))


def _draw_intents(rng, persona: _Personas, state: _State, ns: np.ndarray, slot: np.ndarray):
    """The latent intent of the sessions starting in `slot`, kept for the whole session:
    action (continue / rewatch unlikely with nothing to resume), mood genre, movie or
    show, new release or catalogue; and the session's length (binges run longer)."""
    has_prog = (state.prog_items[ns] >= 0).any(1)
    has_fin = (state.fin_items[ns] >= 0).any(1)
    la = persona.log_mix[ns] + CTX_ACTION[slot]
    la[:, CONTINUE] -= np.where(has_prog, 0.0, 2.0)
    la[:, REWATCH] -= np.where(has_fin, 0.0, 3.0)
    a = np.argmax(la + _gumbel(rng, la.shape), 1)
    lg = persona.log_taste[ns] + CTX_GENRE[slot]
    g = np.argmax(lg + _gumbel(rng, lg.shape), 1)
    sh = rng.random(len(ns)) < 1 / (1 + np.exp(-(persona.logit_show[ns] + CTX_SHOW[slot])))
    nw = rng.random(len(ns)) < 1 / (1 + np.exp(-(persona.logit_new[ns] + CTX_NEW[slot])))
    lam = np.array([1.3, 3.0, 0.8])[a] * persona.binge[ns]
    lam = np.where((a == DISCOVER) & ~sh, lam * 0.5, lam)
    state.sess_left[ns] = 1 + rng.poisson(lam)
    state.sess_id[ns] += 1
    state.s_action[ns], state.s_genre[ns], state.s_show[ns], state.s_new[ns] = a, g, sh, nw


def _pick(chosen, rows, cand, valid, score) -> np.ndarray:
    """`chosen[rows]` = the best-scoring valid candidate of each row; returns the rows that had one."""
    score = np.where(valid, score, -np.inf)
    ok = valid.any(1)
    chosen[rows[ok]] = cand[ok, score[ok].argmax(1)]
    return ok


def _align_intent(cat: Catalogue, users, items, s_genre, s_show):
    """A continue / rewatch session is *about* the title it resumes: when that title
    lacks the drawn mood genre, the session's mood (and type) become the title's, and
    persist for the rest of the session."""
    if len(users) == 0:
        return
    miss = ~cat.genres[items, s_genre[users]]
    s_genre[users[miss]] = cat.primary[items[miss]]
    s_show[users] = cat.is_show[items]


def _continue_scores(rng, cat: Catalogue, state: _State, users, mood, want_show):
    """In-progress titles, the one just watched first, then mood and type matches."""
    cand = state.prog_items[users]
    cs = np.where(cand >= 0, cand, 0)
    score = (2.0 * cat.genres[cs, mood[:, None]] + 1.0 * (cat.is_show[cs] == want_show[:, None])
             + 2.5 * (cand == state.last_item[users, None]) + 0.8 * _gumbel(rng, cand.shape))
    return cand, score


def _rewatch_scores(rng, cat: Catalogue, state: _State, users, mood, want_show):
    """Finished titles by mood and type match and popularity."""
    cand = state.fin_items[users]
    cs = np.where(cand >= 0, cand, 0)
    score = (2.0 * cat.genres[cs, mood[:, None]] + 0.8 * (cat.is_show[cs] == want_show[:, None])
             + 0.5 * cat.logpop[cs] + _gumbel(rng, cand.shape))
    return cand, score


def _discover_scores(rng, cat: Catalogue, state: _State, users, ts, mood, want_show):
    """Unseen, released candidates (by mood genre, recent releases, popular) scored by
    mood, type and release-intent match and popularity. Returns (cand, valid, score)."""
    cand = np.concatenate([
        cat.sample_genre(rng, mood, _K_GENRE),
        cat.sample_new(rng, ts, _K_NEW),
        cat.sample_global(rng, len(users), _K_POPULAR)], axis=1)
    valid = cand >= 0
    cs = np.where(valid, cand, 0)
    age = (ts[:, None] - cat.release_ts[cs]) / DAY
    valid &= age >= 0
    valid &= ~state.started[users[:, None], cs]
    new_i = state.s_new[users][:, None]
    rel = np.where(new_i, 2.5 * (age <= NEW_RELEASE_DAYS), 0.6 * (age > 365) - 0.5 * (age <= NEW_RELEASE_DAYS))
    score = (2.0 * cat.genres[cs, mood[:, None]] + 1.8 * (cat.is_show[cs] == want_show[:, None])
             + rel + 0.6 * cat.logpop[cs] + _gumbel(rng, cand.shape))
    return cand, valid, score


def _choose_items(rng, cat: Catalogue, state: _State, act: np.ndarray, noise: float):
    """The title each user of `act` watches next. Returns (titles, on_intent)."""
    A = len(act)
    ts = state.cur_time[act]
    # The intent as drawn: a resumed title aligns s_genre / s_show, not these copies.
    mood = state.s_genre[act]
    want_show = state.s_show[act]
    sa = state.s_action[act]
    off = rng.random(A) < noise
    chosen = np.full(A, -1, np.int64)
    for action, scores in ((CONTINUE, _continue_scores), (REWATCH, _rewatch_scores)):
        rows = np.flatnonzero((sa == action) & ~off)
        if len(rows):
            cand, score = scores(rng, cat, state, act[rows], mood[rows], want_show[rows])
            ok = _pick(chosen, rows, cand, cand >= 0, score)
            _align_intent(cat, act[rows[ok]], chosen[rows[ok]], state.s_genre, state.s_show)
    on_intent = ~off & (chosen >= 0)
    d = np.flatnonzero(~off & (chosen < 0))
    if len(d):
        cand, valid, score = _discover_scores(rng, cat, state, act[d], ts[d], mood[d], want_show[d])
        ok = _pick(chosen, d, cand, valid, score)
        # A discover session whose action intent was continue/rewatch fell back.
        on_intent[d[ok]] = sa[d[ok]] == DISCOVER
    rest = np.flatnonzero(chosen < 0)
    if len(rest):  # off-intent picks (and the rare unserveable discover)
        ru = act[rest]
        cand = cat.sample_global(rng, len(rest), 8)
        released = cat.release_ts[cand] <= ts[rest, None]
        score = _gumbel(rng, cand.shape) - 3.0 * state.started[ru[:, None], cand]
        ok = _pick(chosen, rest, cand, released, score)
        bad = rest[~ok]
        if len(bad):  # nothing released among the draws: take the oldest title
            chosen[bad] = cat.rel_order[0]
        on_intent[rest] = False
    return chosen, on_intent


def _watch(rng, cat: Catalogue, state: _State, act: np.ndarray, it: np.ndarray, on_intent: np.ndarray):
    """Users `act` watch titles `it`: the observed action (first time / in progress /
    finished before), completion (intent-dependent), duration; then their titles and
    clocks move on. Returns (observed action, duration, start time)."""
    A = len(act)
    ts = state.cur_time[act]
    was_started = state.started[act, it]
    was_finished = state.eps_done[act, it] >= cat.n_eps[it]
    obs = np.where(~was_started, DISCOVER, np.where(was_finished, REWATCH, CONTINUE))
    p_complete = np.select([obs == DISCOVER, obs == CONTINUE], [np.where(cat.is_show[it], 0.8, 0.7), 0.92],
                           default=0.55)
    p_complete = np.where(on_intent, p_complete, p_complete * 0.7)
    complete = rng.random(A) < p_complete
    frac = np.where(complete, rng.uniform(0.88, 1.0, A), rng.uniform(0.03, 0.5, A))
    dur = np.round(cat.runtime[it] * frac, 1)
    state.started[act, it] = True
    progress = complete & (obs != REWATCH)
    state.eps_done[act[progress], it[progress]] += 1
    finished_now = progress & (state.eps_done[act, it] >= cat.n_eps[it])
    in_prog = (obs != REWATCH) & ~finished_now
    _upsert(state.prog_items, state.prog_time, act[in_prog], it[in_prog], ts[in_prog])
    _remove(state.prog_items, state.prog_time, act[finished_now], it[finished_now])
    _upsert(state.fin_items, state.fin_time, act[finished_now], it[finished_now], ts[finished_now])
    brk = np.where(complete, rng.uniform(60, 360, A), rng.uniform(30, 180, A))
    state.cur_time[act] = ts + np.round(dur * 60 + brk).astype(np.int64)
    state.last_item[act] = it
    state.sess_left[act] -= 1
    return obs, dur, ts


def simulate_chunk(rng, cat: Catalogue, n_users: int, mean_len: float, min_len: int,
                   max_len: int, noise: float, horizon_days: float):
    """Simulates `n_users` users on `cat`. Returns (persona arrays, interaction columns
    with each user's interactions contiguous and in time order, plus `lens`)."""
    persona = _Personas(rng, n_users, mean_len, min_len, max_len, horizon_days)
    state = _State(n_users, cat.I)
    target = persona.target
    total = int(target.sum())
    offsets = np.concatenate([[0], np.cumsum(target)[:-1]])
    out = {name: np.zeros(total, dtype) for name, dtype in _COLUMNS}
    for t in range(int(target.max())):
        act = np.flatnonzero(target > t)
        if len(act) == 0:
            break
        ns = act[state.sess_left[act] == 0]
        if len(ns):
            _start_sessions(rng, persona, state, ns)
        chosen, on_intent = _choose_items(rng, cat, state, act, noise)
        obs, dur, ts = _watch(rng, cat, state, act, chosen, on_intent)
        step = dict(item=chosen, ts=ts, obs=obs, dur=dur, sess=state.sess_id[act], iact=state.s_action[act],
                    igen=state.s_genre[act],  # after a continue/rewatch alignment
                    ishow=state.s_show[act], inew=state.s_new[act], on=on_intent)
        pos = offsets[act] + t
        for name, values in step.items():
            out[name][pos] = values
    return persona.summary(state.sess_id + 1), {**out, "lens": target}
