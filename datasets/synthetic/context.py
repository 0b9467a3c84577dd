"""The fixed world of the synthetic generator: genres, action and item types, and time.

Genres (with a prior and the affinities that give titles their secondary genres),
the latent action / item-type / release intents, the viewers' chronotypes (hour-of-day
profiles), and the time-context slots (period of the day x weekend) with the additive
logit effects a slot has on a session's intent. Shared by the catalogue and the
simulation; none of it depends on the seed.
"""

from __future__ import annotations

import numpy as np

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


def _secondary_genre_table() -> np.ndarray:
    """P(secondary genre | primary genre): mostly the affinities, some of the prior, never itself."""
    aff = np.zeros((G, G))
    for g, comps in _AFFINITY.items():
        for j, c in enumerate(comps):
            aff[_GI[g], _GI[c]] = 1.0 / (j + 1)
    aff = 0.75 * aff / aff.sum(1, keepdims=True) + 0.25 * GENRE_PRIOR[None, :]
    aff[np.arange(G), np.arange(G)] = 0
    aff /= aff.sum(1, keepdims=True)
    return aff


SECONDARY_GENRE = _secondary_genre_table()

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


def time_slot(ts: np.ndarray) -> np.ndarray:
    """Epoch seconds -> index into `SLOTS` (Friday evening counts as weekend, Sunday late night not)."""
    hour = (ts // 3600) % 24
    dow = ((ts // DAY) + 3) % 7  # 0 = Monday (1970-01-01 was a Thursday)
    period = np.select([(hour >= 2) & (hour < 8), (hour >= 8) & (hour < 17), (hour >= 17) & (hour < 22)],
                       [0, 1, 2], default=3)
    weekend = (dow >= 5) | ((dow == 4) & (period >= 2))
    weekend &= ~((dow == 6) & (period == 3))  # Sunday late night is a school night
    return (weekend.astype(np.int64) * len(PERIODS) + period).astype(np.int64)


def draw_hours(rng: np.random.Generator, chrono: np.ndarray) -> np.ndarray:
    """An hour of the day per user, from the hour profile of the user's chronotype."""
    cdf = np.cumsum(HOUR_PROFILES, 1)[chrono]
    return np.minimum((cdf < rng.random(len(chrono))[:, None]).sum(1), 23)
