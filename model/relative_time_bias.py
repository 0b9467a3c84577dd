"""A learned attention bias from the time gap between two interactions (TiSASRec, HSTU)."""

import keras
from keras import layers, ops


@keras.saving.register_keras_serializable(package="intentrec")
class RelativeTimeBias(layers.Layer):
    """Per-head attention logit bias b_h(bucket(|t_q − t_k|)) for every query/key pair.

    The timestamp encoding tells each position when it happened; this tells attention
    how far apart two interactions are, which is what decides whether they belong to
    the same session (Li et al., TiSASRec, WSDM 2020; Zhai et al., HSTU, ICML 2024).
    Gaps are bucketed as floor(log2(1 + quarter-hours)) (bucket 0: under 15 min, 1: 15–45
    min, 2: ~1 h, 6: ~1 day, 11: ~1 month, 15: ~1 year); the last bucket takes everything
    longer. Without timestamps `time` holds the position, and this is a relative-position
    bias. The table starts at zero, so a new model attends exactly
    as one without the bias until training moves it.

    Args:
        num_heads: attention heads of the encoder it feeds.
        num_buckets: log-scale gap buckets.
        time_unit_hours: hours per unit of the `time` input (24 for days).

    Example:
    ```python
    bias = RelativeTimeBias(num_heads=2)(time_days, valid)  # [batch, 2, seq, seq]
    hidden = TransformerEncoder(2, 64, 2, 256)(x, causal_mask, bias=bias)
    ```
    """

    def __init__(self, num_heads, num_buckets=20, time_unit_hours=24.0, **kwargs):
        super().__init__(**kwargs)
        self.num_heads = int(num_heads)
        self.num_buckets = int(num_buckets)
        self.time_unit_hours = float(time_unit_hours)

    def build(self, time_shape=None, valid_shape=None):
        self.table = self.add_weight(shape=(self.num_buckets, self.num_heads), initializer="zeros",
                                     name="bias_table")
        self.built = True

    def buckets(self, time):
        """time `[batch, seq]` → int32 `[batch, seq(q), seq(k)]` gap buckets."""
        time = ops.cast(time, "float32")
        quarter_hours = ops.abs(time[:, :, None] - time[:, None, :]) * (self.time_unit_hours * 4.0)
        bucket = ops.floor(ops.log2(1.0 + quarter_hours))
        return ops.cast(ops.clip(bucket, 0, self.num_buckets - 1), "int32")

    def call(self, time, valid):
        """time `[batch, seq]` float, valid bool `[batch, seq]` → `[batch, heads, seq, seq]`
        float32 (0 where either side is padding; the mask removes those pairs anyway)."""
        bias = ops.take(ops.convert_to_tensor(self.table), self.buckets(time), axis=0)  # [b, q, k, heads]
        pair = ops.logical_and(valid[:, :, None], valid[:, None, :])
        bias = ops.where(pair[..., None], ops.cast(bias, "float32"), 0.0)
        return ops.transpose(bias, (0, 3, 1, 2))

    def compute_output_shape(self, time_shape, valid_shape=None):
        batch, seq = time_shape[0], time_shape[1]
        return (batch, self.num_heads, seq, seq)

    def get_config(self):
        config = super().get_config()
        config.update({"num_heads": self.num_heads, "num_buckets": self.num_buckets,
                       "time_unit_hours": self.time_unit_hours})
        return config
