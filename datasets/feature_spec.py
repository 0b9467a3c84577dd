"""The typed description of the model's inputs and intent heads, from adapter to served signature.

One `FeatureSpec` is built by `FeatureSpec.build` from an `InteractionSchema`, the
sequence length and the vocabulary sizes, wherever those sizes were counted: by the
numpy encoder (`datasets.preprocessor.Preprocessor.feature_spec`) or from the TFX
Transform output (`pipeline.preprocessing.feature_spec`). The model configs embed it
(`model.config.ModelConfig.feature_spec`), and the TFMA metrics and the serving
exporter read their intent heads and sequence length from it, so `max_len`, the item
vocabulary size and the heads never travel as loose dictionary keys.
"""

from __future__ import annotations

import dataclasses
from typing import Literal, Mapping

from datasets.schema import NUM_RESERVED_IDS, OOV_ID, PAD_ID, InteractionSchema

# n, the latest interactions per user that the model reads (paper §3.2). The one
# default: every CLI and config reads it from here.
DEFAULT_MAX_LEN = 50

HOUR_OF_DAY = "hour_of_day"
DAY_OF_WEEK = "day_of_week"


def derived_time_features(schema: InteractionSchema, derive: bool = True) -> tuple[str, ...]:
    """Categorical inputs derived from real timestamps (hour of day, day of week), unless
    the schema already has a column of that name."""
    if not (schema.has_timestamps and derive):
        return ()
    return tuple(c for c in (HOUR_OF_DAY, DAY_OF_WEEK) if c not in schema.categorical and c not in schema.multi_label)


@dataclasses.dataclass(frozen=True)
class IntentHead:
    """One next-intent head: predict `name`'s value at the next interaction."""

    name: str
    kind: Literal["single", "multi"]  # softmax over the values / sigmoid per value
    num_classes: int  # vocabulary size incl. padding and OOV
    # False when the loss weight is a function of this head's own label (a Taobao-style
    # weight by action type): weighting by the label makes the head a class-weighted
    # classifier that over-predicts the heavy classes, so it trains on the position
    # mask alone. The item loss keeps the weight.
    weighted: bool = True

    def __post_init__(self):
        if self.kind not in ("single", "multi"):
            raise ValueError(f"intent {self.name!r}: kind must be 'single' or 'multi', got {self.kind!r}")


@dataclasses.dataclass(frozen=True)
class FeatureSpec:
    """Model inputs `[batch, max_len]` (multi-hot: `[batch, max_len, size]`) and intent heads.

    Vocabulary sizes count the reserved ids: `pad_id` (0) and `oov_id` (1).
    Mappings are stored as tuples of pairs so that the spec is hashable and frozen;
    read them with `dict(spec.categorical)`.
    """

    max_len: int = DEFAULT_MAX_LEN
    item_vocab_size: int = NUM_RESERVED_IDS
    categorical: tuple[tuple[str, int], ...] = ()  # (name, vocab size), schema order then derived
    multi_hot: tuple[tuple[str, int], ...] = ()  # (name, number of values)
    numeric: tuple[str, ...] = ()  # z-scored numeric inputs
    intents: tuple[IntentHead, ...] = ()
    has_timestamps: bool = True  # False: `time` holds the position, windows count interactions
    pad_id: int = PAD_ID
    oov_id: int = OOV_ID
    num_reserved_ids: int = NUM_RESERVED_IDS

    def __post_init__(self):
        if self.max_len < 1:
            raise ValueError(f"max_len must be >= 1, got {self.max_len}")
        object.__setattr__(self, "categorical", tuple((str(k), int(v)) for k, v in dict(self.categorical).items()))
        object.__setattr__(self, "multi_hot", tuple((str(k), int(v)) for k, v in dict(self.multi_hot).items()))
        object.__setattr__(self, "numeric", tuple(self.numeric))
        object.__setattr__(self, "intents", tuple(
            h if isinstance(h, IntentHead) else IntentHead(**h) for h in self.intents))

    @classmethod
    def build(cls, schema: InteractionSchema, max_len: int, vocab_size: Mapping[str, int],
              derived_categorical: tuple[str, ...] = ()) -> "FeatureSpec":
        """The spec of `schema`'s columns.

        Args:
            schema: the interaction schema.
            max_len: n.
            vocab_size: name -> vocabulary size incl. reserved ids, for `"item"`, every
                categorical (incl. `derived_categorical`) and every multi-label column.
            derived_categorical: derived categorical inputs (`derived_time_features`).
        """
        categorical = (*schema.categorical, *derived_categorical)
        sizes = {name: int(vocab_size[name]) for name in ("item", *categorical, *schema.multi_label)}
        return cls(
            max_len=int(max_len),
            item_vocab_size=sizes["item"],
            categorical=tuple((c, sizes[c]) for c in categorical),
            multi_hot=tuple((c, sizes[c]) for c in schema.multi_label),
            numeric=tuple(schema.numeric),
            intents=tuple(IntentHead(i.column, i.kind, sizes[i.column], weighted=i.column != schema.weight_from)
                          for i in schema.intents),
            has_timestamps=bool(schema.has_timestamps),
        )

    @property
    def input_names(self) -> tuple[str, ...]:
        """Every model input key, in the model's order."""
        return ("item", "time", *dict(self.categorical), *dict(self.multi_hot), *self.numeric)

    def intent(self, name: str) -> IntentHead:
        for head in self.intents:
            if head.name == name:
                return head
        raise KeyError(f"no intent head {name!r}; the data has {[h.name for h in self.intents]}")

    def with_intents(self, names) -> "FeatureSpec":
        """The same spec keeping only the named intent heads (`None`: all)."""
        if names is None:
            return self
        names = list(names)
        missing = sorted(set(names) - {h.name for h in self.intents})
        if missing:
            raise ValueError(f"unknown intent heads {missing}; the data has {[h.name for h in self.intents]}")
        return dataclasses.replace(self, intents=tuple(h for h in self.intents if h.name in names))

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["categorical"] = dict(self.categorical)
        d["multi_hot"] = dict(self.multi_hot)
        d["numeric"] = list(self.numeric)
        d["intents"] = [dataclasses.asdict(h) for h in self.intents]
        return d

    @classmethod
    def from_dict(cls, d: Mapping) -> "FeatureSpec":
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - fields)
        if unknown:
            raise ValueError(f"unknown FeatureSpec fields {unknown}")
        return cls(**dict(d))
