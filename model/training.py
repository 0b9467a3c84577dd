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
import warnings
from typing import Union

import keras
import numpy as np

from datasets.schema import NUM_RESERVED_IDS
from model import evaluation, keras_compat, reference
from model.batching import SequenceBatches
from model.item_scores import item_attribute_tables
from model.validation_callback import MODEL_SELECTION_METRIC, ValidationCallback

SEEN_FILTERS = ("history", "window")


@dataclasses.dataclass
class TrainConfig:
    """The training protocol of every entry point: `model.train`, `bench.paper_tables`
    and the TFX Trainer (`pipeline.configs.PipelineConfig.training`). Its defaults are
    the project's one default configuration."""

    # --- Data and optimisation. ---
    # "sliding": every training target of every user (the last max_len positions and
    # the earlier non-overlapping windows); "last": the last window of each user only.
    train_windows: str = "sliding"
    # A cap no run should reach: early stopping ends training. (200 capped an LSTM on
    # synthetic-small at its best epoch 198; recurrent models learn slowly at lr 1e-3.)
    epochs: int = 400
    batch_size: int = 128
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4  # AdamW; embeddings of rare items overfit without it
    clipnorm: float = 1.0
    # Epochs without validation improvement before stopping. Validation NDCG on a small log
    # moves by ±0.005 from epoch to epoch, as much as ten epochs of real progress: with 10,
    # one lucky epoch ended SASRec runs that were still improving (ml-100k, lr 3e-3, seed 3:
    # test 0.074 at patience 10, 0.111 at 20; docs/experiments.md, "Early stopping").
    patience: int = 20
    eval_every: int = 1  # epochs between validation passes
    # > 0: restore the latest epoch whose validation score is within this fraction of the
    # best, not the best itself. Item NDCG plateaus while the intent heads still learn
    # (docs/experiments.md, "Intent loss weight and learning curves"); 0: the best epoch.
    selection_tolerance: float = 0.0
    # > 0: validate, select and return an exponential moving average of the weights (decay
    # per optimiser step; Keras's `use_ema`) instead of the raw weights. Validation NDCG of
    # the raw weights moves by ±5% from epoch to epoch on a small log, so selection picks
    # noisy peaks; the average smooths them. 0 (the raw weights): 0.99 cost SASRec 10% on
    # ml-100k and left IntentRec as it was (docs/experiments.md, "Weight averaging").
    ema_momentum: float = 0.0
    eval_batch_size: int = 512
    # Length buckets of the training batches (model.batching): a batch runs over its
    # longest history rounded up to a bucket, so padding costs next to nothing.
    length_buckets: int = 4
    seed: int = 0
    # Early stopping does not end a run before this many optimiser steps, and a run with
    # fewer steps in all is warned about. Recurrent models on small logs sit at the
    # popularity level for 10-20 epochs before they learn; a lucky first epoch then
    # "won" the patience window (GRU, synthetic-small: stopped at epoch 11, NDCG 0.08 vs 0.44).
    min_steps: int = 300
    # --- Evaluation protocol. ---
    # Whether ranking excludes items the user has already seen. "auto": yes when
    # repeat consumption is rare in training (< 5% of targets), as on MovieLens; no
    # when users re-view / continue / rewatch (e-commerce and streaming logs).
    exclude_seen: str = "auto"
    # What "seen" means when excluding: "history", every item of the user's whole
    # known history before the target (training interactions and earlier val/test
    # targets); "window", only the max_len interactions the model reads.
    seen_filter: str = "history"
    # 0: silent; 1: the protocol line and one line per epoch; 2: Keras progress bar as well.
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

    def __post_init__(self):
        if self.seen_filter not in SEEN_FILTERS:
            raise ValueError(f"seen_filter must be one of {SEEN_FILTERS}, got {self.seen_filter!r}")
        if str(self.exclude_seen).lower() not in ("auto", "true", "false"):
            raise ValueError(f"exclude_seen must be auto, true or false, got {self.exclude_seen!r}")
        if not 0.0 <= self.selection_tolerance < 1.0:
            raise ValueError(f"selection_tolerance must be in [0, 1), got {self.selection_tolerance!r}")
        if not 0.0 <= self.ema_momentum < 1.0:
            raise ValueError(f"ema_momentum must be in [0, 1), got {self.ema_momentum!r}")


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


