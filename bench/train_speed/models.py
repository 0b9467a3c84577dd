"""What a case trains: random numpy batches shaped like encoded ones, the case's model
(IntentRec V3 or SASRec under its dtype policy and item loss), and the analytic
FLOP and item-head activation counts of a training step (package docstring)."""

from __future__ import annotations

import math

import keras
import numpy as np
from keras import ops

from bench.train_speed.cases import MODE_CONFIG, Case, feature_spec
from model import IntentRec, IntentRecConfig
from model.intent_aggregation import IntentAggregation
from model.transformer_encoder import TransformerBlock


# "intentrec" is today's default V3; "intentrec_paper" the default before issue 12 (the
# paper's FC + LayerNorm input, timestamps only, an untied head, no intent/copy item
# scores, no intent history prior); "intentrec_no_prior" today's default without the
# intent history prior; so they can be timed side by side.
INTENTREC_MODELS = {
    "intentrec": {},
    "intentrec_paper": {"position_embedding": False, "tie_item_embeddings": False, "input_projection": "dense_norm",
                        "intent_item_score": False, "repeat_score": False, "intent_history_prior": False},
    "intentrec_no_prior": {"intent_history_prior": False},
}


def synthetic_batches(spec: dict, n: int, num: int, seed: int = 0, lengths: np.ndarray | None = None):
    """`num` left-padded sequences `(x, y)` with lengths uniform in [2, n]
    (about half the positions labelled, like MovieLens-1M at n = 200), or `lengths`."""
    rng = np.random.default_rng(seed)
    if lengths is None:
        lengths = rng.integers(2, n + 1, num)
    valid = np.arange(n)[None, :] >= (n - lengths)[:, None]

    def ids(size):
        return np.where(valid, rng.integers(2, size, valid.shape), 0).astype("int32")

    x = {"item": ids(spec.item_vocab_size)}
    gaps = rng.exponential(0.5, valid.shape)
    time_ = np.cumsum(np.where(valid, gaps, 0.0), axis=1)
    first = time_[np.arange(num), n - lengths]
    x["time"] = np.where(valid, time_ - first[:, None], 0.0).astype("float32")
    for name, size in spec.categorical:
        x[name] = ids(size)
    for name, size in spec.multi_hot:
        x[name] = ((rng.random(valid.shape + (size,)) < 0.15) & valid[..., None]).astype("float32")
        x[name][..., :2] = 0.0
    for name in spec.numeric:
        x[name] = np.where(valid, rng.normal(size=valid.shape), 0.0).astype("float32")
    y = {"item": np.roll(x["item"], -1, axis=1)}
    for head in spec.intents:
        y[head.name] = np.roll(x[head.name], -1, axis=1)
    weight = (valid & np.roll(valid, -1, axis=1)).astype("float32")
    weight[:, -1] = 0.0
    y["weight"] = weight
    return x, y


def build(case: Case, label_budget: float):
    """The model of `case` (built under its dtype policy) and its label budget."""
    item_loss, restrict = MODE_CONFIG[case.mode][:2]
    budget = math.ceil(label_budget * case.batch * case.n) if restrict else 0
    spec = feature_spec(case.items, case.n)
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(case.precision)
    try:
        if case.model in INTENTREC_MODELS:
            config = IntentRecConfig.from_feature_spec(
                spec, variant="v3", item_loss=item_loss, max_label_positions=budget,
                **INTENTREC_MODELS[case.model],
            )
            model = IntentRec(config)
        elif case.model == "sasrec":
            from model.baselines import build_baseline

            model = build_baseline("sasrec", spec, item_loss=item_loss, max_label_positions=budget)
        else:
            raise ValueError(f"unknown model {case.model!r}")
    finally:
        keras.config.set_dtype_policy(previous)
    return model, spec, budget


def train_flops(model, batch: int, n: int, labelled_rows: float) -> float:
    """Model FLOPs of one training step (module docstring)."""
    per_position = 0.0
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if isinstance(layer, keras.layers.Dense):
            fan_in, fan_out = layer.kernel.shape
            per_position += 2.0 * fan_in * fan_out
        elif isinstance(layer, TransformerBlock):
            per_position += 4.0 * n * layer.d_model
        elif isinstance(layer, IntentAggregation):  # its score layer runs once per head
            per_position += 2.0 * layer.d_proj * (layer.num_heads - 1)
    head = model.item_head
    scored = head.num_sampled_negatives + 1 if head.loss_mode == "sampled" else head.item_vocab_size
    d = int(ops.shape(head.kernel)[0])
    forward = per_position * batch * n + 2.0 * d * scored * labelled_rows
    return 3.0 * forward


def head_activation_bytes(model, rows: int) -> float:
    head = model.item_head
    if head.loss_mode == "sampled":
        width = head.num_sampled_negatives + 1
    elif head.loss_mode == "chunked":
        width = min(head.chunk_size, head.item_vocab_size)
    else:
        width = head.item_vocab_size
    return 4.0 * rows * width
