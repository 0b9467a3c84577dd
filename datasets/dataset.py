"""`Dataset` (what every adapter returns) and `IngestReport` (what happened to the rows).

An adapter reads raw files, turns every row into a canonical interaction (see
`datasets.schema`) or rejects it with a reason, and returns a `Dataset`. The
report accounts for every row: ``rows_read == rows_kept + sum(rejected.values())``.
Rows that are kept but had a field fixed or marked missing are counted in
``repaired``; informational counts (blank lines, users with a single interaction,
detected timestamp unit, ...) live in ``notes``.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from typing import Any, Iterable, Optional

import numpy as np
import pandas as pd

from datasets.schema import ITEM, MULTI_LABEL_SEP, TIMESTAMP, USER, WEIGHT, InteractionSchema


class DatasetError(ValueError):
    """A whole input is unusable (missing, empty, unreadable, no valid rows)."""


@dataclasses.dataclass
class IngestReport:
    """Row accounting of one ingestion.

    Attributes:
        source: what was read (a path, or "synthetic").
        rows_read: data rows seen (not counting headers and blank lines).
        rows_kept: rows in `Dataset.interactions`.
        rejected: reason -> number of rows dropped for that reason.
        repaired: reason -> number of kept rows that had a field fixed or set missing.
        notes: informational counts and facts (blank lines, users, detected units ...).
        examples: reason -> up to `max_examples` messages "file:line: field 'f': problem".
    """

    source: str = ""
    rows_read: int = 0
    rows_kept: int = 0
    rejected: Counter = dataclasses.field(default_factory=Counter)
    repaired: Counter = dataclasses.field(default_factory=Counter)
    notes: dict = dataclasses.field(default_factory=dict)
    examples: dict = dataclasses.field(default_factory=dict)
    max_examples: int = 5

    # -- recording --------------------------------------------------------------------
    def _add_examples(self, reason: str, messages: Iterable[str]) -> None:
        bucket = self.examples.setdefault(reason, [])
        for msg in messages:
            if len(bucket) >= self.max_examples:
                break
            bucket.append(msg)

    def reject(self, reason: str, count: int = 1, examples: Iterable[str] = ()) -> None:
        """Record `count` dropped rows."""
        if count <= 0:
            return
        self.rejected[reason] += int(count)
        self._add_examples(reason, examples)

    def repair(self, reason: str, count: int = 1, examples: Iterable[str] = ()) -> None:
        """Record `count` kept rows with a fixed / missing field."""
        if count <= 0:
            return
        self.repaired[reason] += int(count)
        self._add_examples(reason, examples)

    def note(self, key: str, value: Any) -> None:
        self.notes[key] = value

    # -- reading ----------------------------------------------------------------------
    @property
    def rows_rejected(self) -> int:
        return int(sum(self.rejected.values()))

    @property
    def rows_repaired(self) -> int:
        return int(sum(self.repaired.values()))

    def check(self) -> None:
        """Raise if some row is unaccounted for."""
        if self.rows_read != self.rows_kept + self.rows_rejected:
            raise AssertionError(
                f"{self.source}: rows_read={self.rows_read} != rows_kept={self.rows_kept} + "
                f"rejected={self.rows_rejected}"
            )

    def summary(self) -> str:
        lines = [
            f"source: {self.source}",
            f"rows read: {self.rows_read:,}  kept: {self.rows_kept:,}  "
            f"rejected: {self.rows_rejected:,}  repaired: {self.rows_repaired:,}",
        ]
        if self.rejected:
            lines.append("rejected rows by reason:")
            lines += [f"  {k}: {v:,}" for k, v in sorted(self.rejected.items())]
        if self.repaired:
            lines.append("repaired rows by reason:")
            lines += [f"  {k}: {v:,}" for k, v in sorted(self.repaired.items())]
        if self.notes:
            lines.append("notes:")
            lines += [f"  {k}: {v}" for k, v in self.notes.items()]
        if self.examples:
            lines.append("examples:")
            for reason, msgs in sorted(self.examples.items()):
                for msg in msgs:
                    lines.append(f"  [{reason}] {msg}")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {
            "source": self.source,
            "rows_read": int(self.rows_read),
            "rows_kept": int(self.rows_kept),
            "rows_rejected": self.rows_rejected,
            "rows_repaired": self.rows_repaired,
            "rejected": {k: int(v) for k, v in sorted(self.rejected.items())},
            "repaired": {k: int(v) for k, v in sorted(self.repaired.items())},
            "notes": {k: _jsonable(v) for k, v in self.notes.items()},
            "examples": {k: list(v) for k, v in sorted(self.examples.items())},
        }

    def __str__(self) -> str:  # pragma: no cover - convenience
        return self.summary()


def _jsonable(v):
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating,)):
        return float(v)
    return v


@dataclasses.dataclass
class Dataset:
    """A canonical interaction log plus its schema.

    Attributes:
        name: dataset name ("synthetic", "movielens-100k", ...).
        interactions: canonical columns only (`schema.columns`), sorted by
            (user_id, timestamp), ties kept in input order; index 0..N-1.
        schema: roles of the columns.
        items: item_id, title and static attributes (one row per item).
        report: ingestion accounting.
        users: ground-truth per-user latent attributes (synthetic only).
        latent: ground-truth per-interaction latent variables (synthetic only),
            row-aligned with `interactions` (same index). Never part of the schema,
            so nothing in it reaches the model's features.
    """

    name: str
    interactions: pd.DataFrame
    schema: InteractionSchema
    items: pd.DataFrame
    report: IngestReport
    users: Optional[pd.DataFrame] = None
    latent: Optional[pd.DataFrame] = None

    @property
    def num_users(self) -> int:
        return int(self.interactions[USER].nunique())

    @property
    def num_items(self) -> int:
        return int(self.interactions[ITEM].nunique())

    def __len__(self) -> int:
        return len(self.interactions)

    def __repr__(self) -> str:
        return (f"Dataset(name={self.name!r}, interactions={len(self):,}, users={self.num_users:,}, "
                f"items={self.num_items:,}, schema={self.schema})")

    def summary(self) -> str:
        lens = self.interactions.groupby(USER, sort=False).size()
        parts = [
            f"dataset {self.name}: {len(self):,} interactions, {self.num_users:,} users, "
            f"{self.num_items:,} items",
            f"  per user: median {int(lens.median()) if len(lens) else 0}, "
            f"max {int(lens.max()) if len(lens) else 0}",
            f"  categorical: {list(self.schema.categorical)}  multi-label: "
            f"{list(self.schema.multi_label)}  numeric: {list(self.schema.numeric)}",
            f"  intents: {[(i.column, i.kind) for i in self.schema.intents]}  "
            f"timestamps: {self.schema.has_timestamps}  weight: {self.schema.has_weight}",
        ]
        return "\n".join(parts)

    def validate(self) -> None:
        """Raise AssertionError if the table breaks the canonical contract."""
        df = self.interactions
        cols = self.schema.columns
        assert list(df.columns) == cols, f"columns {list(df.columns)} != schema {cols}"
        assert df[TIMESTAMP].dtype == np.int64, f"timestamp dtype {df[TIMESTAMP].dtype}"
        for c in (USER, ITEM, *self.schema.categorical, *self.schema.multi_label):
            assert df[c].dtype == object, f"column {c} dtype {df[c].dtype}"
        for c in self.schema.numeric:
            assert df[c].dtype == np.float64, f"column {c} dtype {df[c].dtype}"
        if self.schema.has_weight:
            assert df[WEIGHT].dtype == np.float64
        assert (df.index == np.arange(len(df))).all(), "index must be 0..N-1"
        if len(df):
            u = df[USER].to_numpy()
            t = df[TIMESTAMP].to_numpy()
            same = u[1:] == u[:-1]
            assert (u[1:] >= u[:-1]).all(), "not sorted by user_id"
            assert (t[1:][same] >= t[:-1][same]).all(), "not sorted by timestamp within user"
        if self.latent is not None:
            assert len(self.latent) == len(df)
        self.report.check()


# --------------------------------------------------------------------------------------
# Helpers shared by the adapters.
# --------------------------------------------------------------------------------------
def canonical_multi_label(values: pd.Series, sep_in: str = MULTI_LABEL_SEP) -> pd.Series:
    """'B|A| |A' -> 'A|B': split, strip, drop empties, dedupe, sort. Vectorised over uniques."""
    values = values.fillna("").astype(str)
    codes, uniques = pd.factorize(values, sort=False)
    canon = []
    for v in uniques:
        toks = sorted({t.strip() for t in v.split(sep_in)} - {""})
        canon.append(MULTI_LABEL_SEP.join(toks))
    canon = np.asarray(canon, dtype=object)
    out = canon[codes] if len(codes) else np.asarray([], dtype=object)
    return pd.Series(out, index=values.index, dtype=object)


def finalize(
    name: str,
    frame: pd.DataFrame,
    schema: InteractionSchema,
    items: pd.DataFrame,
    report: IngestReport,
    *,
    users: Optional[pd.DataFrame] = None,
    latent: Optional[pd.DataFrame] = None,
    drop_duplicates: bool = True,
) -> Dataset:
    """Build a `Dataset` from parsed rows.

    `frame` holds the canonical columns plus optional provenance columns `_file`
    and `_line` (used in duplicate examples). Rows are given in input order;
    exact duplicate rows (all canonical columns equal) are dropped and counted,
    then rows are sorted by (user_id, timestamp) with ties in input order. If
    `latent` is given it must be row-aligned with `frame` and is reordered alike.
    """
    cols = schema.columns
    if drop_duplicates:
        frame, latent = dedupe_and_sort(frame, cols, report, latent=latent)
    else:
        frame, latent = dedupe_and_sort(frame, None, report, latent=latent)
    interactions = pd.DataFrame({c: frame[c] for c in cols})
    interactions[TIMESTAMP] = interactions[TIMESTAMP].astype(np.int64)
    for c in (USER, ITEM, *schema.categorical, *schema.multi_label):
        interactions[c] = interactions[c].astype(object)
    for c in schema.numeric:
        interactions[c] = interactions[c].astype(np.float64)
    if schema.has_weight:
        interactions[WEIGHT] = interactions[WEIGHT].astype(np.float64)

    report.rows_kept = len(interactions)
    if len(interactions) == 0:
        raise DatasetError(f"{report.source}: no valid rows\n{report.summary()}")
    if len(interactions):
        sizes = interactions.groupby(USER, sort=False).size()
        report.note("users", int(len(sizes)))
        report.note("items", int(interactions[ITEM].nunique()))
        report.note("users_with_single_interaction", int((sizes == 1).sum()))
        report.note("users_with_two_interactions", int((sizes == 2).sum()))
    report.check()
    items = items.reset_index(drop=True)
    return Dataset(name=name, interactions=interactions, schema=schema, items=items,
                   report=report, users=users, latent=latent)


def dedupe_and_sort(frame: pd.DataFrame, key_cols, report: IngestReport, *,
                    latent: Optional[pd.DataFrame] = None):
    """Drop exact duplicates over `key_cols` (None: keep all), counting them as
    "duplicate_row" with file:line examples; then stable-sort by (user_id, timestamp)."""
    frame = frame.reset_index(drop=True)
    if latent is not None:
        latent = latent.reset_index(drop=True)
    if key_cols is not None and len(frame):
        cols = list(key_cols)
        dup = frame.duplicated(subset=cols, keep="first").to_numpy()
        if dup.any():
            examples = []
            if "_line" in frame.columns:
                first_line = frame.groupby(cols, sort=False, dropna=False)["_line"].transform("first")
                for i in np.flatnonzero(dup)[: report.max_examples]:
                    row = frame.iloc[i]
                    examples.append(
                        f"{row.get('_file', report.source)}:{row['_line']}: duplicate of line "
                        f"{first_line.iloc[i]} (user {row[USER]!r}, item {row[ITEM]!r}, "
                        f"timestamp {row[TIMESTAMP]})"
                    )
            report.reject("duplicate_row", int(dup.sum()), examples)
            keep = ~dup
            frame = frame.loc[keep].reset_index(drop=True)
            if latent is not None:
                latent = latent.loc[keep].reset_index(drop=True)
    users, ts = frame[USER].to_numpy(), frame[TIMESTAMP].to_numpy()
    if _is_sorted(users, ts):
        return frame, latent
    order = _sort_order(users, ts)
    if not (order == np.arange(len(order))).all():
        frame = frame.iloc[order].reset_index(drop=True)
        if latent is not None:
            latent = latent.iloc[order].reset_index(drop=True)
    return frame, latent


def _is_sorted(users: np.ndarray, timestamps: np.ndarray) -> bool:
    if len(users) < 2:
        return True
    if not all(isinstance(u, str) for u in users[:1000]):
        return False
    try:
        u_next, u_prev = users[1:], users[:-1]
        same = u_next == u_prev
        if not (same | (u_next > u_prev)).all():
            return False
    except TypeError:
        return False
    ts = np.asarray(timestamps)
    return bool((ts[1:][same] >= ts[:-1][same]).all())


def _sort_order(users: np.ndarray, timestamps: np.ndarray) -> np.ndarray:
    """Stable order by (user_id as string, timestamp); ties keep input order."""
    if len(users) == 0:
        return np.arange(0)
    codes, uniq = pd.factorize(pd.Series(users, dtype=object), sort=False)
    uniq = np.asarray([str(u) for u in uniq], dtype=object)
    rank = np.empty(len(uniq), dtype=np.int64)
    rank[np.argsort(uniq, kind="stable")] = np.arange(len(uniq))
    return np.lexsort((np.arange(len(users)), timestamps, rank[codes]))
