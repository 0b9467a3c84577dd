"""Reference numpy encoder: `Dataset` -> left-padded leave-one-out arrays (ARCHITECTURE.md §2).

The TFX Transform graph (`pipeline/preprocessing.py`) mirrors these semantics, so
they are kept deliberately simple. Per user, interactions s_1..s_m sorted by time:

* training sequence t = s[:-2] (m >= 3) or s (m == 2); users with m == 1 are dropped.
  The *training portion* is every row of every training sequence.
* train rows: inputs t[:-1], next-step targets t[1:] at every position; the last
  `max_len` positions, left-padded. `train_windows="sliding"` (the default, the
  training protocol of every entry point) adds earlier, non-overlapping windows
  (stride = max_len) so every training target is used; `"last"` keeps one per user.
* val rows (m >= 3): inputs s[:-2] (last max_len), target s[-2] at the last position.
* test rows (m >= 3): inputs s[:-1] (last max_len), target s[-1] at the last position.
* val / test rows also carry the user's whole known history before the target
  (`Split.seen`: s[:-2] / s[:-1], not only the last max_len), for the evaluation's
  seen-item filter.

Vocabularies (items, each categorical incl. derived `hour_of_day`/`day_of_week`,
each multi-label) are fitted on the training portion only: 0 = padding, 1 = OOV
(unknown or missing value), 2.. = values by descending frequency, ties by descending
value (TensorFlow Transform's order: the pipeline's Transform gives the same ids).
See docs/datasets.md for the full specification.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Iterator, Optional, Sequence, Union

import numpy as np
import pandas as pd

from datasets.dataset import Dataset
from datasets.feature_spec import DEFAULT_MAX_LEN, FeatureSpec
from datasets.preprocessor import Preprocessor, _Rows
from datasets.schema import ITEM, NUM_RESERVED_IDS, OOV_ID, TIMESTAMP, USER
from datasets.vocabulary import OOV_TOKEN, PAD_TOKEN, Vocabulary

TRAIN_WINDOWS = ("sliding", "last")


@dataclasses.dataclass
class Split:
    """One split's arrays.

    Attributes:
        x: inputs (ARCHITECTURE.md §2), y: targets, w: sample weights [R, n].
        user_ids: [R] user of each row.
        rows / target_rows: [R, n] int64 row numbers in `dataset.interactions` of
            each input position / its target (-1 = padding / no target). They map
            predictions back to interactions (e.g. to the synthetic ground truth in
            `dataset.latent`); they are not model inputs.
        seen: val / test only: every item id the user interacted with before the
            target, the whole history (not only the last n), as `SeenItems`.
    """

    x: dict
    y: dict
    w: np.ndarray
    user_ids: np.ndarray
    rows: Optional[np.ndarray] = None
    target_rows: Optional[np.ndarray] = None
    seen: Optional["SeenItems"] = None

    def __len__(self) -> int:
        return int(self.w.shape[0])

    def take(self, index) -> "Split":
        return Split({k: v[index] for k, v in self.x.items()}, {k: v[index] for k, v in self.y.items()},
                     self.w[index], self.user_ids[index],
                     None if self.rows is None else self.rows[index],
                     None if self.target_rows is None else self.target_rows[index],
                     None if self.seen is None else self.seen.take(index))


@dataclasses.dataclass
class SeenItems:
    """Ragged per-row item ids (CSR): row r's items are `ids[indptr[r]:indptr[r + 1]]`."""

    indptr: np.ndarray  # int64 [R + 1]
    ids: np.ndarray  # int32 [indptr[-1]]

    def __len__(self) -> int:
        return len(self.indptr) - 1

    def padded(self, start: int = 0, stop: Optional[int] = None) -> np.ndarray:
        """Rows start..stop as int32 `[rows, longest]`, padded with 0 (the padding id)."""
        stop = len(self) if stop is None else min(stop, len(self))
        lengths = np.diff(self.indptr[start:stop + 1])
        out = np.zeros((len(lengths), int(lengths.max()) if len(lengths) else 0), np.int32)
        for r, (lo, hi) in enumerate(zip(self.indptr[start:stop], self.indptr[start + 1:stop + 1])):
            out[r, :hi - lo] = self.ids[lo:hi]
        return out

    def take(self, index) -> "SeenItems":
        rows = np.arange(len(self))[index]
        parts = [self.ids[self.indptr[r]:self.indptr[r + 1]] for r in rows]
        indptr = np.concatenate([[0], np.cumsum([len(p) for p in parts])]).astype(np.int64)
        return SeenItems(indptr, np.concatenate(parts).astype(np.int32) if parts else np.zeros(0, np.int32))


