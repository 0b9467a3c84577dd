"""Hyperparameters of the baseline sequence recommenders (`model.baselines`)."""

from __future__ import annotations

import dataclasses
from typing import Optional

from model.config import ModelConfig


@dataclasses.dataclass
class BaselineConfig(ModelConfig):
    """One config class for every baseline; each model reads the fields it uses.

    The data, size and loss fields are `ModelConfig`'s, shared with IntentRec, so
    that one feature spec configures every model and Table 1 compares models of
    the same size.
    """

    num_layers: int = 2  # Transformer blocks (SASRec, BERT4Rec, Transformer, TransAct)
    rnn_layers: int = 1  # stacked recurrent layers (LSTM, GRU; GRU4Rec uses one)

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

    def __post_init__(self):
        super().__post_init__()
        if not 0.0 < self.mask_prob < 1.0:
            raise ValueError(f"mask_prob must be in (0, 1), got {self.mask_prob}")
