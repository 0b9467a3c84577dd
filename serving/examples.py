"""Builds the serving input of one user: a tf.Example (serving_default) or raw tensors.

Shared by the client, the warm-up writer, the exporter, tests and the benchmark, so that
they all encode a history the same way (serving/contract.py, docs/serving.md):

- ``item_id``: bytes_list, oldest first;
- ``timestamp``: int64_list of the same length (seconds; or the 0-based order when the
  history has no times);
- every metadata column: one value per interaction — bytes_list for categorical and
  multi-label ("|"-joined) columns, float_list for numeric ones, int64_list when the
  model's metadata says so.
"""

from __future__ import annotations

import numbers
from typing import Mapping, Sequence

import numpy as np
from tensorflow.core.example import example_pb2

from serving import contract

FEATURE_TYPES = ("bytes", "int64", "float")


def _as_bytes(v) -> bytes:
    if isinstance(v, bytes):
        return v
    if v is None:
        return b""
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    return str(v).encode("utf-8")


def infer_feature_type(values: Sequence) -> str:
    """bytes unless every value is a number (bool excluded)."""
    vals = [v for v in values if v is not None and v != ""]
    if vals and all(isinstance(v, numbers.Number) and not isinstance(v, bool) for v in vals):
        return "float"
    return "bytes"


def make_example(
    item_ids: Sequence,
    timestamps: Sequence[int] | None = None,
    metadata: Mapping[str, Sequence] | None = None,
    feature_types: Mapping[str, str] | None = None,
) -> example_pb2.Example:
    """One user's history as a tf.train.Example (the serving_default input)."""
    items = [_as_bytes(i) for i in item_ids]
    if timestamps is None:
        timestamps = range(len(items))
    ts = [int(t) for t in timestamps]
    if len(ts) != len(items):
        raise ValueError(f"{len(ts)} timestamps for {len(items)} items")
    types = dict(feature_types or {})
    ex = example_pb2.Example()
    feat = ex.features.feature
    feat[contract.EXAMPLE_ITEM_ID].bytes_list.value.extend(items)
    feat[contract.EXAMPLE_TIMESTAMP].int64_list.value.extend(ts)
    for name, values in (metadata or {}).items():
        if name in (contract.EXAMPLE_ITEM_ID, contract.EXAMPLE_TIMESTAMP):
            raise ValueError(f"metadata column {name!r} clashes with a fixed feature")
        values = list(values)
        if len(values) != len(items):
            raise ValueError(f"metadata {name!r}: {len(values)} values for {len(items)} items")
        kind = types.get(name) or infer_feature_type(values)
        if kind == "bytes":
            feat[name].bytes_list.value.extend(_as_bytes(v) for v in values)
        elif kind == "int64":
            feat[name].int64_list.value.extend(int(float(v or 0)) for v in values)
        elif kind == "float":
            feat[name].float_list.value.extend(float(v) if v not in (None, "") else 0.0 for v in values)
        else:
            raise ValueError(f"unknown feature type {kind!r} for {name!r}; expected {FEATURE_TYPES}")
    return ex


_NP_PAD = {np.dtype(object): b"", np.dtype(np.int64): 0, np.dtype(np.int32): 0,
           np.dtype(np.float32): 0.0, np.dtype(np.float64): 0.0}


def left_pad(rows: Sequence[Sequence], length: int | None, dtype, pad=None) -> np.ndarray:
    """[batch, length] array, each row left-padded (latest value at the end) or cut to the
    latest ``length`` values. ``length=None`` pads to the longest row."""
    dtype = np.dtype(dtype)
    if pad is None:
        pad = _NP_PAD.get(dtype, 0)
    if length is None:
        length = max((len(r) for r in rows), default=0)
    out = np.full((len(rows), length), pad, dtype=dtype)
    for b, row in enumerate(rows):
        row = list(row)[-length:] if length else []
        if row:
            out[b, length - len(row):] = row
    return out
