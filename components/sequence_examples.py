"""The tf.Examples of one user: leave-one-out splits, sliding training windows, row checks.

These are exactly the rows of the numpy reference encoder (`datasets.encoder.encode`),
written as one tf.Example per (user, split[, window]) with list features, one value per
interaction (see `serving/contract.py`). `components/sequence_example_gen.py` runs them
in Beam; the functions here are plain Python so that they can be tested alone.
"""

from __future__ import annotations

import math
from typing import Dict, Iterable, List, Optional

import numpy as np
import tensorflow as tf

from datasets.schema import ITEM, TIMESTAMP, USER, WEIGHT, InteractionSchema

# Scalar features written besides the per-interaction lists.
LABEL_MODE = "label_mode"
LABEL_MODE_SERVE, LABEL_MODE_TRAIN, LABEL_MODE_EVAL = 0, 1, 2
# An earlier training window ("sliding" windows): trained on like LABEL_MODE_TRAIN, but
# its rows are already in the user's LABEL_MODE_TRAIN example, so Transform's
# analyzers skip it (vocabularies and statistics count every training row once).
LABEL_MODE_TRAIN_WINDOW = 3
USER_FEATURE = "user_id"
SEEN_ITEMS = "seen_item_id"
HISTORY_LENGTH = "history_length"
HISTORY_BUCKET = "history_bucket"
# Upper bounds (inclusive) of the history-length evaluation slices.
HISTORY_BUCKET_BOUNDS = (5, 20, 50, 200)


def history_bucket(length: int) -> str:
    lo = 1
    for hi in HISTORY_BUCKET_BOUNDS:
        if length <= hi:
            return f"{lo:03d}-{hi:03d}"
        lo = hi + 1
    return f"{lo:03d}+"




# --------------------------------------------------------------------------------------
# Per-user example building (pure python, unit-testable)
# --------------------------------------------------------------------------------------
def _bytes(values) -> tf.train.Feature:
    return tf.train.Feature(bytes_list=tf.train.BytesList(
        value=[("" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)).encode("utf-8")
               for v in values]))


def _ints(values) -> tf.train.Feature:
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(v) for v in values]))


def _floats(values) -> tf.train.Feature:
    return tf.train.Feature(float_list=tf.train.FloatList(value=[float(v) for v in values]))


def make_sequence_example(user_id: str, rows: Dict[str, np.ndarray], schema: InteractionSchema,
                          label_mode: int, history_length: int, seen=()) -> tf.train.Example:
    """One tf.Example from column arrays of one user's (already sliced) interactions;
    `seen`: the items of the user's history before the target (eval/test)."""
    f = {
        USER_FEATURE: _bytes([user_id]),
        ITEM: _bytes(rows[ITEM]),
        TIMESTAMP: _ints(rows[TIMESTAMP]),
        LABEL_MODE: _ints([label_mode]),
        HISTORY_LENGTH: _ints([history_length]),
        HISTORY_BUCKET: _bytes([history_bucket(history_length)]),
        SEEN_ITEMS: _bytes(dict.fromkeys(seen)),  # distinct, in order: a filter, not a sequence
    }
    for c in (*schema.categorical, *schema.multi_label):
        f[c] = _bytes(rows[c])
    for c in schema.numeric:
        f[c] = _floats(rows[c])
    if schema.has_weight:
        f[WEIGHT] = _floats(rows[WEIGHT])
    return tf.train.Example(features=tf.train.Features(feature=f))


def user_examples(user_id: str, rows: Dict[str, np.ndarray], schema: InteractionSchema, max_len: int,
                  max_train_history: Optional[int] = None, train_windows: str = "last") -> List[tuple]:
    """(split, tf.Example) pairs of one user; `rows` sorted oldest first.

    Mirrors `datasets.encoder.encode`: train_windows="last" trains on the last n
    positions of the training sequence; "sliding" adds the earlier non-overlapping
    windows (stride n) so that every training target is used.
    """
    if train_windows not in ("last", "sliding"):
        raise ValueError("train_windows must be 'last' or 'sliding'")
    m = len(rows[ITEM])
    n = int(max_len)
    out = []

    def take(lo, hi):
        return {k: v[lo:hi] for k, v in rows.items()}

    if m < 2:
        return out
    train_len = m - 2 if m >= 3 else m
    # Users with 3 interactions have a 1-row training sequence: no target, but its row
    # belongs to the training portion that vocabularies and statistics are fitted on
    # (the Trainer skips rows without any target).
    if train_len >= 1:
        lo = 0 if not max_train_history else max(0, train_len - int(max_train_history))
        out.append(("train", make_sequence_example(user_id, take(lo, train_len), schema, LABEL_MODE_TRAIN,
                                                   history_length=train_len - 1)))
        if train_windows == "sliding":
            # Window k ends its inputs at e = (train_len - 2) - k * n; its sequence is
            # t[e - n + 1 : e + 2] (inputs, then the last target).
            e = train_len - 2 - n
            while e >= 0:
                out.append(("train", make_sequence_example(
                    user_id, take(max(0, e - n + 1), e + 2), schema, LABEL_MODE_TRAIN_WINDOW,
                    history_length=e + 1)))
                e -= n
    if m >= 3:
        # eval: s[:-1] -> inputs s[:-2], target s[-2]; test: s -> inputs s[:-1], target s[-1].
        items = rows[ITEM]
        out.append(("eval", make_sequence_example(user_id, take(max(0, m - 1 - (n + 1)), m - 1), schema,
                                                  LABEL_MODE_EVAL, history_length=m - 2, seen=items[:m - 2])))
        out.append(("test", make_sequence_example(user_id, take(max(0, m - (n + 1)), m), schema,
                                                  LABEL_MODE_EVAL, history_length=m - 1, seen=items[:m - 1])))
    return out




