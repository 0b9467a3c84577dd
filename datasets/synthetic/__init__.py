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

Modules: `context` (genres, action and item types, time slots and their effect on
intents), `catalogue` (the titles), `simulation` (personas, sessions, item choice);
this one turns the simulated chunks into a `Dataset`.
"""

from __future__ import annotations

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
from datasets.synthetic.catalogue import Catalogue
from datasets.synthetic.context import (  # noqa: F401  (the generator's constants, public here)
    ACTIONS,
    CHRONOTYPES,
    CONTINUE,
    CTX_ACTION,
    CTX_GENRE,
    CTX_NEW,
    CTX_SHOW,
    DAY,
    DISCOVER,
    GENRE_PRIOR,
    GENRES,
    HOUR_PROFILES,
    ITEM_TYPES,
    NEW_RELEASE_DAYS,
    PERIODS,
    RELEASE_INTENTS,
    REWATCH,
    SIM_START,
    SLOTS,
    G,
)
from datasets.synthetic.simulation import simulate_chunk


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
    cat = Catalogue(np.random.default_rng(np.random.SeedSequence([seed, 0])), num_items, horizon_days)
    chunk = int(max(256, min(num_users, 40_000_000 // (3 * num_items))))
    personas, outs = [], []
    for ci, lo in enumerate(range(0, num_users, chunk)):
        n = min(chunk, num_users - lo)
        rng = np.random.default_rng(np.random.SeedSequence([seed, 1, ci]))
        p, o = simulate_chunk(rng, cat, n, interactions_per_user, min_interactions, max_interactions,
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