@dataclasses.dataclass
class EncodedData:
    """Encoded leave-one-out splits plus everything needed to decode / re-encode.

    Attributes:
        train, val, test: `Split`s (x, y, w, user_ids).
        preprocessor: fitted vocabularies and statistics (`encode_history` uses it).
        feature_spec: input/intent description for the model config.
        vocabs: name -> id-ordered value list ('item', categoricals, multi-labels).
        item_titles: id -> title (pad / OOV tokens at 0 / 1).
        item_popularity: id -> occurrences in the training portion (int64).
        stats: counts (users dropped, numeric missing, invalid weights, OOV targets ...).
    """

    train: Split
    val: Split
    test: Split
    preprocessor: Preprocessor
    item_titles: list
    item_popularity: np.ndarray
    stats: dict

    @property
    def feature_spec(self) -> FeatureSpec:
        return self.preprocessor.feature_spec()

    @property
    def max_len(self) -> int:
        return self.preprocessor.max_len

    @property
    def vocabs(self) -> dict:
        p = self.preprocessor
        out = {"item": p.item_vocab.tokens}
        out.update({c: v.tokens for c, v in p.categorical_vocabs.items()})
        out.update({c: v.tokens for c, v in p.multi_vocabs.items()})
        return out

    def split(self, name: str) -> Split:
        if name not in ("train", "val", "test"):
            raise ValueError(f"unknown split {name!r}; expected train, val or test")
        return getattr(self, name)

    def batches(self, split: str, batch_size: int, shuffle: bool = False, seed: int = 0,
                drop_remainder: bool = False) -> Iterator[tuple[dict, dict, np.ndarray]]:
        """Yield (x, y, w) numpy dict batches of one split."""
        s = self.split(split)
        n = len(s)
        order = np.random.default_rng(seed).permutation(n) if shuffle else np.arange(n)
        stop = n - (n % batch_size) if drop_remainder else n
        for lo in range(0, stop, batch_size):
            b = order[lo:lo + batch_size]
            yield ({k: v[b] for k, v in s.x.items()}, {k: v[b] for k, v in s.y.items()}, s.w[b])

    def encode_history(self, history, max_len: Optional[int] = None) -> dict[str, np.ndarray]:
        return encode_history(self.preprocessor, history, max_len=max_len)

    def decode_items(self, ids) -> list[str]:
        return self.preprocessor.item_vocab.decode(ids)




def _windows(starts: np.ndarray, ends: np.ndarray, lower: np.ndarray, n: int) -> np.ndarray:
    """Row-index windows [R, n]: positions ends-n+1 .. ends, -1 below `lower`."""
    idx = ends[:, None] - (n - 1) + np.arange(n)[None, :]
    return np.where(idx >= lower[:, None], idx, -1).astype(np.int64)


