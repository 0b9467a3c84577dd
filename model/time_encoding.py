"""Timestamp embeddings used as positional encoding (paper §3.3)."""

import math

import keras
from keras import layers, ops


@keras.saving.register_keras_serializable(package="intentrec")
class TimeEncoding(layers.Layer):
    """Encodes interaction times instead of index positions.

    Two causal quantities per position k, both on a log scale in hours so that
    minutes-apart binges and months-apart returns are equally resolvable:
    the time elapsed since the first interaction of the window, and the gap to
    the previous interaction. Each goes through a fixed bank of sinusoids and a
    learned projection to `d_model`. For timestamp-free data `time` holds the
    position index and this reduces to a (log-scaled) index encoding.

    Args:
        d_model: output width.
        num_frequencies: sinusoid frequencies per quantity.
        time_unit_hours: hours per unit of the `time` input (24 for days).

    Example:
    ```python
    enc = TimeEncoding(d_model=64)
    pe = enc(time_days, valid)  # [batch, seq] → [batch, seq, 64]
    ```
    """

    def __init__(self, d_model, num_frequencies=8, time_unit_hours=24.0, **kwargs):
        super().__init__(**kwargs)
        self.d_model = d_model
        self.num_frequencies = num_frequencies
        self.time_unit_hours = time_unit_hours
        # log1p(hours) spans ~[0, 12] for up to ~20 years; periods from 2 to ~50.
        self.frequencies = [math.pi / (2.0 ** (i / 2.0)) for i in range(num_frequencies)]
        self.proj = layers.Dense(d_model, name="proj", dtype=self.dtype_policy)

    def build(self, time_shape, valid_shape=None):
        self.proj.build(tuple(time_shape) + (4 * self.num_frequencies,))
        self.built = True

    def call(self, time, valid):
        """time: `[batch, seq]` float; valid: `[batch, seq]` bool → `[batch, seq, d_model]`."""
        time = ops.cast(time, "float32")
        prev = ops.concatenate([time[:, :1], time[:, :-1]], axis=1)
        prev_valid = ops.concatenate([valid[:, :1], valid[:, :-1]], axis=1)
        gap = ops.where(prev_valid, time - prev, 0.0)
        scale = self.time_unit_hours
        quantities = ops.stack(
            [ops.log1p(ops.relu(time) * scale), ops.log1p(ops.relu(gap) * scale)], axis=-1
        )  # [batch, seq, 2]
        freqs = ops.convert_to_tensor(self.frequencies, dtype="float32")
        angles = quantities[..., None] * freqs  # [batch, seq, 2, F]
        feats = ops.concatenate([ops.sin(angles), ops.cos(angles)], axis=-1)
        feats = ops.reshape(feats, (ops.shape(time)[0], ops.shape(time)[1], 4 * self.num_frequencies))
        out = self.proj(ops.cast(feats, self.compute_dtype))
        return out * ops.cast(valid[..., None], out.dtype)

    def compute_output_shape(self, time_shape, valid_shape=None):
        return tuple(time_shape) + (self.d_model,)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "d_model": self.d_model,
                "num_frequencies": self.num_frequencies,
                "time_unit_hours": self.time_unit_hours,
            }
        )
        return config
