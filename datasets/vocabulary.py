"""Vocabularies of the numpy encoder: value <-> id, multi-hot tables.

Ids (ARCHITECTURE.md §2): 0 = padding, 1 = OOV (unknown or missing value), 2.. = values
by descending training frequency, ties by descending value (byte order). That is
TensorFlow Transform's fixed order, so the TFX Transform graph
(`pipeline/preprocessing.py`) gives every value the same id.
"""

from __future__ import annotations

from typing import Optional, Sequence, Union

import numpy as np
import pandas as pd

from datasets.schema import MULTI_LABEL_SEP, NUM_RESERVED_IDS, OOV_ID

PAD_TOKEN = "<pad>"
OOV_TOKEN = "<oov>"


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
        """From observed values (missing = '' or None excluded); frequency desc, ties by value desc."""
        s = pd.Series(values, dtype=object)
        if weights is None:
            vc = s[s.notna()].astype(str).value_counts(sort=False)
        else:
            vc = pd.Series(weights, index=s.astype(str).to_numpy()).groupby(level=0, sort=False).sum()
        vc = vc[vc.index != ""]
        vc = vc[vc > 0]
        order = _tft_order(zip(vc.index, vc.to_numpy()))
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


def split_labels(value: str) -> list[str]:
    return [t for t in str(value).split(MULTI_LABEL_SEP) if t]


def multi_hot_table(values: pd.Series, vocab: Vocabulary) -> tuple[np.ndarray, np.ndarray]:
    """-> (codes [N] int64, table [C, len(vocab)] uint8) with multi-hot = table[codes]."""
    s = pd.Series(values, dtype=object).fillna("")
    codes, uniques = pd.factorize(s, sort=False)
    table = np.zeros((max(len(uniques), 1), len(vocab)), dtype=np.uint8)
    for u, val in enumerate(uniques):
        toks = split_labels(val)
        if toks:
            table[u, vocab.lookup(toks)] = 1
    return codes.astype(np.int64), table


def fit_multi_vocab(values: pd.Series) -> Vocabulary:
    s = pd.Series(values, dtype=object).fillna("")
    vc = s.value_counts(sort=False)
    counts: dict[str, int] = {}
    for val, c in zip(vc.index, vc.to_numpy()):
        for tok in set(split_labels(val)):
            counts[tok] = counts.get(tok, 0) + int(c)
    order = _tft_order(counts.items())
    return Vocabulary([k for k, _ in order], [c for _, c in order])


def _tft_order(value_counts) -> list:
    """(value, count) pairs in `tft.vocabulary`'s order: count descending, ties by value
    descending (Python's str order is UTF-8 byte order, TFT's)."""
    return sorted(value_counts, key=lambda kv: (kv[1], kv[0]), reverse=True)


