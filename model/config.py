"""Model hyperparameters: a shared base for every model, and IntentRec's own."""

from __future__ import annotations

import dataclasses
from typing import Any, Literal, Mapping, Optional

from datasets.feature_spec import FeatureSpec, IntentHead

VARIANTS = ("v0", "v1", "v2", "v3")


@dataclasses.dataclass
class ModelConfig:
    """What every model of this repository shares: the data it reads, its size, its losses.

    `feature_spec` is the data's typed description (`datasets.FeatureSpec`); the
    properties below read it, so a model never re-derives `max_len`, the catalogue
    size or the intent heads. Subclasses add their architecture's fields.
    """

    # --- Data: the spec of the encoded inputs; its intent heads are the ones trained. ---
    feature_spec: FeatureSpec = dataclasses.field(default_factory=FeatureSpec)

    # --- Size (every model of the paper's tables has the same, so they compare at equal size). ---
    d_model: int = 64  # hidden width
    num_heads: int = 2  # attention heads
    ffn_multiplier: int = 4  # feed-forward width = ffn_multiplier * d_model
    dropout: float = 0.2  # small data (ml-100k) overfits quickly without it

    # --- Loss (paper Eq. 3–4). ---
    intent_loss_weight: float = 0.5  # λ; larger favours intent accuracy (paper §4.2)
    # Multi-label heads: "positive_only" is the paper's BCE over positive labels only;
    # "bce" adds the negatives, which keeps the head from predicting every label.
    multi_label_loss: Literal["positive_only", "bce"] = "bce"
    # "full": softmax over the whole catalogue; "chunked": the same loss and
    # gradients computed over item chunks, never building [rows, |I|] (what lets
    # full softmax scale past ~100k items, docs/performance.md); "sampled":
    # in-batch + uniform negatives with log-Q correction, for catalogues too
    # large for full softmax; "auto": full up to `full_softmax_max_items` items,
    # sampled above (resolved when the config is made, so the saved config says which).
    item_loss: Literal["auto", "full", "chunked", "sampled"] = "auto"
    # Above this catalogue size "auto" samples: the full softmax's cost grows with |I|
    # (a 58k-item e-commerce log trains ~50x slower per step on a CPU than with 1,024
    # sampled negatives).
    full_softmax_max_items: int = 20_000
    num_sampled_negatives: int = 1024  # negatives per batch for "sampled" (half in-batch, half uniform)
    item_chunk_size: int = 8192  # catalogue items per chunk for "chunked" (peak memory rows × chunk)
    # Rows (batch × positions) the item loss gathers, labelled rows first; 0 = all
    # rows. Skips the item-head cost of padding positions; a batch with more
    # labelled rows falls back to all rows, so the loss value never changes.
    max_label_positions: int = 0

    # --- Inference. ---
    top_k: int = 10

    def __post_init__(self):
        if isinstance(self.feature_spec, Mapping):
            self.feature_spec = FeatureSpec.from_dict(self.feature_spec)
        if self.d_model % self.num_heads:
            raise ValueError(f"d_model={self.d_model} is not divisible by num_heads={self.num_heads}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.item_loss == "auto":
            big = self.feature_spec.item_vocab_size > self.full_softmax_max_items
            self.item_loss = "sampled" if big else "full"

    # Typed reads of the spec.
    @property
    def max_len(self) -> int:
        return self.feature_spec.max_len

    @property
    def item_vocab_size(self) -> int:
        return self.feature_spec.item_vocab_size

    @property
    def intents(self) -> tuple[IntentHead, ...]:
        return self.feature_spec.intents

    @property
    def categorical(self) -> dict[str, int]:
        return dict(self.feature_spec.categorical)

    @property
    def multi_hot(self) -> dict[str, int]:
        return dict(self.feature_spec.multi_hot)

    @property
    def numeric(self) -> tuple[str, ...]:
        return self.feature_spec.numeric

    @property
    def has_timestamps(self) -> bool:
        return self.feature_spec.has_timestamps

    @classmethod
    def from_feature_spec(cls, spec: FeatureSpec, intents: Optional[list[str]] = None, **overrides):
        """Config for data `spec`; `intents` keeps only the named heads (None: all)."""
        return cls(feature_spec=spec.with_intents(intents), **overrides)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["feature_spec"] = self.feature_spec.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]):
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - fields)
        if unknown:
            raise ValueError(f"unknown {cls.__name__} fields {unknown}")
        return cls(**d)


