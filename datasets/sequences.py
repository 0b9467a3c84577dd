"""Reference numpy encoder: `Dataset` -> left-padded leave-one-out arrays (ARCHITECTURE.md §2).

The TFX Transform graph (`pipeline/preprocessing.py`) mirrors these semantics, so
they are kept deliberately simple. Per user, interactions s_1..s_m sorted by time:

* training sequence t = s[:-2] (m >= 3) or s (m == 2); users with m == 1 are dropped.
  The *training portion* is every row of every training sequence.
* train rows: inputs t[:-1], next-step targets t[1:] at every position; the last
  `max_len` positions, left-padded. `train_windows="sliding"` adds earlier,
  non-overlapping windows (stride = max_len) so every training target is used.
* val rows (m >= 3): inputs s[:-2] (last max_len), target s[-2] at the last position.
* test rows (m >= 3): inputs s[:-1] (last max_len), target s[-1] at the last position.

Vocabularies (items, each categorical incl. derived `hour_of_day`/`day_of_week`,
each multi-label) are fitted on the training portion only: 0 = padding, 1 = OOV
(unknown or missing value), 2.. = values by descending frequency, ties by value.
See docs/datasets.md for the full specification.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Iterator, Optional, Sequence, Union

import numpy as np
import pandas as pd

from datasets.dataset import Dataset
from datasets.schema import (
    ITEM,
    MULTI_LABEL_SEP,
    NUM_RESERVED_IDS,
    OOV_ID,
    PAD_ID,
    SECONDS_PER_DAY,
    TIMESTAMP,
    USER,
    WEIGHT,
    InteractionSchema,
)

PAD_TOKEN = "<pad>"
OOV_TOKEN = "<oov>"
HOUR_OF_DAY = "hour_of_day"
DAY_OF_WEEK = "day_of_week"
_RESERVED_KEYS = ("item", "time")
_HOUR_STR = np.array([str(h) for h in range(24)], dtype=object)
_DOW_STR = np.array([str(d) for d in range(7)], dtype=object)  # 0 = Monday


# --------------------------------------------------------------------------------------
# Vocabulary
# --------------------------------------------------------------------------------------
class Vocabulary:
    """Value <-> id. ids: 0 pad, 1 OOV, 2.. `values` in order (descending frequency)."""

    def __init__(self, values: Sequence[str], counts: Optional[Sequence[int]] = None):
        self.values = [str(v) for v in values]
        self.counts = None if counts is None else [int(c) for c in counts]
        self._index = pd.Index(self.values, dtype=object)
        if not self._index.is_unique:
            raise ValueError("vocabulary values must be unique")

    @classmethod
    def fit(cls, values: Union[pd.Series, np.ndarray], weights: Optional[np.ndarray] = None) -> "Vocabulary":
        """From observed values (missing = '' or None excluded); frequency desc, ties by value."""
        s = pd.Series(values, dtype=object)
        if weights is None:
            vc = s[s.notna()].astype(str).value_counts(sort=False)
        else:
            vc = pd.Series(weights, index=s.astype(str).to_numpy()).groupby(level=0, sort=False).sum()
        vc = vc[vc.index != ""]
        vc = vc[vc > 0]
        order = sorted(zip(vc.index, vc.to_numpy()), key=lambda kv: (-kv[1], kv[0]))
        return cls([k for k, _ in order], [int(c) for _, c in order])

    def __len__(self) -> int:
        """Number of ids including pad and OOV."""
        return len(self.values) + NUM_RESERVED_IDS

    @property
    def tokens(self) -> list[str]:
        """id -> value (index 0 and 1 are the pad and OOV tokens)."""
        return [PAD_TOKEN, OOV_TOKEN, *self.values]

    def lookup(self, values) -> np.ndarray:
        """Values -> int32 ids; unknown, missing ('' / None / NaN) -> OOV_ID."""
        arr = pd.Series(values, dtype=object)
        if len(arr) == 0:
            return np.zeros(0, np.int32)
        codes, uniques = pd.factorize(arr, sort=False)  # NaN/None -> code -1
        if len(uniques) == 0:
            return np.full(len(arr), OOV_ID, np.int32)
        uid = self._index.get_indexer(pd.Index(uniques.astype(str), dtype=object))
        uid = np.where(uid < 0, OOV_ID, uid + NUM_RESERVED_IDS).astype(np.int32)
        return np.where(codes < 0, OOV_ID, uid[np.maximum(codes, 0)]).astype(np.int32)

    def decode(self, ids) -> list[str]:
        toks = self.tokens
        return [toks[i] if 0 <= i < len(toks) else OOV_TOKEN for i in np.asarray(ids).ravel()]

    def to_dict(self) -> dict:
        return {"values": self.values, "counts": self.counts}

    @classmethod
    def from_dict(cls, d: dict) -> "Vocabulary":
        return cls(d["values"], d.get("counts"))


def _split_labels(value: str) -> list[str]:
    return [t for t in str(value).split(MULTI_LABEL_SEP) if t]


def _multi_hot_table(values: pd.Series, vocab: Vocabulary) -> tuple[np.ndarray, np.ndarray]:
    """-> (codes [N] int64, table [C, len(vocab)] uint8) with multi-hot = table[codes]."""
    s = pd.Series(values, dtype=object).fillna("")
    codes, uniques = pd.factorize(s, sort=False)
    table = np.zeros((max(len(uniques), 1), len(vocab)), dtype=np.uint8)
    for u, val in enumerate(uniques):
        toks = _split_labels(val)
        if toks:
            table[u, vocab.lookup(toks)] = 1
    return codes.astype(np.int64), table


def _fit_multi_vocab(values: pd.Series) -> Vocabulary:
    s = pd.Series(values, dtype=object).fillna("")
    vc = s.value_counts(sort=False)
    counts: dict[str, int] = {}
    for val, c in zip(vc.index, vc.to_numpy()):
        for tok in set(_split_labels(val)):
            counts[tok] = counts.get(tok, 0) + int(c)
    order = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return Vocabulary([k for k, _ in order], [c for _, c in order])


def time_features(timestamps: np.ndarray) -> dict[str, np.ndarray]:
    """UTC hour of day ('0'..'23') and day of week ('0' = Monday .. '6') as strings."""
    ts = np.asarray(timestamps, dtype=np.int64)
    hour = (ts // 3600) % 24
    dow = (ts // 86400 + 3) % 7  # 1970-01-01 was a Thursday
    return {HOUR_OF_DAY: _HOUR_STR[hour], DAY_OF_WEEK: _DOW_STR[dow]}


# --------------------------------------------------------------------------------------
# Preprocessor: the fitted state (vocabularies, statistics) + row encoding.
# --------------------------------------------------------------------------------------
@dataclasses.dataclass
class Preprocessor:
    """Everything needed to turn canonical rows into model inputs."""

    schema: InteractionSchema
    max_len: int
    item_vocab: Vocabulary
    categorical_vocabs: dict  # name -> Vocabulary (schema categoricals, then derived)
    multi_vocabs: dict  # name -> Vocabulary
    numeric_stats: dict  # name -> (mean, std)
    weight_scale: float = 1.0
    derived_categorical: tuple = ()

    # ---- fitting ---------------------------------------------------------------
    @classmethod
    def fit(cls, train_rows: pd.DataFrame, schema: InteractionSchema, max_len: int,
            derive_time_features: bool = True) -> "Preprocessor":
        for spec in schema.intents:
            if spec.kind == "single" and spec.column in schema.multi_label:
                raise ValueError(f"intent {spec.column!r}: a multi-label column needs kind='multi'")
        for name in (*schema.categorical, *schema.multi_label, *schema.numeric):
            if name in _RESERVED_KEYS:
                raise ValueError(f"column name {name!r} is reserved for the model inputs {_RESERVED_KEYS}")
        derived = ()
        if schema.has_timestamps and derive_time_features:
            derived = tuple(c for c in (HOUR_OF_DAY, DAY_OF_WEEK)
                            if c not in schema.categorical and c not in schema.multi_label)
        cat_vocabs = {c: Vocabulary.fit(train_rows[c].to_numpy()) for c in schema.categorical}
        if derived:
            tf = time_features(train_rows[TIMESTAMP].to_numpy())
            for c in derived:
                cat_vocabs[c] = Vocabulary.fit(tf[c])
        multi = {c: _fit_multi_vocab(train_rows[c]) for c in schema.multi_label}
        stats = {}
        for c in schema.numeric:
            x = train_rows[c].to_numpy(dtype=np.float64)
            x = x[np.isfinite(x)]
            mean = float(x.mean()) if len(x) else 0.0
            std = float(x.std()) if len(x) else 1.0
            stats[c] = (mean, std if std > 0 and np.isfinite(std) else 1.0)
        return cls(schema=schema, max_len=int(max_len), item_vocab=Vocabulary.fit(train_rows[ITEM].to_numpy()),
                   categorical_vocabs=cat_vocabs, multi_vocabs=multi, numeric_stats=stats,
                   derived_categorical=derived)

    # ---- description -----------------------------------------------------------
    @property
    def categorical(self) -> list[str]:
        return list(self.categorical_vocabs)

    def feature_spec(self) -> dict:
        intents = []
        for spec in self.schema.intents:
            vocab = self.multi_vocabs[spec.column] if spec.kind == "multi" else self.categorical_vocabs[spec.column]
            intents.append({"name": spec.column, "kind": spec.kind, "num_classes": len(vocab)})
        return {
            "item_vocab_size": len(self.item_vocab),
            "categorical": {c: len(v) for c, v in self.categorical_vocabs.items()},
            "multi_hot": {c: len(v) for c, v in self.multi_vocabs.items()},
            "numeric": list(self.schema.numeric),
            "intents": intents,
            "has_timestamps": bool(self.schema.has_timestamps),
            "max_len": int(self.max_len),
        }

    def to_dict(self) -> dict:
        return {
            "schema": self.schema.to_dict(),
            "max_len": self.max_len,
            "item_vocab": self.item_vocab.to_dict(),
            "categorical_vocabs": {k: v.to_dict() for k, v in self.categorical_vocabs.items()},
            "multi_vocabs": {k: v.to_dict() for k, v in self.multi_vocabs.items()},
            "numeric_stats": {k: list(v) for k, v in self.numeric_stats.items()},
            "weight_scale": self.weight_scale,
            "derived_categorical": list(self.derived_categorical),
        }

    @classmethod
    def from_dict(cls, d: dict) -> "Preprocessor":
        return cls(
            schema=InteractionSchema.from_dict(d["schema"]),
            max_len=int(d["max_len"]),
            item_vocab=Vocabulary.from_dict(d["item_vocab"]),
            categorical_vocabs={k: Vocabulary.from_dict(v) for k, v in d["categorical_vocabs"].items()},
            multi_vocabs={k: Vocabulary.from_dict(v) for k, v in d["multi_vocabs"].items()},
            numeric_stats={k: tuple(v) for k, v in d["numeric_stats"].items()},
            weight_scale=float(d.get("weight_scale", 1.0)),
            derived_categorical=tuple(d.get("derived_categorical", ())),
        )

    def save(self, path) -> None:
        with open(path, "w") as f:
            json.dump(self.to_dict(), f)

    @classmethod
    def load(cls, path) -> "Preprocessor":
        with open(path) as f:
            return cls.from_dict(json.load(f))

    # ---- row encoding ----------------------------------------------------------
    def encode_rows(self, rows: pd.DataFrame, counts: Optional[dict] = None) -> "_Rows":
        """Per-row encoded features of canonical rows (missing columns = missing values)."""
        n = len(rows)
        counts = counts if counts is not None else {}

        def col(name):
            if name in rows.columns:
                return rows[name]
            return pd.Series([None] * n, dtype=object, index=rows.index)

        if TIMESTAMP in rows.columns:
            ts = pd.to_numeric(rows[TIMESTAMP], errors="coerce").fillna(0).to_numpy(dtype=np.int64)
        else:
            ts = np.arange(n, dtype=np.int64)
        item = self.item_vocab.lookup(col(ITEM).to_numpy())
        cats = {}
        tf = time_features(ts) if self.derived_categorical else {}
        for c, vocab in self.categorical_vocabs.items():
            vals = tf[c] if c in self.derived_categorical else col(c).to_numpy()
            cats[c] = vocab.lookup(vals)
        multi = {c: _multi_hot_table(col(c), v) for c, v in self.multi_vocabs.items()}
        numeric = {}
        for c, (mean, std) in self.numeric_stats.items():
            x = pd.to_numeric(col(c), errors="coerce").to_numpy(dtype=np.float64)
            bad = ~np.isfinite(x)
            if bad.any():
                counts[f"numeric_missing:{c}"] = counts.get(f"numeric_missing:{c}", 0) + int(bad.sum())
            z = np.where(bad, 0.0, (np.where(bad, mean, x) - mean) / std)
            numeric[c] = z.astype(np.float32)
        if self.schema.has_weight and WEIGHT in rows.columns:
            w = pd.to_numeric(rows[WEIGHT], errors="coerce").to_numpy(dtype=np.float64)
            bad = ~np.isfinite(w) | (w < 0)
            if bad.any():
                counts["weight_invalid"] = counts.get("weight_invalid", 0) + int(bad.sum())
            w = np.where(bad, 1.0, w)
        else:
            w = np.ones(n, dtype=np.float64)
        return _Rows(ts=ts, item=item, cats=cats, multi=multi, numeric=numeric, weight_raw=w)

    def gather_inputs(self, rows: "_Rows", idx: np.ndarray) -> dict[str, np.ndarray]:
        """Input arrays for windows `idx` [R, n] of row indices (-1 = padding)."""
        rows = rows.nonempty()
        mask = idx >= 0
        safe = np.where(mask, idx, 0)
        x: dict[str, np.ndarray] = {}
        x["item"] = np.where(mask, rows.item[safe], PAD_ID).astype(np.int32)
        if len(idx):
            first_col = np.argmax(mask, axis=1)
            first = safe[np.arange(len(idx)), first_col]
            t0 = rows.ts[first][:, None]
        else:
            t0 = np.zeros((0, 1), np.int64)
        delta = (rows.ts[safe] - t0).astype(np.float64)
        if self.schema.has_timestamps:
            delta = delta / SECONDS_PER_DAY
        x["time"] = np.where(mask, delta, 0.0).astype(np.float32)
        for c, ids in rows.cats.items():
            x[c] = np.where(mask, ids[safe], PAD_ID).astype(np.int32)
        for c, (codes, table) in rows.multi.items():
            mh = table[codes[safe]]
            x[c] = (mh * mask[..., None]).astype(np.float32)
        for c, z in rows.numeric.items():
            x[c] = np.where(mask, z[safe], 0.0).astype(np.float32)
        return x

    def gather_targets(self, rows: "_Rows", tidx: np.ndarray) -> tuple[dict, np.ndarray]:
        """Targets and sample weights for target row indices `tidx` [R, n] (-1 = none)."""
        rows = rows.nonempty()
        mask = tidx >= 0
        safe = np.where(mask, tidx, 0)
        y: dict[str, np.ndarray] = {"item": np.where(mask, rows.item[safe], PAD_ID).astype(np.int32)}
        for spec in self.schema.intents:
            c = spec.column
            if spec.kind == "multi":
                codes, table = rows.multi[c]
                mh = table[codes[safe]]
                y[c] = (mh * mask[..., None]).astype(np.float32)
            else:
                y[c] = np.where(mask, rows.cats[c][safe], PAD_ID).astype(np.int32)
        w = np.where(mask, rows.weight_raw[safe] * self.weight_scale, 0.0).astype(np.float32)
        return y, w


@dataclasses.dataclass
class _Rows:
    ts: np.ndarray
    item: np.ndarray
    cats: dict
    multi: dict  # name -> (codes, table)
    numeric: dict
    weight_raw: np.ndarray

    def nonempty(self) -> "_Rows":
        """With one dummy row appended when empty, so gathers of all-padding windows work."""
        if len(self.item):
            return self
        return _Rows(ts=np.zeros(1, np.int64), item=np.zeros(1, np.int32),
                     cats={c: np.zeros(1, np.int32) for c in self.cats},
                     multi={c: (np.zeros(1, np.int64), t) for c, (_, t) in self.multi.items()},
                     numeric={c: np.zeros(1, np.float32) for c in self.numeric},
                     weight_raw=np.ones(1))


# --------------------------------------------------------------------------------------
# Encoded arrays
# --------------------------------------------------------------------------------------
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
    """

    x: dict
    y: dict
    w: np.ndarray
    user_ids: np.ndarray
    rows: Optional[np.ndarray] = None
    target_rows: Optional[np.ndarray] = None

    def __len__(self) -> int:
        return int(self.w.shape[0])

    def take(self, index) -> "Split":
        return Split({k: v[index] for k, v in self.x.items()}, {k: v[index] for k, v in self.y.items()},
                     self.w[index], self.user_ids[index],
                     None if self.rows is None else self.rows[index],
                     None if self.target_rows is None else self.target_rows[index])


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
    def feature_spec(self) -> dict:
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


