"""Intent heads shared by the multi-task baselines (LSTM, GRU, Transformer, TransAct).

Their loss is IntentRec's own (`model.intent_loss`).
"""

from keras import layers


def intent_head_outputs(hidden, heads):
    """One FC head per intent on `hidden` `[batch, seq, d]` (functional API).

    Returns `{intent_logits_<name>, intent_<name>}` for every head: float32 logits
    and probabilities (softmax for single-label heads, sigmoid for multi-label).
    """
    outputs = {}
    for head in heads:
        name = head.name
        logits = layers.Dense(head.num_classes, name=f"intent_head_{name}")(hidden)
        logits = layers.Activation("linear", dtype="float32", name=f"intent_logits_{name}")(logits)
        activation = "softmax" if head.kind == "single" else "sigmoid"
        outputs[f"intent_logits_{name}"] = logits
        outputs[f"intent_{name}"] = layers.Activation(activation, dtype="float32", name=f"intent_{name}")(logits)
    return outputs
