"""Short-term interest S_k = Enc(F_pos, …, F_k) (paper Eq. 1)."""

import keras
from keras import layers

from model import masks
from model.transformer_encoder import TransformerEncoder


@keras.saving.register_keras_serializable(package="intentrec")
class ShortTermEncoder(layers.Layer):
    """Encodes, for every position k, only the interactions inside its window.

    The window of position k holds the real positions i <= k with
    `time[k] - time[i] <= window` (personalised: it spans many interactions for
    a binge and few for a sporadic user), or the last `window_count`
    interactions when the data has no timestamps. One masked self-attention
    block evaluates Enc over every position's window at once; a single block
    keeps S_k a function of F_pos..F_k only (a second block would let position
    i < k leak interactions from before pos into S_k).

    Args:
        d_short: width of S_k.
        num_heads: attention heads.
        window: H in days when `use_time`, else ignored.
        window_count: L, the window length without timestamps.
        use_time: whether `time` holds real times.
        dropout: dropout rate.

    Example:
    ```python
    enc = ShortTermEncoder(d_short=32, num_heads=2, window=7.0)
    s = enc(features, time, valid)  # [batch, seq, d_full] → [batch, seq, 32]
    ```
    """

    def __init__(self, d_short, num_heads, window=7.0, window_count=10, use_time=True, dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        self.d_short = d_short
        self.num_heads = num_heads
        self.window = window
        self.window_count = window_count
        self.use_time = use_time
        self.dropout = dropout

        # === Layers ===
        self.input_proj = layers.Dense(d_short, name="input_proj", dtype=self.dtype_policy)
        self.encoder = TransformerEncoder(
            num_layers=1, d_model=d_short, num_heads=num_heads, ffn_dim=2 * d_short,
            dropout=dropout, name="window_encoder", dtype=self.dtype_policy,
        )

    def build(self, features_shape, time_shape=None, valid_shape=None):
        self.input_proj.build(features_shape)
        self.encoder.build(tuple(features_shape[:-1]) + (self.d_short,))
        self.built = True

    def window_mask(self, time, valid):
        """bool `[batch, seq, seq]`: key i is in the short-term window of query k."""
        if self.use_time:
            return masks.time_window_mask(valid, time, self.window)
        return masks.count_window_mask(valid, self.window_count)

    def call(self, features, time, valid, training=None):
        """features `[batch, seq, d_full]`, time `[batch, seq]`, valid bool `[batch, seq]`
        → S `[batch, seq, d_short]`."""
        return self.encoder(self.input_proj(features), self.window_mask(time, valid), training=training)

    def compute_output_shape(self, features_shape, time_shape=None, valid_shape=None):
        return tuple(features_shape[:-1]) + (self.d_short,)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "d_short": self.d_short,
                "num_heads": self.num_heads,
                "window": self.window,
                "window_count": self.window_count,
                "use_time": self.use_time,
                "dropout": self.dropout,
            }
        )
        return config
