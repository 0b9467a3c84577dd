"""The one interaction-log schema every adapter produces and every consumer reads.

An adapter (synthetic, MovieLens, generic CSV/Parquet, timestamp-free sequences)
returns a `Dataset`: a canonical interactions table plus an `InteractionSchema`
that says which columns are inputs, which are intent labels and which is the
loss weight. Nothing downstream knows dataset-specific column names.

Canonical interactions table (`pandas.DataFrame`, one row per interaction):

| column              | dtype    | meaning                                              |
|---------------------|----------|------------------------------------------------------|
| `user_id`           | str      | user key                                             |
| `item_id`           | str      | item key                                             |
| `timestamp`         | int64    | seconds since the epoch; for timestamp-free data the |
|                     |          | 0-based order of the interaction in its sequence     |
| each categorical    | str      | per-interaction metadata (action type, item type, …) |
| each multi-label    | str      | values joined by `MULTI_LABEL_SEP` (genres)          |
| each numeric        | float64  | raw numeric metadata (duration, …), normalised later |
| `weight` (optional) | float64  | loss weight of the interaction (duration weight)     |

Id conventions shared by the numpy encoder (`datasets.encoder`) and the TFX
Transform graph (`pipeline.preprocessing`):

- every vocabulary maps padding to `PAD_ID` = 0 and unknown values to `OOV_ID` = 1;
  known values get ids 2.. in descending frequency order;
- sequences are left-padded to a fixed length n, so the latest interaction of a
  user is always at index n - 1 (the position served at inference).
"""

from __future__ import annotations

import dataclasses
from typing import Literal, Optional

PAD_ID = 0
OOV_ID = 1
NUM_RESERVED_IDS = 2  # PAD_ID and OOV_ID.
MULTI_LABEL_SEP = "|"

USER = "user_id"
ITEM = "item_id"
TIMESTAMP = "timestamp"
WEIGHT = "weight"

SECONDS_PER_DAY = 86400.0

# Time-since-release buckets (days between an item's release and the interaction).
# Upper bounds, inclusive; anything older falls in the last bucket, "catalog".
RELEASE_BUCKET_BOUNDS_DAYS = (7.0, 30.0, 365.0)
RELEASE_BUCKET_NAMES = ("new_week", "new_month", "recent_year", "catalog")


@dataclasses.dataclass(frozen=True)
class IntentSpec:
    """One intent head: predict this column's value at the next interaction."""

    column: str
    # "single": softmax over the column's vocabulary; "multi": sigmoid per value
    # (multi-label columns only), paper §3.4.
    kind: Literal["single", "multi"] = "single"


@dataclasses.dataclass(frozen=True)
class InteractionSchema:
    """Which canonical columns play which role."""

    # Per-interaction categorical inputs (embedded), e.g. action_type, item_type.
    categorical: tuple[str, ...] = ()
    # Multi-valued categorical inputs (multi-hot embedded), e.g. genre.
    multi_label: tuple[str, ...] = ()
    # Numeric inputs, normalised (z-score on training data) before the model.
    numeric: tuple[str, ...] = ()
    # Intent heads; each names a column in `categorical` or `multi_label`.
    intents: tuple[IntentSpec, ...] = ()
    # Whether `timestamp` holds real times (seconds) or only the order.
    has_timestamps: bool = True
    # Whether the table has a `weight` column (duration weight for the loss).
    has_weight: bool = False
    # The categorical column the weight was computed from (generic `weight_by`), if any:
    # an intent head on that column trains unweighted (`IntentHead.weighted`).
    weight_from: Optional[str] = None

    def __post_init__(self):
        columns = set(self.categorical) | set(self.multi_label)
        if self.weight_from is not None and (self.weight_from not in self.categorical or not self.has_weight):
            raise ValueError(f"weight_from {self.weight_from!r} must be a categorical column of a schema with "
                             f"a weight")
        for intent in self.intents:
            if intent.column not in columns:
                raise ValueError(
                    f"intent column {intent.column!r} is neither a categorical nor "
                    f"a multi-label column of the schema"
                )
            if intent.kind == "multi" and intent.column not in self.multi_label:
                raise ValueError(
                    f"intent {intent.column!r} is kind 'multi' but not a multi-label column"
                )

    @property
    def columns(self) -> list[str]:
        """All canonical columns of the interactions table, in a stable order."""
        cols = [USER, ITEM, TIMESTAMP, *self.categorical, *self.multi_label, *self.numeric]
        if self.has_weight:
            cols.append(WEIGHT)
        return cols

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "InteractionSchema":
        d = dict(d)
        d["intents"] = tuple(IntentSpec(**i) for i in d.get("intents", ()))
        for key in ("categorical", "multi_label", "numeric"):
            d[key] = tuple(d.get(key, ()))
        return cls(**d)
