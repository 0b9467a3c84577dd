"""Hyperparameters shared by the baseline sequence recommenders (`model.baselines`)."""

from __future__ import annotations

import dataclasses
from typing import Literal, Optional

from model.config import data_fields


@dataclasses.dataclass
class BaselineConfig:
    """One config class for every baseline; each model reads the fields it uses.

    The data-derived fields mirror `IntentRecConfig` so that one feature spec
    configures every model (`BaselineConfig.from_feature_spec`). Width, depth,
    heads and dropout default to IntentRec's, so that Table 1 compares models of
    the same size.
    """

    # --- Data-derived: copy from `EncodedData.feature_spec`. ---
    item_vocab_size: int = 0  # incl. padding (0) and OOV (1)
    max_len: int = 50
    categorical: dict = dataclasses.field(default_factory=dict)  # {name: vocab_size}
    multi_hot: dict = dataclasses.field(default_factory=dict)
    numeric: tuple = ()
    intents: tuple = ()  # ({"name", "kind", "num_classes"}, ...)
    has_timestamps: bool = True

    # --- Shared architecture. ---
    d_model: int = 64  # hidden width (item embedding width for the item-only models)
    num_heads: int = 2
    num_layers: int = 2  # Transformer blocks (SASRec, BERT4Rec, Transformer, TransAct)
    rnn_layers: int = 1  # stacked recurrent layers (LSTM, GRU; GRU4Rec uses one)
    ffn_multiplier: int = 4
    dropout: float = 0.2

    # --- Loss (as IntentRec, paper Eq. 3–4). ---
    intent_loss_weight: float = 0.5  # λ for the multi-task baselines
    multi_label_loss: Literal["positive_only", "bce"] = "bce"
    item_loss: Literal["full", "chunked", "sampled"] = "full"  # as IntentRecConfig.item_loss
    num_sampled_negatives: int = 1024
    item_chunk_size: int = 8192
    max_label_positions: int = 0  # as IntentRecConfig: 0 = the item loss reads all rows

    # --- SASRec / BERT4Rec. ---
    tie_item_embeddings: bool = True  # output layer = input item embeddings (both originals)

    # --- BERT4Rec. ---
    mask_prob: float = 0.2  # cloze masking probability (BERT4Rec uses 0.2 on ML-1M)
    last_item_mask_prob: float = 0.1  # share of sequences that mask only the last item

    # --- TransAct. ---
    action_feature: Optional[str] = "action_type"  # categorical input fused with the item; None: item only
    action_embedding_dim: int = 16  # item embedding gets d_model - this
    latest_k: int = 10  # last-k transformer outputs concatenated to the max-pool (original: 10)
    time_window_days: float = 1.0 / 24.0  # random training mask window (original: 1 hour)
    time_window_positions: int = 5  # the same, in positions, without timestamps

    top_k: int = 10

    def __post_init__(self):
        self.numeric = tuple(self.numeric)
        self.intents = tuple(dict(i) for i in self.intents)
        for intent in self.intents:
            if intent.get("kind") not in ("single", "multi"):
                raise ValueError(f"intent {intent.get('name')!r}: kind must be 'single' or 'multi'")
        if not 0.0 < self.mask_prob < 1.0:
            raise ValueError(f"mask_prob must be in (0, 1), got {self.mask_prob}")

    @classmethod
    def from_feature_spec(cls, spec: dict, intents: list[str] | None = None, **overrides) -> "BaselineConfig":
        """Config from a data feature spec; `intents` keeps only the named heads."""
        return cls(**data_fields(spec, intents), **overrides)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)