# --------------------------------------------------------------------------------------
# encode
# --------------------------------------------------------------------------------------
def _windows(starts: np.ndarray, ends: np.ndarray, lower: np.ndarray, n: int) -> np.ndarray:
    """Row-index windows [R, n]: positions ends-n+1 .. ends, -1 below `lower`."""
    idx = ends[:, None] - (n - 1) + np.arange(n)[None, :]
    return np.where(idx >= lower[:, None], idx, -1).astype(np.int64)


def encode(
    dataset: Dataset,
    max_len: int = 50,
    *,
    train_windows: str = "last",
    preprocessor: Optional[Preprocessor] = None,
    derive_time_features: bool = True,
) -> EncodedData:
    """Encode a `Dataset` into leave-one-out train / val / test arrays.

    Args:
        dataset: canonical dataset (interactions sorted by user, timestamp).
        max_len: sequence length n (left padding).
        train_windows: "last" (one window per user: the last n training positions)
            or "sliding" (also earlier non-overlapping windows of n positions).
        preprocessor: reuse fitted vocabularies / statistics instead of fitting on
            this dataset's training portion (its weight scale is kept too).
        derive_time_features: add `hour_of_day` and `day_of_week` categoricals
            (only when the data has real timestamps).
    """
    if max_len < 1:
        raise ValueError("max_len must be >= 1")
    if train_windows not in ("last", "sliding"):
        raise ValueError("train_windows must be 'last' or 'sliding'")
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
        stats[f"{name}_target_oov"] = int((splits[name].y["item"][:, -1] == OOV_ID).sum()) if len(eu) else 0
    stats.update(train_rows=len(train), val_rows=len(splits["val"]), test_rows=len(splits["test"]),
                 weight_scale=float(preprocessor.weight_scale))

    pop = np.bincount(rows.item[in_train], minlength=len(preprocessor.item_vocab)).astype(np.int64)
    pop[:NUM_RESERVED_IDS] = 0
    titles = _item_titles(dataset.items, preprocessor.item_vocab)
    return EncodedData(train=train, val=splits["val"], test=splits["test"], preprocessor=preprocessor,
                       item_titles=titles, item_popularity=pop, stats=stats)


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


# --------------------------------------------------------------------------------------
# Inference-time encoding
# --------------------------------------------------------------------------------------
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
