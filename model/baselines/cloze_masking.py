"""BERT4Rec's cloze input: random [MASK]s in training, a [MASK] appended at inference."""

import keras
from keras import layers, ops


@keras.saving.register_keras_serializable(package="intentrec")
class ClozeMasking(layers.Layer):
    """Turns item ids into BERT4Rec's input.

    Training (`training=True`): each real position is replaced by `mask_id`
    with probability `mask_prob`; a `last_item_mask_prob` share of sequences
    instead mask only their latest item (BERT4Rec §3.6: samples that mimic the
    inference input). Returns `(ids, masked)` with `masked` float `[batch, seq]`
    (1 where a loss target sits).

    Inference: the window is shifted left by one and `mask_id` is appended at
    the last position, so the output there predicts the next item (the oldest
    interaction of a full window drops out, as in BERT4Rec's own evaluation).
    `masked` is then all zero.

    Args:
        mask_id: id of [MASK] (the item vocabulary size).
        mask_prob: cloze probability.
        last_item_mask_prob: share of sequences masking only the last item.
        seed: seed of the mask sampler.
    """

    def __init__(self, mask_id, mask_prob=0.2, last_item_mask_prob=0.1, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.mask_id = mask_id
        self.mask_prob = mask_prob
        self.last_item_mask_prob = last_item_mask_prob
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, items, training=None):
        items = ops.cast(items, "int32")
        valid = ops.not_equal(items, 0)
        if training:
            shape = ops.shape(items)
            cloze = ops.less(keras.random.uniform(shape, seed=self.seed_generator), self.mask_prob)
            last_only = ops.less(
                keras.random.uniform((shape[0], 1), seed=self.seed_generator), self.last_item_mask_prob
            )
            is_last = ops.equal(ops.arange(shape[1]), shape[1] - 1)[None, :]
            masked = ops.logical_and(ops.where(last_only, is_last, cloze), valid)
            ids = ops.where(masked, self.mask_id, items)
            return ids, ops.cast(masked, "float32")
        ids = ops.concatenate([items[:, 1:], ops.full_like(items[:, :1], self.mask_id)], axis=1)
        return ids, ops.zeros_like(ops.cast(items, "float32"))

    def compute_output_spec(self, items, training=None):
        return (
            keras.KerasTensor(items.shape, dtype="int32"),
            keras.KerasTensor(items.shape, dtype="float32"),
        )

    def get_config(self):
        config = super().get_config()
        config.update({"mask_id": self.mask_id, "mask_prob": self.mask_prob,
                       "last_item_mask_prob": self.last_item_mask_prob, "seed": self.seed})
        return config
