"""A next-intent head's prior from the intents already in the history (issue 12)."""

from __future__ import annotations

import math

import keras
from keras import layers, ops


@keras.saving.register_keras_serializable(package="intentrec")
class IntentHistoryPrior(layers.Layer):
    """Logit bonus for the intent values the user has just had: the current one and a
    recency-weighted frequency over the window, each scaled by a gate on the hidden state.

    The next intent is most often the current one (a session keeps its genre, its
    category, its action): a first-order Markov chain on the intent values beat the
    heads without this term by 11 points of genre accuracy on synthetic-small and by 56
    points of category accuracy on ecommerce-small (docs/experiments.md, "Intent heads
    against a Markov reference"). A softmax head over thousands of categories would
    have to learn that identity class by class from few examples each; this term gives
    it for every value at once, and the gates learn when it does not hold (a long gap, a
    new session: the time encoding is in the hidden state). It is the intent analogue of
    the item copy score (`model.item_scores.RepeatScore`).

    For position k, with one-hot (or multi-hot) values v_j of the positions j ≤ k:

        bonus_k = g_last(h_k) · v_k + g_hist(h_k) · Σ_j γ^(k-j) v_j / Σ_j γ^(k-j)

    g = softplus(Dense(h_k)) ≥ 0, γ = sigmoid(θ) learned. Padding contributes nothing.

    Args:
        num_classes: d_i, the head's classes (its input column's vocabulary).
        kind: "single" (values are int ids `[batch, seq]`) or "multi" (multi-hot
            `[batch, seq, d_i]`).
        decay: initial γ, the weight of a value one step further back.

    Call:
        hidden `[batch, seq, d_model]`, values (see `kind`), valid bool `[batch, seq]`
        → bonus `[batch, seq, d_i]` float32, added to the head's logits.

    Example:
        prior = IntentHistoryPrior(num_classes=14, kind="multi")
        logits = head(hidden) + prior(hidden, genre_multi_hot, valid)
    """

    def __init__(self, num_classes, kind="single", decay=0.7, **kwargs):
        super().__init__(**kwargs)
        if kind not in ("single", "multi"):
            raise ValueError(f"kind must be 'single' or 'multi', got {kind!r}")
        if not 0.0 < decay < 1.0:
            raise ValueError(f"decay must be in (0, 1), got {decay!r}")
        self.num_classes = int(num_classes)
        self.kind = kind
        self.decay = float(decay)
        # softplus(0.5413) = 1: both terms start at weight 1 (from 0, Adam would need
        # thousands of steps to reach the weights the data wants).
        self.gate = layers.Dense(2, bias_initializer=keras.initializers.Constant(0.5413), dtype="float32",
                                 name="gate")

    def build(self, hidden_shape, values_shape=None, valid_shape=None):
        self.gate.build(hidden_shape)
        self.decay_logit = self.add_weight(
            shape=(), initializer=keras.initializers.Constant(math.log(self.decay / (1.0 - self.decay))),
            dtype="float32", name="decay_logit")

    def call(self, hidden, values, valid):
        mask = ops.cast(valid, "float32")[..., None]  # [B, L, 1]
        if self.kind == "single":
            current = ops.one_hot(ops.cast(values, "int32"), self.num_classes, dtype="float32") * mask
        else:
            current = ops.cast(values, "float32") * mask
        seq_len = ops.shape(current)[1]
        pos = ops.cast(ops.arange(seq_len), "float32")
        back = pos[:, None] - pos[None, :]  # [L_query, L_key]: steps back
        log_decay = ops.log_sigmoid(self.decay_logit)
        weights = ops.where(back >= 0, ops.exp(ops.maximum(back, 0.0) * log_decay), 0.0)  # [L, L]
        total = ops.einsum("qk,bkc->bqc", weights, current)
        norm = ops.einsum("qk,bkc->bqc", weights, mask)
        history = total / ops.maximum(norm, 1e-6)
        gates = ops.softplus(self.gate(ops.cast(hidden, "float32")))  # [B, L, 2]
        return gates[..., :1] * current + gates[..., 1:] * history

    def compute_output_shape(self, hidden_shape, values_shape=None, valid_shape=None):
        return (*hidden_shape[:-1], self.num_classes)

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes, "kind": self.kind, "decay": self.decay}
