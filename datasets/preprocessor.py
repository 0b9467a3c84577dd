"""The fitted state of the numpy encoder: vocabularies, statistics, row encoding.

`Preprocessor.fit` learns everything from the training portion only; `encode_rows`
turns canonical rows into per-row ids and values, and `gather_inputs` /
`gather_targets` lay them out as left-padded `[rows, max_len]` windows. The TFX
Transform graph (`pipeline/preprocessing.py`) mirrors these semantics
(tests/pipeline/test_preprocessing_parity.py).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Optional

import numpy as np
import pandas as pd

from datasets.feature_spec import (
    DAY_OF_WEEK,
    HOUR_OF_DAY,
    FeatureSpec,
    derived_time_features,
)
from datasets.schema import (
    ITEM,
    PAD_ID,
    SECONDS_PER_DAY,
    TIMESTAMP,
    WEIGHT,
    InteractionSchema,
)
from datasets.vocabulary import Vocabulary, fit_multi_vocab, multi_hot_table

_RESERVED_KEYS = ("item", "time")
_HOUR_STR = np.array([str(h) for h in range(24)], dtype=object)
_DOW_STR = np.array([str(d) for d in range(7)], dtype=object)  # 0 = Monday


def time_features(timestamps: np.ndarray) -> dict[str, np.ndarray]:
    """UTC hour of day ('0'..'23') and day of week ('0' = Monday .. '6') as strings."""
    ts = np.asarray(timestamps, dtype=np.int64)
    hour = (ts // 3600) % 24
    dow = (ts // 86400 + 3) % 7  # 1970-01-01 was a Thursday
    return {HOUR_OF_DAY: _HOUR_STR[hour], DAY_OF_WEEK: _DOW_STR[dow]}




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
        derived = derived_time_features(schema, derive_time_features)
        cat_vocabs = {c: Vocabulary.fit(train_rows[c].to_numpy()) for c in schema.categorical}
        if derived:
            tf = time_features(train_rows[TIMESTAMP].to_numpy())
            for c in derived:
                cat_vocabs[c] = Vocabulary.fit(tf[c])
        multi = {c: fit_multi_vocab(train_rows[c]) for c in schema.multi_label}
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

    def feature_spec(self) -> FeatureSpec:
        sizes = {"item": len(self.item_vocab), **{c: len(v) for c, v in self.categorical_vocabs.items()},
                 **{c: len(v) for c, v in self.multi_vocabs.items()}}
        return FeatureSpec.build(self.schema, self.max_len, sizes, self.derived_categorical)

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
        multi = {c: multi_hot_table(col(c), v) for c, v in self.multi_vocabs.items()}
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


