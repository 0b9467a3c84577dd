"""Learned absolute position embeddings (SASRec, BERT4Rec)."""

import keras
from keras import layers, ops


@keras.saving.register_keras_serializable(package="intentrec")
class PositionEmbedding(layers.Layer):
    """Adds a learned embedding of the index in the (left-padded) window.

    As in the original SASRec / BERT4Rec code, the position is the index in the
    fixed-length array, so the latest interaction always sits at `max_len - 1`:
    the embedding says how many interactions ago, which timestamps cannot when
    many interactions share one (MovieLens rates in bursts). A window shorter than
    `max_len` (a batch cut to its longest history) reads the last rows of the table.

    Args:
        max_len: sequence length n (the table's rows).
        scale: factor on the input first (SASRec scales item embeddings by √d).

    Example:
    ```python
    pe = PositionEmbedding(max_len=50, scale=64 ** 0.5)
    x = pe(item_embeddings)  # [batch, seq <= 50, 64] → same shape
    ```
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
        """x `[batch, seq, d]`, seq <= max_len → scale · x + P[max_len - seq:]."""
        seq = x.shape[1] if x.shape[1] is not None else ops.shape(x)[1]
        table = ops.cast(self.embeddings, x.dtype)
        if isinstance(seq, int) and seq == self.max_len:
            return x * self.scale + table[None]
        return x * self.scale + table[self.max_len - seq:][None]

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"max_len": self.max_len, "scale": self.scale})
        return config
