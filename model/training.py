"""Fit-and-evaluate loop shared by `model.train`, the paper-table runner and benchmarks.

Works for any Keras 3 model that follows the IntentRec training contract: a
`compute_loss` reading next-step targets and `y["weight"]`, an `item_head`, and
outputs `item_hidden` (+ `intent_<name>` for intent heads). Backend-agnostic.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from typing import Union

import keras
import numpy as np
from keras import ops

from model import evaluation

MODEL_SELECTION_METRIC = "ndcg@10"


@dataclasses.dataclass
class TrainConfig:
    epochs: int = 30  # upper bound; early stopping on validation NDCG@10 picks the epoch
    batch_size: int = 128
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4  # AdamW; embeddings of rare items overfit without it
    patience: int = 5  # epochs without validation improvement before stopping
    eval_every: int = 1  # epochs between validation passes
    eval_batch_size: int = 512
    seed: int = 0
    # Whether ranking excludes items already in the user's history. "auto": yes
    # when repeat consumption is rare in training (< 5% of targets), as on
    # MovieLens; no when users rewatch/continue (streaming logs).
    exclude_seen: str = "auto"
    # 0: silent; 1: one line per epoch; 2: Keras progress bar as well.
    verbose: int = 1
    # --- Speed and scale (docs/performance.md). The dtype policy and the
    # distribution must be in place while the model is BUILT: build, compile and
    # fit inside `with training.runtime(cfg):`.
    # Keras dtype policy: "float32", "mixed_bfloat16" (GPU/TPU: bf16 matmuls,
    # float32 variables and softmax; no loss scaling) or "mixed_float16".
    mixed_precision: str = "float32"
    # XLA compilation of the train step: True, False or "auto" (Keras: on for JAX,
    # on for TF with a GPU and no tf.distribute strategy).
    jit_compile: Union[bool, str] = "auto"
    # Train steps per compiled call: fewer host round-trips and Python dispatches
    # per step (the step itself never syncs with the host).
    steps_per_execution: int = 1
    # "none", or "data_parallel": JAX: `keras.distribution.DataParallel` over all
    # local (or, after `keras.distribution.initialize()`, all hosts') devices;
    # TF: pass a `tf.distribute` strategy to `runtime(cfg, strategy=...)`.
    distribution: str = "none"


DISTRIBUTIONS = ("none", "data_parallel")


@contextlib.contextmanager
def runtime(cfg: TrainConfig, strategy=None):
    """Dtype policy and data-parallel placement of `cfg`, for building, compiling
    and training a model inside the block.

    Args:
        cfg: the `TrainConfig` (`mixed_precision`, `distribution`).
        strategy: TensorFlow backend only: a `tf.distribute` strategy (e.g.
            `MirroredStrategy`, `MultiWorkerMirroredStrategy`) whose scope the
            block enters. `model/` never imports TensorFlow, so the caller
            (the TFX Trainer) creates it.

    Example:
    ```python
    cfg = TrainConfig(mixed_precision="mixed_bfloat16", distribution="data_parallel")
    with training.runtime(cfg):
        model = IntentRec(config)
        result = training.fit_and_evaluate(model, encoded, cfg)
    ```
    """
    if cfg.distribution not in DISTRIBUTIONS:
        raise ValueError(f"distribution must be one of {DISTRIBUTIONS}, got {cfg.distribution!r}")
    backend = keras.backend.backend()
    if strategy is not None and backend != "tensorflow":
        raise ValueError(f"a tf.distribute strategy needs the TensorFlow backend, not {backend!r}")
    if cfg.distribution == "data_parallel" and strategy is None and backend != "jax":
        raise ValueError(
            "distribution='data_parallel' on TensorFlow needs a tf.distribute strategy: "
            "runtime(cfg, strategy=tf.distribute.MirroredStrategy())"
        )
    previous_policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy(cfg.mixed_precision)
    set_distribution = cfg.distribution == "data_parallel" and backend == "jax"
    if set_distribution:
        previous_distribution = keras.distribution.distribution()
        keras.distribution.set_distribution(keras.distribution.DataParallel())
    try:
        with strategy.scope() if strategy is not None else contextlib.nullcontext():
            yield
    finally:
        keras.config.set_dtype_policy(previous_policy)
        if set_distribution:
            keras.distribution.set_distribution(previous_distribution)


def replica_gradient_scale(model, loss):
    """`loss` with its value unchanged and its gradient divided by the number of
    `tf.distribute` replicas in sync.

    Keras 3.6 on TensorFlow all-reduces replica gradients with a SUM and never
    rescales the loss, so a per-replica mean loss trains with `replicas` times the
    single-device gradient. Dividing by the replica count restores it exactly
    when every replica's batch carries the same total weight (and to within the
    spread of those totals otherwise). The value is kept so logged losses stay
    per-example means. JAX (`keras.distribution`) computes the global batch as one
    SPMD program: nothing to do there. `compute_loss` of every model calls this
    (tests/model/test_training_runtime.py checks it against one device).
    """
    strategy = getattr(model, "distribute_strategy", None)  # TF trainer only
    replicas = getattr(strategy, "num_replicas_in_sync", 1)
    if replicas == 1:
        return loss
    scale = 1.0 / replicas
    return loss * scale + ops.stop_gradient(loss * (1.0 - scale))


def compile_model(model, cfg: TrainConfig):
    """Compiles `model` with AdamW and `cfg`'s XLA / steps-per-execution settings."""
    policy = model.dtype_policy.name
    if policy != cfg.mixed_precision:
        raise ValueError(
            f"the model was built under dtype policy {policy!r} but cfg.mixed_precision is "
            f"{cfg.mixed_precision!r}: build it inside `with training.runtime(cfg):`"
        )
    model.compile(
        optimizer=keras.optimizers.AdamW(learning_rate=cfg.learning_rate, weight_decay=cfg.weight_decay, clipnorm=1.0),
        jit_compile=cfg.jit_compile,
        steps_per_execution=cfg.steps_per_execution,
    )


