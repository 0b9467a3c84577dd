"""Item head whose output weights are the input item embeddings (SASRec, BERT4Rec)."""

import keras
from keras import ops

from model.item_head import ItemHead


@keras.saving.register_keras_serializable(package="intentrec")
class TiedItemHead(ItemHead):
    """`ItemHead` scoring items with the model's own item embedding table.

    SASRec and BERT4Rec score item i by the dot product of the hidden state with
    i's *input* embedding (plus, here, a per-item bias). The kernel is the
    transposed embedding table `[d, item_vocab_size]` (extra rows, such as
    BERT4Rec's [MASK] token, are cut off), so the full / sampled losses and
    `model.evaluation` work unchanged. The embedding layer is owned (tracked,
    saved) by the model graph, not by this head.

    Args:
        embedding: the model's `keras.layers.Embedding` for items (width d).
        item_vocab_size: scored ids (incl. padding and OOV), `<= embedding.input_dim`.
    """

    def __init__(self, embedding, item_vocab_size, **kwargs):
        super().__init__(item_vocab_size, **kwargs)
        # Not tracked here: the graph owns the variable (no duplicate weights).
        object.__setattr__(self, "_tied_embedding", embedding)

    def build(self, hidden_shape):
        self.bias = self.add_weight(shape=(self.item_vocab_size,), initializer="zeros", name="bias")
        self._add_log_prior()
        self.built = True

    @property
    def kernel(self):
        table = self._tied_embedding.embeddings
        return ops.transpose(table[: self.item_vocab_size])
