"""Next-intent losses (paper §3.4), shared by `model.IntentRec` and the multi-task baselines.

Softmax cross-entropy for single-label heads, BCE (or the paper's positive-only BCE)
for multi-label heads, each a weighted mean over labelled positions; and the entropy of
the head weights α that IntentRec's optional α regulariser is built from.
"""

import math

import keras
from keras import ops

from datasets.schema import NUM_RESERVED_IDS


def multi_label_loss(labels, logits, mode="bce"):
    """labels, logits `[batch, seq, G]` → `[batch, seq]`.

    `"positive_only"`: the paper's BCE over the positive labels only, averaged
    over them; `"bce"`: full BCE over the non-reserved label slots.
    """
    if mode == "positive_only":
        # Paper §3.4: BCE over the positive labels only, averaged over them.
        positives = -labels * ops.log_sigmoid(logits)
        return ops.sum(positives, axis=-1) / ops.maximum(ops.sum(labels, axis=-1), 1.0)
    # Reserved slots (padding, OOV) are never labels, so they stay out of the mean.
    per_label = -(labels * ops.log_sigmoid(logits) + (1.0 - labels) * ops.log_sigmoid(-logits))
    return ops.mean(per_label[..., NUM_RESERVED_IDS:], axis=-1)


def intent_loss(head, labels, logits, weights, multi_label_mode="bce"):
    """Weighted mean next-intent loss of one head over positions (scalar).

    labels: int `[batch, seq]` (single) or multi-hot `[batch, seq, G]` (multi);
    logits: `[batch, seq, d_i]`; weights: `[batch, seq]` (0 = no target). A head with
    `weighted=False` (its label sets the weight) counts every target position once.
    """
    logits = ops.cast(logits, "float32")
    weights = ops.cast(weights, "float32")
    if not head.weighted:
        weights = ops.cast(weights > 0, "float32")
    if head.kind == "single":
        per_position = keras.losses.sparse_categorical_crossentropy(
            ops.cast(labels, "int32"), logits, from_logits=True
        )
    else:
        per_position = multi_label_loss(ops.cast(labels, "float32"), logits, multi_label_mode)
    return ops.sum(per_position * weights) / ops.maximum(ops.sum(weights), 1e-6)


def attention_entropy(alpha, weights, pooled=False):
    """Mean normalised entropy of the intent-head weights α `[batch, seq, M]` over the
    positions with a target (`weights` `[batch, seq]` > 0): 1 = uniform over the M heads,
    0 = all weight on one head (scalar). `pooled`: the entropy of those positions' mean α."""
    alpha = ops.cast(alpha, "float32")
    mask = ops.cast(ops.cast(weights, "float32") > 0, "float32")
    norm = math.log(max(alpha.shape[-1], 2))
    if pooled:
        mean = ops.sum(alpha * mask[..., None], axis=(0, 1)) / ops.maximum(ops.sum(mask), 1.0)
        return -ops.sum(mean * ops.log(ops.maximum(mean, 1e-12))) / norm
    entropy = -ops.sum(alpha * ops.log(ops.maximum(alpha, 1e-12)), axis=-1) / norm
    return ops.sum(entropy * mask) / ops.maximum(ops.sum(mask), 1.0)
