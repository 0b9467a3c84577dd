"""BERT4Rec (Sun et al., CIKM 2019): bidirectional Transformer trained by cloze."""

import keras
from keras import layers, ops

from model import masks
from model.baselines.base import SequenceBaseline, build_item_head
from model.baselines.cloze_masking import ClozeMasking
from model.feature_constructor import InputFeatureConstructor
from model.inputs import sequence_inputs
from model.position_embedding import PositionEmbedding
from model.transformer_encoder import TransformerEncoder


@keras.saving.register_keras_serializable(package="intentrec")
class BERT4Rec(SequenceBaseline):
    """Bidirectional masked-item model (next item only; item ids only).

    How it fits the next-step training contract and `fit_and_evaluate`:

    * The item vocabulary gets one extra id, [MASK] = `item_vocab_size` (input
      embedding only; it is never scored).
    * `call(training=True)`: `ClozeMasking` replaces random real positions
      (probability `mask_prob`; or only the last item for a
      `last_item_mask_prob` share of sequences) by [MASK]; the output
      `cloze_mask` marks them. `item_targets` then trains the item head to
      recover the *original* item at masked positions (from `x["item"]`,
      ignoring the next-step `y["item"]`), weighted by that interaction's own
      duration weight (`y["weight"]` shifted right by one; 1 for the first
      item of the window, whose weight the window does not carry).
    * `call(training=False)`: the window is shifted left by one and [MASK]
      appended, so `item_hidden[:, -1]` is the prediction of the next item:
      exactly the "score the last position" protocol of `model.evaluation` and
      `recommend`. The oldest interaction of a full window is dropped, as in
      BERT4Rec's own test input.
    * Attention is bidirectional over real positions (padding is never a key),
      so outputs at position k do depend on later positions: the model is *not*
      causal, and never needs to be, since it only predicts at [MASK].

    The last training target of each window (`y["item"][:, -1]`) is not an input
    and so is never a cloze target: one target per window is lost relative to
    the causal models.

    Architecture as the original: item + learned position embeddings,
    LayerNorm, dropout, Transformer blocks (IntentRec's pre-LN GELU blocks), a
    GELU dense + LayerNorm transform, scores tied to the item embeddings plus a
    per-item bias. No intent heads (paper Table 1: N/A).
    """

    def build_graph(self, cfg):
        n = cfg.max_len
        inputs = sequence_inputs(cfg.feature_spec, ["item"])
        mask_id = cfg.item_vocab_size
        cloze = ClozeMasking(mask_id, cfg.mask_prob, cfg.last_item_mask_prob, name="cloze_masking")
        embed = InputFeatureConstructor(cfg.item_vocab_size + 1, cfg.d_model, name="input_features")
        encoder = TransformerEncoder(cfg.num_layers, cfg.d_model, cfg.num_heads,
                                     cfg.ffn_multiplier * cfg.d_model, cfg.dropout, name="encoder")
        ids, cloze_mask = cloze(inputs["item"])
        valid = masks.padding_mask(ids)
        x = PositionEmbedding(n, name="position_embedding")(embed({"item": ids}))
        x = layers.LayerNormalization(epsilon=1e-6, name="embedding_norm")(x)
        x = layers.Dropout(cfg.dropout, name="input_dropout")(x)
        # Every query attends to every real key (and itself): [batch, n, n].
        bidirectional = masks.BidirectionalMask(name="bidirectional_mask")(valid)
        hidden = encoder(x, bidirectional)
        hidden = layers.Dense(cfg.d_model, activation="gelu", name="output_transform")(hidden)
        hidden = layers.LayerNormalization(epsilon=1e-6, name="output_norm")(hidden)
        item_head = build_item_head(cfg, embed.item_embedding if cfg.tie_item_embeddings else None)
        return inputs, {"item_hidden": hidden, "cloze_mask": cloze_mask}, [], item_head

    def item_targets(self, x, y, y_pred):
        """Cloze targets: the original item at each masked position, with its own weight."""
        items = ops.cast(x["item"], "int32")
        valid = ops.cast(ops.not_equal(items, 0), "float32")
        previous = ops.cast(y["weight"], "float32")
        own_weight = ops.concatenate([ops.zeros_like(previous[:, :1]), previous[:, :-1]], axis=1)
        own_weight = ops.where(own_weight > 0, own_weight, valid)  # first item of the window: 1
        return items, ops.cast(y_pred["cloze_mask"], "float32") * own_weight * valid
