"""Per-user intents at the latest position, computed batch by batch.

`iter_user_batches` walks the canonical interactions table (sorted by user, time)
and yields, per batch of users, the raw histories the model sees (the latest
`max_len` rows) plus where they sit in the table. `iter_intents` runs a model on
them; `collect_intents` gathers everything into one in-memory `IntentTable` (what
the clustering needs), while `analysis.export` writes batch by batch instead.

Two history modes:
- "full": every interaction of the user — the intent right now (production, export);
- "test": all but the last interaction (the leave-one-out test inputs of
  `datasets.encode`, users with ≥ 3 interactions). The held-out last interaction is
  the "next" one the intent heads predict, so its observed labels, and on synthetic
  data its true latent session intent, are known: this is the mode used to measure
  how well clusters agree with the truth.
"""

from __future__ import annotations

import dataclasses
from typing import Iterator, Optional, Sequence

import numpy as np
import pandas as pd

from analysis.sources import INTENT_ATTENTION, INTENT_EMBEDDING, ITEM_HIDDEN, IntentModel, intent_key
from datasets.schema import TIMESTAMP, USER

HISTORY_MODES = ("full", "test")


@dataclasses.dataclass
class UserBatch:
    user_ids: np.ndarray  # [B] object
    histories: list  # B DataFrames (the latest max_len rows, oldest first)
    last_rows: np.ndarray  # [B] row in dataset.interactions of the latest input interaction
    next_rows: np.ndarray  # [B] row of the held-out next interaction ("test"), else -1
    timestamps: np.ndarray  # [B] int64 timestamp of the latest input interaction


def user_bounds(interactions: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(starts, lengths) of each user's contiguous rows (the table is grouped by user)."""
    users = interactions[USER].to_numpy()
    n = len(users)
    if not n:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    new = np.empty(n, dtype=bool)
    new[0] = True
    new[1:] = users[1:] != users[:-1]
    starts = np.flatnonzero(new)
    lens = np.diff(np.append(starts, n))
    if len(pd.unique(users[starts])) != len(starts):
        raise ValueError("interactions are not grouped by user (sort by user_id, timestamp)")
    return starts.astype(np.int64), lens.astype(np.int64)


def iter_user_batches(dataset, max_len: int, batch_size: int = 512, history: str = "full",
                      users: Optional[Sequence[str]] = None) -> Iterator[UserBatch]:
    """Batches of users' latest histories (see the module docstring for `history`)."""
    if history not in HISTORY_MODES:
        raise ValueError(f"history must be one of {HISTORY_MODES}, got {history!r}")
    df = dataset.interactions
    starts, lens = user_bounds(df)
    keep = lens >= (3 if history == "test" else 1)
    if users is not None:
        wanted = set(map(str, users))
        keep &= np.isin(df[USER].to_numpy()[starts].astype(str), list(wanted))
    starts, lens = starts[keep], lens[keep]
    back = 1 if history == "test" else 0
    ends = starts + lens - back  # exclusive end of the input rows
    has_ts = TIMESTAMP in df.columns
    uid_col = df[USER].to_numpy()
    ts_col = df[TIMESTAMP].to_numpy() if has_ts else None
    for lo in range(0, len(starts), batch_size):
        s, e = starts[lo:lo + batch_size], ends[lo:lo + batch_size]
        first = np.maximum(s, e - max_len)
        frames = [df.iloc[a:b] for a, b in zip(first, e)]
        last = e - 1
        yield UserBatch(
            user_ids=uid_col[s].astype(object),
            histories=frames,
            last_rows=last.astype(np.int64),
            next_rows=(e if back else np.full(len(e), -1)).astype(np.int64),
            timestamps=(ts_col[last].astype(np.int64) if has_ts else (e - s - 1).astype(np.int64)),
        )


def count_users(dataset, history: str = "full") -> int:
    _, lens = user_bounds(dataset.interactions)
    return int((lens >= (3 if history == "test" else 1)).sum())


def iter_intents(model: IntentModel, dataset, batch_size: int = 512, history: str = "full",
                 users: Optional[Sequence[str]] = None) -> Iterator[tuple[UserBatch, dict]]:
    """(UserBatch, last-position model outputs) per batch."""
    for batch in iter_user_batches(dataset, model.max_len, batch_size, history, users):
        yield batch, model.infer(batch.histories)


@dataclasses.dataclass
class IntentTable:
    """Every analysed user's intents at the latest position (in memory)."""

    user_ids: np.ndarray  # [U]
    timestamps: np.ndarray  # [U]
    last_rows: np.ndarray  # [U]
    next_rows: np.ndarray  # [U] (-1 in "full" mode)
    z: Optional[np.ndarray]  # [U, d_proj] (None for non-hierarchical models)
    alpha: Optional[np.ndarray]  # [U, M]
    probs: dict  # head -> [U, d_h]
    hidden: Optional[np.ndarray]  # [U, d_model] item_hidden (Keras models only)
    heads: list
    kinds: dict
    labels: dict
    history: str

    def __len__(self):
        return len(self.user_ids)

    def representation(self, name: str) -> np.ndarray:
        """"z", "alpha", "hidden" or "probs" (all heads' probabilities concatenated)."""
        if name == "z":
            arr = self.z
        elif name == "alpha":
            arr = self.alpha
        elif name == "hidden":
            arr = self.hidden
        elif name == "probs":
            arr = np.concatenate([self.probs[h] for h in self.heads], axis=1) if self.heads else None
        else:
            raise ValueError(f"unknown representation {name!r}")
        if arr is None:
            raise ValueError(f"the model has no {name!r} output")
        return arr

    def primary_intent(self) -> np.ndarray:
        """Head with the largest α per user (paper §4.5); "" without attention."""
        if self.alpha is None or not self.heads:
            return np.full(len(self), "", dtype=object)
        return np.asarray(self.heads, dtype=object)[np.argmax(self.alpha, axis=1)]


def collect_intents(model: IntentModel, dataset, batch_size: int = 512, history: str = "full",
                    users: Optional[Sequence[str]] = None, progress: bool = False) -> IntentTable:
    parts: dict[str, list] = {}
    meta = {"user_ids": [], "timestamps": [], "last_rows": [], "next_rows": []}
    it = iter_intents(model, dataset, batch_size, history, users)
    if progress:
        from tqdm import tqdm

        total = count_users(dataset, history) if users is None else len(users)
        bar = tqdm(total=total, unit="user", desc="intents")
    for batch, out in it:
        for key, value in out.items():
            parts.setdefault(key, []).append(value)
        for key in meta:
            meta[key].append(getattr(batch, key))
        if progress:
            bar.update(len(batch.user_ids))
    if progress:
        bar.close()
    cat = {k: np.concatenate(v) for k, v in parts.items()}
    m = {k: (np.concatenate(v) if v else np.zeros(0)) for k, v in meta.items()}
    return IntentTable(
        user_ids=m["user_ids"].astype(object), timestamps=m["timestamps"].astype(np.int64),
        last_rows=m["last_rows"].astype(np.int64), next_rows=m["next_rows"].astype(np.int64),
        z=cat.get(INTENT_EMBEDDING) if model.hierarchical else None,
        alpha=cat.get(INTENT_ATTENTION) if model.hierarchical else None,
        probs={h: cat[intent_key(h)] for h in model.heads if intent_key(h) in cat},
        hidden=cat.get(ITEM_HIDDEN),
        heads=list(model.heads), kinds=dict(model.kinds), labels={h: list(v) for h, v in model.labels.items()},
        history=history,
    )