def with_weights(split) -> tuple[dict, dict]:
    """(x, y) for `fit`/`evaluate`, the per-position weight carried in `y["weight"]`."""
    return split.x, {**split.y, "weight": split.w}


def repeat_rate(split) -> float:
    """Share of weighted training targets that already occur earlier in the input."""
    items, targets, weights = split.x["item"], split.y["item"], split.w
    n = items.shape[1]
    # target at k is a repeat if it equals an input at positions <= k.
    earlier = np.tril(np.ones((n, n), bool))  # [k, i]: i <= k
    hits = (targets[:, :, None] == items[:, None, :]) & earlier[None] & (items[:, None, :] > 1)
    labelled = weights > 0
    return float(hits.any(-1)[labelled].mean()) if labelled.any() else 0.0


def resolve_exclude_seen(setting, train_split) -> bool:
    if isinstance(setting, bool):
        return setting
    if setting in ("true", "false"):
        return setting == "true"
    if setting != "auto":
        raise ValueError(f"exclude_seen must be auto, true or false, got {setting!r}")
    return repeat_rate(train_split.take(slice(0, 2000))) < 0.05


class ValidationCallback(keras.callbacks.Callback):
    """Full-catalogue validation every `eval_every` epochs; keeps the best weights."""

    def __init__(self, x, y, cfg: TrainConfig, exclude_seen: bool):
        super().__init__()
        self.x, self.y, self.cfg, self.exclude_seen = x, y, cfg, exclude_seen
        self.best = -math.inf
        self.best_epoch = -1
        self.best_weights = None
        self.history = []
        self.wait = 0

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.cfg.eval_every:
            return
        metrics = evaluation.evaluate(
            self.model, self.x, self.y, batch_size=self.cfg.eval_batch_size, exclude_seen=self.exclude_seen
        )
        score = metrics[MODEL_SELECTION_METRIC]
        self.history.append({"epoch": epoch + 1, **(logs or {}), **{f"val_{k}": v for k, v in metrics.items()}})
        if self.cfg.verbose:
            loss = (logs or {}).get("loss", float("nan"))
            print(f"  epoch {epoch + 1}: loss {loss:.4f}  val {MODEL_SELECTION_METRIC}={score:.4f} "
                  f"recall@10={metrics['recall@10']:.4f}", flush=True)
        if score > self.best:
            self.best, self.best_epoch, self.wait = score, epoch + 1, 0
            self.best_weights = self.model.get_weights()
        else:
            self.wait += 1
            if self.wait >= self.cfg.patience:
                self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.best_weights is not None:
            self.model.set_weights(self.best_weights)


def fit_and_evaluate(model, encoded, cfg: TrainConfig, evaluate_splits=("val", "test")) -> dict:
    """Trains `model` on `encoded.train` with early stopping on validation, then
    evaluates the best weights on `evaluate_splits`.

    Returns:
        {"val": metrics, "test": metrics, "best_epoch", "epochs_run", "train_seconds",
         "exclude_seen", "history"}.
    """
    keras.utils.set_random_seed(cfg.seed)
    exclude_seen = resolve_exclude_seen(cfg.exclude_seen, encoded.train)
    if hasattr(model, "item_head"):
        model.item_head.set_prior(encoded.item_popularity)
    compile_model(model, cfg)
    train_x, train_y = with_weights(encoded.train)
    val_x, val_y = with_weights(encoded.val)
    validation = ValidationCallback(val_x, val_y, cfg, exclude_seen)
    started = time.perf_counter()
    history = model.fit(
        {name: train_x[name] for name in model.input_names},
        train_y,
        batch_size=cfg.batch_size,
        epochs=cfg.epochs,
        shuffle=True,
        callbacks=[validation],
        verbose={0: 0, 1: 0, 2: 1}.get(cfg.verbose, 1),
    )
    result = {
        "train_seconds": time.perf_counter() - started,
        "epochs_run": len(history.history.get("loss", [])),
        "best_epoch": validation.best_epoch,
        "exclude_seen": exclude_seen,
        "history": validation.history,
    }
    for split in evaluate_splits:
        x, y = with_weights(encoded.split(split))
        result[split] = evaluation.evaluate(
            model, x, y, batch_size=cfg.eval_batch_size, exclude_seen=exclude_seen
        )
    return result


def reference_baselines(encoded, exclude_seen: bool, split="test") -> dict:
    """Popularity ranking and majority-class intent accuracy on `split`."""
    x, y = with_weights(encoded.split(split))
    _, train_y = with_weights(encoded.train)
    return {
        "popularity": evaluation.popularity_baseline(encoded.item_popularity, x, y, exclude_seen=exclude_seen),
        "majority": evaluation.majority_baseline(train_y, y, encoded.feature_spec.get("intents", ())),
    }
