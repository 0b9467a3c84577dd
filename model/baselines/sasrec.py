"""SASRec (Kang & McAuley, ICDM 2018), trained with full softmax cross-entropy."""

import keras
from keras import layers, ops

from model import masks
from model.baselines.base import SequenceBaseline, build_item_head
from model.feature_constructor import InputFeatureConstructor
from model.inputs import sequence_inputs
from model.position_embedding import PositionEmbedding
from model.transformer_encoder import TransformerEncoder


@keras.saving.register_keras_serializable(package="intentrec")
class SASRec(SequenceBaseline):
    """Causal self-attention next-item model (next item only; item ids only).

    As the original: item embedding × √d plus a learned absolute position
    embedding, dropout, padding zeroed, a stack of causal self-attention blocks,
    and scores = hidden · item embedding (tied; `tie_item_embeddings`). Training
    uses the full-catalogue softmax cross-entropy of `ItemHead` (not the original
    BCE with one sampled negative: Klenitskiy & Vasilev, RecSys 2023, show that
    the loss alone changes full-ranking NDCG@10 by tens of percent). Blocks are
    IntentRec's pre-LN GELU `TransformerBlock`s (the original is pre-LN on the
    query with a ReLU FFN of width d). No intent heads (paper Table 1: N/A).
    """

    def build_graph(self, cfg):
        n = cfg.max_len
        inputs = sequence_inputs(cfg.feature_spec, ["item"])
        embed = InputFeatureConstructor(cfg.item_vocab_size, cfg.d_model, name="input_features")
        encoder = TransformerEncoder(cfg.num_layers, cfg.d_model, cfg.num_heads,
                                     cfg.ffn_multiplier * cfg.d_model, cfg.dropout, name="encoder")
        valid = masks.padding_mask(inputs["item"])
        x = PositionEmbedding(n, scale=cfg.d_model ** 0.5, name="position_embedding")(embed(inputs))
        x = layers.Dropout(cfg.dropout, name="input_dropout")(x)
        x = x * ops.cast(valid, x.dtype)[..., None]
        hidden = encoder(x, masks.CausalMask(name="causal_mask")(valid))
        item_head = build_item_head(cfg, embed.item_embedding if cfg.tie_item_embeddings else None)
        return inputs, {"item_hidden": hidden}, [], item_head