@dataclasses.dataclass
class IntentRecConfig(ModelConfig):
    """IntentRec's hyperparameters (paper §3; the V0–V3 variants of Table 2)."""

    # v0 next-item only; v1 simple MTL (shared encoder); v2 hierarchical; v3 v2 + short-term.
    variant: Literal["v0", "v1", "v2", "v3"] = "v3"
    intent_layers: int = 2  # intent encoder depth (v1: the shared encoder)
    item_layers: int = 2  # item encoder depth (v2/v3)
    item_embedding_dim: Optional[int] = None  # None: d_model (required when tied)
    feature_embedding_dim: int = 16  # every metadata embedding
    d_short: int = 32  # S_k width; a summary, smaller than d_model
    short_term_window_days: float = 7.0  # H: the paper picks 1 week (Table 2)
    short_term_window_count: int = 10  # L: fallback window without timestamps
    d_proj: int = 32  # Z width: projection of every head's prediction

    # V2/V3: add the intent encoder's output E^intent to the item encoder's input, so the item
    # encoder continues the intent encoder's residual stream (as V1's shared encoder does)
    # instead of reading the intents only through Z. False is the paper's design (F ⊕ S ⊕ Z).
    item_reads_intent_hidden: bool = False

    # --- Backbone (docs/experiments.md, "The default IntentRec against SASRec": each measured alone). ---
    # A learned embedding of the position in the window (as SASRec): timestamps alone
    # cannot order the many interactions that share one (MovieLens rates in bursts).
    position_embedding: bool = True
    # The paper's timestamp encoding (log time since the window start and since the
    # previous interaction) added to every encoder input.
    time_encoding: bool = True
    # A learned per-head attention bias from the log-bucketed time gap between every two
    # interactions (TiSASRec, HSTU; `RelativeTimeBias`), in both encoders: how far apart two
    # events are, which the per-position timestamp encoding leaves attention to infer.
    relative_time_bias: bool = False
    # A per-head attention bias from the attributes of every two interactions (the metadata
    # embeddings, S_k, Z_k; `AttributeAttentionBias`, DIF-SR), in both encoders: attention then
    # compares attributes on their own, not only as mixed into the item's input vector.
    attribute_attention_bias: bool = False
    # How F_k ⊕ S_k (⊕ Z_k) becomes the encoder input: "dense_norm" is the paper's FC +
    # LayerNorm on the concatenation; "item_plus_dense" keeps the item embedding as is
    # (× √d, as SASRec) and adds an FC projection of the other features, so the item's
    # identity reaches the encoder unmixed.
    input_projection: Literal["dense_norm", "item_plus_dense"] = "item_plus_dense"
    # The same choice for the intent encoder of V2/V3 (None: as `input_projection`). Its
    # job is to predict intents from all the metadata, not to score items.
    intent_input_projection: Optional[Literal["dense_norm", "item_plus_dense"]] = None
    # Score items with the input item embeddings (+ a per-item bias), as SASRec: one
    # table learns from both sides, which rare items need. Needs item width = d_model.
    tie_item_embeddings: bool = True

    # --- Intent heads. ---
    # Add to each head whose label column is also an input a gated bonus for its current
    # value and its recency-weighted values in the window (`IntentHistoryPrior`): the next
    # intent is mostly the current one, which a head over thousands of classes cannot
    # learn class by class (docs/experiments.md, "Intent heads against a Markov reference").
    intent_history_prior: bool = True
    # With the prior: whether the intent item score reads the heads with it (True) or the
    # heads' own logits (False; the intents reported, Z and the copy gate keep the prior).
    # False ranks better on ml-100k, synthetic-small and ecommerce-small (docs/experiments.md,
    # "Intent heads against a Markov reference"); why is not established.
    intent_score_reads_prior: bool = False

    # --- Item score (model.item_scores). ---
    # Add Σ_h w_h · log p_h(attr_h(i)): each intent head's predicted log-probability of
    # the candidate item's own value (genre, movie/show, category...), weighted per head
    # and, in V2/V3, by the user's attention α. Intents then move the ranking directly.
    # None: on, except under the chunked loss (its custom gradient covers the item head only).
    intent_item_score: Optional[bool] = None
    # A copy score over the history items, gated by the hidden state and the intents, mixed
    # with the catalogue score (logaddexp): re-views and "continue watching" become
    # predictable. Where seen items are excluded it leaves the ranking of unseen items as it
    # is (the gate learns to stay shut). None: on, except under the chunked loss.
    repeat_score: Optional[bool] = None
    repeat_key_dim: int = 32  # width of the copy score's query/key projections

    # --- α, the attention over the intent heads (V2/V3). ---
    # > 0 adds this weight × a regulariser of α to the loss (docs/analysis.md, "How
    # personal α is"); 0 is the paper's loss. "entropy": the mean normalised entropy of
    # each position's α (measured: α collapses onto one head for every user);
    # "mutual_information": that minus the entropy of the batch's mean α, so each user's α
    # is peaked but users may differ.
    alpha_entropy_weight: float = 0.0
    alpha_regularizer: Literal["entropy", "mutual_information"] = "entropy"
    # Stop the item loss's gradient at the intent predictions (where they reach Z, the
    # intent item score and the copy gate): the intent tower then learns from the intent
    # loss alone and the item tower reads its predictions as given features.
    detach_intents: bool = False

    def __post_init__(self):
        super().__post_init__()
        chunked = self.item_loss == "chunked"
        for name in ("intent_item_score", "repeat_score"):
            if getattr(self, name) is None:
                setattr(self, name, not chunked)
        if (self.intent_item_score or self.repeat_score) and chunked:
            raise ValueError("intent_item_score / repeat_score need item_loss 'full' or 'sampled' (the chunked "
                             "loss's custom gradient covers the item head only)")
        if self.alpha_entropy_weight < 0:
            raise ValueError(f"alpha_entropy_weight must be >= 0, got {self.alpha_entropy_weight}")
        if self.alpha_regularizer not in ("entropy", "mutual_information"):
            raise ValueError(f"alpha_regularizer must be 'entropy' or 'mutual_information', got "
                             f"{self.alpha_regularizer!r}")
        if self.variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, got {self.variant!r}")
        if self.item_embedding_dim is None:
            self.item_embedding_dim = self.d_model
        if self.tie_item_embeddings and self.item_embedding_dim != self.d_model:
            raise ValueError(f"tie_item_embeddings needs item_embedding_dim == d_model, got "
                             f"{self.item_embedding_dim} != {self.d_model}")
        if self.intent_input_projection is None:
            self.intent_input_projection = self.input_projection
        for name in ("input_projection", "intent_input_projection"):
            value = getattr(self, name)
            if value not in ("dense_norm", "item_plus_dense"):
                raise ValueError(f"{name} must be 'dense_norm' or 'item_plus_dense', got {value!r}")
            if value == "item_plus_dense" and self.item_embedding_dim != self.d_model:
                raise ValueError(f"{name}='item_plus_dense' needs item_embedding_dim == d_model")

    @property
    def use_intents(self) -> bool:
        return self.variant != "v0" and bool(self.intents)

    @property
    def hierarchical(self) -> bool:
        return self.variant in ("v2", "v3") and self.use_intents

    @property
    def short_term(self) -> bool:
        return self.variant == "v3"