# --------------------------------------------------------------------------------------
# Canonical row checks (defence in depth: the adapters already validate)
# --------------------------------------------------------------------------------------
def check_canonical(frame, schema: InteractionSchema, source: str):
    """-> (kept frame, list of rejected dicts). Missing canonical columns raise."""
    import pandas as pd

    missing = [c for c in schema.columns if c not in frame.columns]
    if missing:
        raise ValueError(
            f"{source}: the data lacks columns {missing} of the configured interaction schema "
            f"(columns: {list(frame.columns)}). Check the pipeline's interaction_schema / adapter.")
    bad_reason = pd.Series("", index=frame.index, dtype=object)

    def mark(mask, reason):
        nonlocal bad_reason
        mask = mask & (bad_reason == "")
        bad_reason = bad_reason.where(~mask, reason)

    def is_missing(s):
        return s.isna() | (s.astype(str).str.strip() == "")

    mark(is_missing(frame[USER]), "missing_user")
    mark(is_missing(frame[ITEM]), "missing_item")
    ts = pd.to_numeric(frame[TIMESTAMP], errors="coerce")
    mark(ts.isna() | ~np.isfinite(ts.astype(float)), "bad_timestamp")
    for c in schema.numeric:
        x = pd.to_numeric(frame[c], errors="coerce")
        mark(x.isna() & ~frame[c].isna() & ~is_missing(frame[c].astype(object)), f"bad_numeric:{c}")
    if schema.has_weight:
        w = pd.to_numeric(frame[WEIGHT], errors="coerce")
        mark((w < 0) | np.isinf(w), "bad_weight")
    bad = bad_reason != ""
    rejected = []
    if bad.any():
        for idx in np.flatnonzero(bad.to_numpy()):
            row = frame.iloc[idx]
            rejected.append({"reason": bad_reason.iloc[idx], "source": source,
                             "row": {c: _jsonable(row[c]) for c in schema.columns}})
    return frame.loc[~bad], rejected


def _jsonable(v):
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating, float)):
        return None if math.isnan(v) else float(v)
    return v if isinstance(v, (int, str)) or v is None else str(v)


def frame_to_user_chunks(frame, schema: InteractionSchema, order_base: int) -> Iterable[tuple]:
    """(user_id, chunk) per user of a canonical frame; chunk = column arrays + `_order`."""
    import pandas as pd

    frame = frame.reset_index(drop=True)
    cols = {ITEM: frame[ITEM].astype(str).str.strip().to_numpy(dtype=object),
            TIMESTAMP: pd.to_numeric(frame[TIMESTAMP]).to_numpy(dtype=np.int64)}
    for c in (*schema.categorical, *schema.multi_label):
        cols[c] = frame[c].where(~frame[c].isna(), "").astype(str).to_numpy(dtype=object)
    for c in schema.numeric:
        cols[c] = pd.to_numeric(frame[c], errors="coerce").to_numpy(dtype=np.float64)
    if schema.has_weight:
        cols[WEIGHT] = pd.to_numeric(frame[WEIGHT], errors="coerce").to_numpy(dtype=np.float64)
    cols["_order"] = order_base + np.arange(len(frame), dtype=np.int64)
    users = frame[USER].astype(str).str.strip().to_numpy(dtype=object)
    codes, uniques = pd.factorize(users)
    order = np.argsort(codes, kind="stable")
    bounds = np.flatnonzero(np.diff(codes[order])) + 1
    for part in np.split(order, bounds):
        if len(part) == 0:
            continue
        yield str(uniques[codes[part[0]]]), {k: v[part] for k, v in cols.items()}


