"""All IntentRec hyperparameters in one place."""

from __future__ import annotations

import dataclasses
from typing import Literal

VARIANTS = ("v0", "v1", "v2", "v3")


def data_fields(spec: dict, intents: list[str] | None = None) -> dict:
    """The data-derived config fields from an `EncodedData.feature_spec` (shared by
    `IntentRecConfig` and the baselines' config); `intents` keeps only the named heads."""
    heads = [i for i in spec.get("intents", ()) if intents is None or i["name"] in intents]
    if intents is not None:
        missing = set(intents) - {h["name"] for h in heads}
        if missing:
            raise ValueError(f"unknown intent heads {sorted(missing)}; the data has "
                             f"{[i['name'] for i in spec.get('intents', ())]}")
    return dict(
        item_vocab_size=spec["item_vocab_size"],
        categorical=dict(spec.get("categorical", {})),
        multi_hot=dict(spec.get("multi_hot", {})),
        numeric=tuple(spec.get("numeric", ())),
        intents=tuple(heads),
        has_timestamps=spec.get("has_timestamps", True),
    )


@dataclasses.dataclass
class IntentRecConfig:
    # --- Data-derived: copy from `EncodedData.feature_spec` (see `from_feature_spec`). ---
    item_vocab_size: int = 0  # catalogue size incl. padding (0) and OOV (1)
    max_len: int = 50  # n: the latest n interactions per user (paper §3.2)
    categorical: dict = dataclasses.field(default_factory=dict)  # {name: vocab_size}
    multi_hot: dict = dataclasses.field(default_factory=dict)  # {name: num_values}
    numeric: tuple = ()  # names of z-scored numeric inputs
    # Intent heads: ({"name", "kind": "single"|"multi", "num_classes"}, ...). A subset
    # of the data's intents gives the Table 3 ablations.
    intents: tuple = ()
    has_timestamps: bool = True  # False: time = position index, count-based window

    # --- Architecture (paper §3, Table 2 variants). ---
    # v0 next-item only; v1 simple MTL (shared encoder); v2 hierarchical; v3 v2 + short-term.
    variant: Literal["v0", "v1", "v2", "v3"] = "v3"
    d_model: int = 64  # Transformer width
    num_heads: int = 2
    intent_layers: int = 2  # intent encoder depth (v1: the shared encoder)
    item_layers: int = 2  # item encoder depth (v2/v3)
    ffn_multiplier: int = 4  # feed-forward width = ffn_multiplier * d_model
    dropout: float = 0.2  # small data (ml-100k) overfits quickly without it
    item_embedding_dim: int = 64
    feature_embedding_dim: int = 16  # every metadata embedding
    d_short: int = 32  # S_k width; a summary, smaller than d_model
    short_term_window_days: float = 7.0  # H: the paper picks 1 week (Table 2)
    short_term_window_count: int = 10  # L: fallback window without timestamps
    d_proj: int = 32  # Z width: projection of every head's prediction

    # --- Loss (paper Eq. 3–4). ---
    intent_loss_weight: float = 0.5  # λ; larger favours intent accuracy (paper §4.2)
    # Multi-label heads: "positive_only" is the paper's BCE over positive labels only;
    # "bce" adds the negatives, which keeps the head from predicting every label.
    multi_label_loss: Literal["positive_only", "bce"] = "bce"
    # "full": softmax over the whole catalogue; "chunked": the same loss and
    # gradients computed over item chunks, never building [rows, |I|] (what lets
    # full softmax scale past ~100k items, docs/performance.md); "sampled":
    # in-batch + uniform negatives with log-Q correction, for catalogues too
    # large for full softmax.
    item_loss: Literal["full", "chunked", "sampled"] = "full"
    num_sampled_negatives: int = 1024  # negatives per batch for "sampled" (half in-batch, half uniform)
    item_chunk_size: int = 8192  # catalogue items per chunk for "chunked" (peak memory rows × chunk)
    # Rows (batch × positions) the item loss gathers, labelled rows first; 0 = all
    # rows. Skips the item-head cost of padding positions; a batch with more
    # labelled rows falls back to all rows, so the loss value never changes.
    max_label_positions: int = 0

    # --- Inference. ---
    top_k: int = 10

    def __post_init__(self):
        if self.variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, got {self.variant!r}")
        self.numeric = tuple(self.numeric)
        self.intents = tuple(dict(i) for i in self.intents)
        for intent in self.intents:
            if intent.get("kind") not in ("single", "multi"):
                raise ValueError(f"intent {intent.get('name')!r}: kind must be 'single' or 'multi'")

    @property
    def use_intents(self) -> bool:
        return self.variant != "v0" and bool(self.intents)

    @property
    def hierarchical(self) -> bool:
        return self.variant in ("v2", "v3") and self.use_intents

    @property
    def short_term(self) -> bool:
        return self.variant == "v3"

    @classmethod
    def from_feature_spec(cls, spec: dict, intents: list[str] | None = None, **overrides) -> "IntentRecConfig":
        """Config from a data feature spec; `intents` keeps only the named heads."""
        return cls(**data_fields(spec, intents), **overrides)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)
