"""TransAct's random time-window mask, made per-position (causal)."""

import keras
from keras import layers, ops

from model import masks


@keras.saving.register_keras_serializable(package="intentrec")
class RandomWindowMask(layers.Layer):
    """Causal attention mask that, in training, also hides each query's most recent past.

    TransAct (Pinterest, `transact.py`) draws r ~ U[0, W] once per training
    batch and hides every action that happened less than r before the request,
    always keeping the latest action; at inference nothing but padding is
    hidden. Here every position k is a request at time T_k: query k may attend
    to real keys i <= k, and in training only to those with T_k - T_i >= r or
    i = k (the latest action, kept as in the original). Without timestamps
    `time` holds position indices, so the window is a number of positions.

    Args:
        window: W, in the unit of `time` (days, or positions).
        seed: seed of the window sampler.
    """

    def __init__(self, window, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.window = window
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, time, valid, training=None):
        """time `[batch, seq]` float, valid `[batch, seq]` bool → bool `[batch, seq, seq]`."""
        causal = masks.causal_mask(valid)
        if not training:
            return causal
        r = keras.random.uniform((), 0.0, float(self.window), seed=self.seed_generator)
        time = ops.cast(time, "float32")
        delta = time[:, :, None] - time[:, None, :]  # T_q - T_k
        seq = ops.shape(time)[1]
        diagonal = ops.cast(ops.eye(seq), "bool")[None]
        keep = ops.logical_or(ops.greater_equal(delta, r), diagonal)
        return ops.logical_and(causal, keep)

    def compute_output_spec(self, time, valid, training=None):
        return keras.KerasTensor((time.shape[0], time.shape[1], time.shape[1]), dtype="bool")

    def get_config(self):
        config = super().get_config()
        config.update({"window": self.window, "seed": self.seed})
        return config