def scale_loss_for_distribution(model, loss):
    """`loss` divided by the number of `tf.distribute` replicas in sync.

    Keras 3 on TensorFlow sums the replicas' gradients and expects a custom
    `compute_loss` to return the per-replica loss already scaled for that sum (its
    built-in losses do the same; the logged loss is unscaled again by Keras), so a
    per-replica mean loss trains with the single-device gradient when every
    replica's batch carries the same total weight (and to within the spread of
    those totals otherwise). JAX (`keras.distribution`) computes the global batch
    as one SPMD program: nothing to do there. `compute_loss` of every model calls
    this (tests/model/test_training_runtime.py checks it against one device).
    """
    strategy = getattr(model, "distribute_strategy", None)  # TF trainer only
    replicas = getattr(strategy, "num_replicas_in_sync", 1)
    if replicas == 1:
        return loss
    return loss * (1.0 / replicas)


def optimizer(cfg: TrainConfig) -> keras.optimizers.Optimizer:
    """AdamW with `cfg`'s learning rate, weight decay, clipping and weight averaging."""
    return keras.optimizers.AdamW(learning_rate=cfg.learning_rate, weight_decay=cfg.weight_decay,
                                  clipnorm=cfg.clipnorm or None, use_ema=cfg.ema_momentum > 0,
                                  ema_momentum=cfg.ema_momentum or 0.99)


