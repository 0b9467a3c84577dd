"""Learned absolute position embeddings (SASRec, BERT4Rec)."""

import keras
from keras import layers, ops


@keras.saving.register_keras_serializable(package="intentrec")
class PositionEmbedding(layers.Layer):
    """Adds a learned embedding of the index in the (left-padded) window.

    As in the original SASRec / BERT4Rec code, the position is the index in the
    fixed-length array, so the latest interaction always sits at `max_len - 1`.

    Args:
        max_len: sequence length n.
        scale: factor on the input first (SASRec scales item embeddings by √d).
    """

    def __init__(self, max_len, scale=1.0, **kwargs):
        super().__init__(**kwargs)
        self.max_len = max_len
        self.scale = scale

    def build(self, input_shape):
        self.embeddings = self.add_weight(
            shape=(self.max_len, input_shape[-1]), initializer=keras.initializers.TruncatedNormal(stddev=0.02),
            name="embeddings",
        )
        self.built = True

    def call(self, x):
        """x `[batch, max_len, d]` → scale · x + P."""
        return x * self.scale + ops.cast(self.embeddings, x.dtype)[None]

    def get_config(self):
        config = super().get_config()
        config.update({"max_len": self.max_len, "scale": self.scale})
        return config