def encode(
    dataset: Dataset,
    max_len: int = DEFAULT_MAX_LEN,
    *,
    train_windows: str = "sliding",
    preprocessor: Optional[Preprocessor] = None,
    derive_time_features: bool = True,
) -> EncodedData:
    """Encode a `Dataset` into leave-one-out train / val / test arrays.

    Args:
        dataset: canonical dataset (interactions sorted by user, timestamp).
        max_len: sequence length n (left padding).
        train_windows: "sliding" (every training target: the last n training
            positions and the earlier non-overlapping windows of n) or "last" (one
            window per user: the last n training positions).
        preprocessor: reuse fitted vocabularies / statistics instead of fitting on
            this dataset's training portion (its weight scale is kept too).
        derive_time_features: add `hour_of_day` and `day_of_week` categoricals
            (only when the data has real timestamps).
    """
    if max_len < 1:
        raise ValueError("max_len must be >= 1")
    if train_windows not in TRAIN_WINDOWS:
        raise ValueError(f"train_windows must be one of {TRAIN_WINDOWS}, got {train_windows!r}")
    df = dataset.interactions
    schema = dataset.schema
    n = int(max_len)
    N = len(df)
    users = df[USER].to_numpy()
    if N:
        new_user = np.empty(N, dtype=bool)
        new_user[0] = True
        new_user[1:] = users[1:] != users[:-1]
        starts = np.flatnonzero(new_user)
    else:
        starts = np.zeros(0, np.int64)
    lens = np.diff(np.append(starts, N))
    uid = users[starts] if N else np.zeros(0, dtype=object)
    if len(pd.unique(uid)) != len(uid):
        raise ValueError("interactions are not grouped by user (sort by user_id, timestamp)")
    train_len = np.where(lens >= 3, lens - 2, np.where(lens == 2, 2, 0))

    # Training portion: rows at position < train_len of their user.
    pos = np.arange(N) - np.repeat(starts, lens)
    in_train = pos < np.repeat(train_len, lens)
    stats: dict[str, Any] = {
        "users": int(len(starts)),
        "users_dropped_single_interaction": int((lens == 1).sum()),
        "users_train_only": int((lens == 2).sum()),
        "users_without_train_window": int((lens == 3).sum()),
        "train_portion_rows": int(in_train.sum()),
    }
    if preprocessor is None:
        preprocessor = Preprocessor.fit(df.loc[in_train], schema, n, derive_time_features)
        fit_weights = True
    else:
        preprocessor = dataclasses.replace(preprocessor, max_len=n)
        fit_weights = False
    counts: dict[str, int] = {}
    rows = preprocessor.encode_rows(df, counts)
    stats.update(counts)

    # ---- train windows ----
    tu = np.flatnonzero(train_len >= 2)
    last_input = starts[tu] + train_len[tu] - 2
    ends = [last_input]
    owners = [tu]
    if train_windows == "sliding":
        k = 1
        while True:
            e = last_input - k * n
            ok = e >= starts[tu]
            if not ok.any():
                break
            ends.append(e[ok])
            owners.append(tu[ok])
            k += 1
    ends_a = np.concatenate(ends) if ends else np.zeros(0, np.int64)
    own_a = np.concatenate(owners) if owners else np.zeros(0, np.int64)
    order = np.lexsort((ends_a, own_a))
    ends_a, own_a = ends_a[order], own_a[order]
    tr_idx = _windows(starts[own_a], ends_a, starts[own_a], n)
    tr_tgt = np.where(tr_idx >= 0, tr_idx + 1, -1)
    if fit_weights:
        tw = rows.weight_raw[tr_tgt[tr_tgt >= 0]]
        mean = float(tw.mean()) if len(tw) else 1.0
        preprocessor.weight_scale = 1.0 / mean if mean > 0 and np.isfinite(mean) else 1.0
    train = _make_split(preprocessor, rows, tr_idx, tr_tgt, uid[own_a])

    # ---- val / test ----
    eu = np.flatnonzero(lens >= 3)
    splits = {}
    for name, back in (("val", 2), ("test", 1)):
        end = starts[eu] + lens[eu] - back - 1
        idx = _windows(starts[eu], end, starts[eu], n)
        tgt = np.full_like(idx, -1)
        if len(eu):
            tgt[:, -1] = end + 1
        splits[name] = _make_split(preprocessor, rows, idx, tgt, uid[eu])
        splits[name].seen = _seen_before(rows.item, starts[eu], end + 1)
        stats[f"{name}_target_oov"] = int((splits[name].y["item"][:, -1] == OOV_ID).sum()) if len(eu) else 0
    stats.update(train_rows=len(train), val_rows=len(splits["val"]), test_rows=len(splits["test"]),
                 weight_scale=float(preprocessor.weight_scale))

    pop = np.bincount(rows.item[in_train], minlength=len(preprocessor.item_vocab)).astype(np.int64)
    pop[:NUM_RESERVED_IDS] = 0
    titles = _item_titles(dataset.items, preprocessor.item_vocab)
    return EncodedData(train=train, val=splits["val"], test=splits["test"], preprocessor=preprocessor,
                       item_titles=titles, item_popularity=pop, stats=stats)