def compile_model(model, cfg: TrainConfig):
    """Compiles `model` with AdamW and `cfg`'s XLA / steps-per-execution settings."""
    policy = model.dtype_policy.name
    if policy != cfg.mixed_precision:
        raise ValueError(
            f"the model was built under dtype policy {policy!r} but cfg.mixed_precision is "
            f"{cfg.mixed_precision!r}: build it inside `with training.runtime(cfg):`"
        )
    model.compile(
        optimizer=optimizer(cfg),
        jit_compile=cfg.jit_compile,
        steps_per_execution=keras_compat.steps_per_execution(model, cfg.steps_per_execution),
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
    setting = str(setting).lower()
    if setting in ("true", "false"):
        return setting == "true"
    if setting != "auto":
        raise ValueError(f"exclude_seen must be auto, true or false, got {setting!r}")
    return repeat_rate(train_split.take(slice(0, 2000))) < 0.05


def seen_items(split, cfg: TrainConfig, exclude_seen: bool):
    """What `evaluation.evaluate(..., seen=)` filters: the split's whole-history items, or
    None (the input window, or no filter)."""
    if exclude_seen and cfg.seen_filter == "history":
        return getattr(split, "seen", None)
    return None


@dataclasses.dataclass(frozen=True)
class Protocol:
    """What a run trains on and how it is judged; `line()` is printed by every entry point."""

    train_windows: str
    train_rows: int
    train_targets: int
    batch_size: int
    steps_per_epoch: int
    epochs: int
    patience: int
    min_epochs: int
    selection_tolerance: float
    ema_momentum: float
    length_buckets: tuple
    exclude_seen: bool
    seen_filter: str
    repeat_rate: float
    catalogue: int

    def line(self) -> str:
        seen = (f"seen items excluded ({'whole history' if self.seen_filter == 'history' else 'input window'})"
                if self.exclude_seen else "seen items kept")
        return (f"[protocol] {self.train_windows} windows: {self.train_rows:,} rows, {self.train_targets:,} targets | "
                f"batch {self.batch_size} → {self.steps_per_epoch:,} steps/epoch, ≤ {self.epochs} epochs "
                f"(≤ {self.steps_per_epoch * self.epochs:,} steps), early stop on val {MODEL_SELECTION_METRIC} "
                f"patience {self.patience}"
                + (f", not before epoch {self.min_epochs}" if self.min_epochs > 1 else "")
                + (f", latest epoch within {self.selection_tolerance:.1%} of the best restored"
                   if self.selection_tolerance else "")
                + (f", weights averaged (EMA {self.ema_momentum:g} per step)" if self.ema_momentum else "")
                + f" | length buckets {list(self.length_buckets)} | full-catalogue ranking "
                f"of {self.catalogue:,} items, {seen}; training repeat rate {self.repeat_rate:.1%}")


def describe_protocol(train_split, cfg: TrainConfig, exclude_seen: bool, catalogue: int,
                      batches: "SequenceBatches") -> Protocol:
    # A batch source that streams its rows counts them itself; `train_split` is then a sample.
    rows = getattr(batches, "rows", None)
    targets = getattr(batches, "targets", None)
    return Protocol(
        train_windows=cfg.train_windows, train_rows=len(train_split) if rows is None else int(rows),
        train_targets=int((train_split.w > 0).sum()) if targets is None else int(targets),
        batch_size=cfg.batch_size, steps_per_epoch=batches.num_batches, epochs=cfg.epochs, patience=cfg.patience,
        min_epochs=min_epochs(cfg, batches.num_batches), selection_tolerance=cfg.selection_tolerance,
        ema_momentum=cfg.ema_momentum, length_buckets=tuple(batches.boundaries), exclude_seen=bool(exclude_seen),
        seen_filter=cfg.seen_filter,
        repeat_rate=repeat_rate(train_split.take(slice(0, 2000))), catalogue=catalogue - NUM_RESERVED_IDS,
    )


def min_epochs(cfg: TrainConfig, steps_per_epoch: int) -> int:
    """The first epoch after which early stopping may end a run: `cfg.min_steps` optimiser
    steps done (at most `cfg.epochs`)."""
    return max(1, min(cfg.epochs, math.ceil(cfg.min_steps / max(1, steps_per_epoch))))


def first_stop_epoch(train_split, cfg: TrainConfig) -> int:
    """`min_epochs` of a run on `train_split` with the default batches (`SequenceBatches`)."""
    x, y = with_weights(train_split)
    steps = SequenceBatches(x, y, cfg.batch_size, num_buckets=cfg.length_buckets, shuffle=False).num_batches
    return min_epochs(cfg, steps)


def stale_stop(run: dict, cfg: TrainConfig, first_epoch: int) -> str | None:
    """Why a finished run (a cached record with `epochs_run` and `best_epoch`) would not
    have ended where it did under `cfg` (None if it would): early stopping ended it before
    `first_epoch` (`min_epochs`), or a lower epoch cap or a shorter patience ended it
    while `cfg` would still have waited for an improvement. Such a run must be trained again."""
    if run["epochs_run"] < first_epoch:
        return (f"stopped at epoch {run['epochs_run']}, before epoch {first_epoch} where early stopping "
                f"may end a run now")
    if run["epochs_run"] < cfg.epochs and run["epochs_run"] - run["best_epoch"] < cfg.patience * cfg.eval_every:
        return (f"ended at epoch {run['epochs_run']}, {run['epochs_run'] - run['best_epoch']} epochs after its best "
                f"(epoch {run['best_epoch']}); today's rules wait {cfg.patience * cfg.eval_every} epochs for an "
                f"improvement, up to epoch {cfg.epochs}")
    return None


def set_item_attributes(model, train_x) -> dict:
    """Fills the model's intent item score tables from the training inputs (if it has one).

    Returns {head: consistency}: the share of training interactions that carry their
    item's most frequent value; heads at or above 0.9 that the item explains beyond the
    global majority value score items (`model.item_scores.item_attribute_tables`).
    """
    scorer = getattr(model, "intent_score", None)
    if scorer is None:
        return {}
    tables, used, consistency = item_attribute_tables(train_x, model.intent_heads, model.config.item_vocab_size)
    scorer.set_item_attributes(tables, used)
    return {name: {"consistency": round(value, 4), "item_attribute": used[name]} for name, value in consistency.items()}


def fit_and_evaluate(model, encoded, cfg: TrainConfig, evaluate_splits=("val", "test"), *, batches=None,
                     callbacks=()) -> dict:
    """Trains `model` on `encoded.train` with early stopping on validation, then
    evaluates the best weights on `evaluate_splits`.

    Args:
        encoded: what is read of the data: `train`, `val` (and the `evaluate_splits`)
            `Split`s through `split(name)` and attributes, `item_popularity`, `feature_spec`
            (a `datasets.EncodedData`, or the TFX Trainer's view of Transform's output).
        batches: the training batches; default `SequenceBatches` of `encoded.train`. One
            that streams data too large for memory (the TFX Trainer's) also has `rows` and
            `targets` counts, and `encoded.train` is then a sample of its rows (the repeat
            rate and the item attribute tables are measured on it).
        callbacks: more Keras callbacks for `fit` (e.g. TensorBoard).

    Returns:
        {"val": metrics, "test": metrics, "best_epoch", "epochs_run", "train_seconds",
         "exclude_seen", "protocol", "history"}.
    """
    keras.utils.set_random_seed(cfg.seed)
    exclude_seen = resolve_exclude_seen(cfg.exclude_seen, encoded.train)
    if hasattr(model, "item_head"):
        model.item_head.set_prior(encoded.item_popularity)
    attributes = set_item_attributes(model, encoded.train.x)
    compile_model(model, cfg)
    train_x, train_y = with_weights(encoded.train)
    if batches is None:
        batches = SequenceBatches(train_x, train_y, cfg.batch_size, num_buckets=cfg.length_buckets, shuffle=True,
                                  seed=cfg.seed, input_names=model.input_names)
    protocol = describe_protocol(encoded.train, cfg, exclude_seen, encoded.feature_spec.item_vocab_size, batches)
    if cfg.verbose:
        print(protocol.line(), flush=True)
        if attributes:
            print("[intent item score] " + ", ".join(f"{name}: {'item attribute' if a['item_attribute'] else 'not an item attribute'} ({a['consistency']:.0%} consistent)" for name, a in attributes.items()), flush=True)
        unweighted = [h.name for h in getattr(model, "intent_heads", ()) if not h.weighted]
        if unweighted:
            print(f"[loss weight] the weight is computed from {', '.join(unweighted)}: that intent head trains "
                  f"unweighted, the item loss and the other heads weighted", flush=True)
    if protocol.steps_per_epoch * cfg.epochs < cfg.min_steps:
        warnings.warn(f"this run has at most {protocol.steps_per_epoch * cfg.epochs} optimiser steps (fewer than "
                      f"{cfg.min_steps}): it is unlikely to have trained; use more epochs or a smaller batch",
                      stacklevel=2)
    val_x, val_y = with_weights(encoded.val)
    validation = ValidationCallback(val_x, val_y, cfg, exclude_seen, seen_items(encoded.val, cfg, exclude_seen),
                                    min_epochs=protocol.min_epochs)
    started = time.perf_counter()
    history = model.fit(batches, epochs=cfg.epochs, callbacks=[validation, *callbacks],
                        verbose={0: 0, 1: 0, 2: 1}.get(cfg.verbose, 1))
    result = {
        "train_seconds": time.perf_counter() - started,
        "epochs_run": len(history.history.get("loss", [])),
        "best_epoch": validation.best_epoch,
        "selected_epoch": validation.selected_epoch,
        "exclude_seen": exclude_seen,
        "protocol": dataclasses.asdict(protocol),
        "history": validation.history,
        "item_attributes": attributes,
    }
    if result["epochs_run"] >= cfg.epochs and validation.best_epoch > cfg.epochs - cfg.patience:
        warnings.warn(f"the run reached the {cfg.epochs}-epoch cap still improving (best epoch "
                      f"{validation.best_epoch}): raise `epochs`", stacklevel=2)
    for split in evaluate_splits:
        s = encoded.split(split)
        x, y = with_weights(s)
        result[split] = evaluation.evaluate(
            model, x, y, batch_size=cfg.eval_batch_size, exclude_seen=exclude_seen, seen=seen_items(s, cfg, exclude_seen),
            length_buckets=cfg.length_buckets,
        )
    return result


def reference_baselines(encoded, cfg: TrainConfig, exclude_seen: bool, split="test") -> dict:
    """Popularity and item co-occurrence rankings and majority-class and Markov intent
    accuracy on `split`, under the same seen-item filter as the model."""
    s = encoded.split(split)
    x, y = with_weights(s)
    train_x, train_y = with_weights(encoded.train)
    seen = (seen_items(s, cfg, exclude_seen) or True) if exclude_seen else None
    return {
        "popularity": reference.popularity(encoded.item_popularity, x, y, seen=seen),
        "cooccurrence": reference.cooccurrence(encoded.train, encoded.item_popularity, x, y, seen=seen),
        "majority": reference.majority(train_y, y, encoded.feature_spec.intents),
        "markov": reference.markov(train_x, train_y, x, y, encoded.feature_spec.intents),
    }
