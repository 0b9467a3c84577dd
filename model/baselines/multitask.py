"""Intent heads and losses shared by the multi-task baselines (LSTM, GRU, Transformer, TransAct).

The math is IntentRec's (paper §3.3–3.4, `IntentRec.compute_loss`): softmax
cross-entropy for single-label heads, BCE (or the paper's positive-only BCE)
for multi-label heads, each a weighted mean over labelled positions. Kept as
plain functions so that `model.IntentRec` can use them too.
"""

from keras import layers, ops
import keras

from datasets.schema import NUM_RESERVED_IDS


def intent_head_outputs(hidden, heads):
    """One FC head per intent on `hidden` `[batch, seq, d]` (functional API).

    Returns `{intent_logits_<name>, intent_<name>}` for every head: float32 logits
    and probabilities (softmax for single-label heads, sigmoid for multi-label).
    """
    outputs = {}
    for head in heads:
        name = head["name"]
        logits = layers.Dense(head["num_classes"], name=f"intent_head_{name}")(hidden)
        logits = layers.Activation("linear", dtype="float32", name=f"intent_logits_{name}")(logits)
        activation = "softmax" if head["kind"] == "single" else "sigmoid"
        outputs[f"intent_logits_{name}"] = logits
        outputs[f"intent_{name}"] = layers.Activation(activation, dtype="float32", name=f"intent_{name}")(logits)
    return outputs


def multi_label_loss(labels, logits, mode="bce"):
    """labels, logits `[batch, seq, G]` → `[batch, seq]`.

    `"positive_only"`: the paper's BCE over the positive labels only, averaged
    over them; `"bce"`: full BCE over the non-reserved label slots.
    """
    if mode == "positive_only":
        positives = -labels * ops.log_sigmoid(logits)
        return ops.sum(positives, axis=-1) / ops.maximum(ops.sum(labels, axis=-1), 1.0)
    per_label = -(labels * ops.log_sigmoid(logits) + (1.0 - labels) * ops.log_sigmoid(-logits))
    return ops.mean(per_label[..., NUM_RESERVED_IDS:], axis=-1)


def intent_loss(head, labels, logits, weights, multi_label_mode="bce"):
    """Weighted mean next-intent loss of one head over positions (scalar).

    labels: int `[batch, seq]` (single) or multi-hot `[batch, seq, G]` (multi);
    logits: `[batch, seq, d_i]`; weights: `[batch, seq]` (0 = no target).
    """
    logits = ops.cast(logits, "float32")
    weights = ops.cast(weights, "float32")
    if head["kind"] == "single":
        per_position = keras.losses.sparse_categorical_crossentropy(
            ops.cast(labels, "int32"), logits, from_logits=True
        )
    else:
        per_position = multi_label_loss(ops.cast(labels, "float32"), logits, multi_label_mode)
    return ops.sum(per_position * weights) / ops.maximum(ops.sum(weights), 1e-6)