def _seen_before(items: np.ndarray, starts: np.ndarray, stops: np.ndarray) -> SeenItems:
    """Item ids of rows starts[r]..stops[r]-1 for every r (a user's history before a target)."""
    lengths = np.maximum(stops - starts, 0).astype(np.int64)
    indptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    offsets = np.arange(indptr[-1]) - np.repeat(indptr[:-1], lengths)
    return SeenItems(indptr, items[np.repeat(starts, lengths) + offsets].astype(np.int32))


def _make_split(p: Preprocessor, rows: _Rows, idx: np.ndarray, tgt: np.ndarray, user_ids) -> Split:
    x = p.gather_inputs(rows, idx)
    y, w = p.gather_targets(rows, tgt)
    return Split(x=x, y=y, w=w, user_ids=np.asarray(user_ids, dtype=object), rows=idx, target_rows=tgt)


def _item_titles(items: Optional[pd.DataFrame], vocab: Vocabulary) -> list:
    titles = dict()
    if items is not None and len(items) and ITEM in items.columns:
        t = items["title"] if "title" in items.columns else items[ITEM]
        titles = dict(zip(items[ITEM].astype(str), t.fillna("").astype(str)))
    return [PAD_TOKEN, OOV_TOKEN] + [titles.get(v, v) or v for v in vocab.values]




def history_frame(history) -> pd.DataFrame:
    if history is None:
        return pd.DataFrame({ITEM: pd.Series([], dtype=object)})
    if isinstance(history, pd.DataFrame):
        return history.reset_index(drop=True)
    return pd.DataFrame(list(history))


def encode_histories(preprocessor: Union[Preprocessor, EncodedData], histories: Sequence,
                     max_len: Optional[int] = None) -> dict[str, np.ndarray]:
    """Encode raw user histories (each a DataFrame or list of canonical-row dicts).

    Rows are ordered by `timestamp` (stable) when the data has timestamps and the
    column is present, else kept in the given order; the most recent `max_len`
    rows are kept, left-padded. Unknown values map to OOV, missing numeric to 0.
    Returns inputs with a batch dimension of len(histories).
    """
    p = preprocessor.preprocessor if isinstance(preprocessor, EncodedData) else preprocessor
    n = int(max_len or p.max_len)
    frames = []
    for h in histories:
        f = history_frame(h)
        if len(f) and TIMESTAMP in f.columns and p.schema.has_timestamps:
            f = f.assign(**{TIMESTAMP: pd.to_numeric(f[TIMESTAMP], errors="coerce").fillna(0).astype(np.int64)})
            f = f.sort_values(TIMESTAMP, kind="mergesort")
        if len(f) and TIMESTAMP not in f.columns:
            f = f.assign(**{TIMESTAMP: np.arange(len(f), dtype=np.int64)})
        frames.append(f.tail(n).reset_index(drop=True))
    lens = np.array([len(f) for f in frames], dtype=np.int64)
    allrows = pd.concat(frames, ignore_index=True) if lens.sum() else pd.DataFrame(
        {ITEM: pd.Series([], dtype=object), TIMESTAMP: pd.Series([], dtype=np.int64)})
    rows = p.encode_rows(allrows)
    offs = np.concatenate([[0], np.cumsum(lens)[:-1]])
    ends = offs + lens - 1
    idx = ends[:, None] - (n - 1) + np.arange(n)[None, :]
    idx = np.where(idx >= offs[:, None], idx, -1)
    return p.gather_inputs(rows, idx)


def encode_history(preprocessor: Union[Preprocessor, EncodedData], history,
                   max_len: Optional[int] = None) -> dict[str, np.ndarray]:
    """Encode one raw user history for inference: inputs with batch dimension 1."""
    return encode_histories(preprocessor, [history], max_len=max_len)

