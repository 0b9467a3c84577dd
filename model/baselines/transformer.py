"""Vanilla causal Transformer baseline with intent heads (paper §4.1.2 (1))."""

import keras
from keras import layers, ops

from model import masks
from model.baselines import multitask
from model.baselines.base import SequenceBaseline, build_item_head
from model.feature_constructor import InputFeatureConstructor
from model.inputs import sequence_inputs
from model.time_encoding import TimeEncoding
from model.transformer_encoder import TransformerEncoder


@keras.saving.register_keras_serializable(package="intentrec")
class TransformerRec(SequenceBaseline):
    """Item embeddings + sinusoidal position encoding → causal Transformer → item and intent heads.

    The paper's "Transformer + intent heads" baseline: item ids only (no
    metadata, no timestamps). Positions are the interaction index counted from
    the first real interaction of the window, encoded by IntentRec's
    `TimeEncoding` block fed with indices (its timestamp-free mode), i.e. a
    sinusoidal index encoding. Same width / depth / heads as IntentRec.
    """

    def build_graph(self, cfg):
        inputs = sequence_inputs(cfg.feature_spec, ["item"])
        embed = InputFeatureConstructor(cfg.item_vocab_size, cfg.d_model, name="input_features")
        position_encoding = TimeEncoding(cfg.d_model, time_unit_hours=1.0, name="position_encoding")
        encoder = TransformerEncoder(cfg.num_layers, cfg.d_model, cfg.num_heads,
                                     cfg.ffn_multiplier * cfg.d_model, cfg.dropout, name="encoder")
        valid = masks.padding_mask(inputs["item"])
        positions = ops.cumsum(ops.cast(valid, "float32"), axis=1) - 1.0
        positions = ops.where(valid, positions, 0.0)
        x = embed(inputs) * (cfg.d_model ** 0.5) + position_encoding(positions, valid)
        x = layers.Dropout(cfg.dropout, name="input_dropout")(x)
        hidden = encoder(x, masks.CausalMask(name="causal_mask")(valid))
        heads = list(cfg.intents)
        outputs = {"item_hidden": hidden, **multitask.intent_head_outputs(hidden, heads)}
        item_head = build_item_head(cfg)
        return inputs, outputs, heads, item_head
