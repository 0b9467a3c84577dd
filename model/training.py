"""Fit-and-evaluate loop shared by `model.train`, the paper-table runner and benchmarks.

Works for any Keras 3 model that follows the IntentRec training contract: a
`compute_loss` reading next-step targets and `y["weight"]`, an `item_head`, and
outputs `item_hidden` (+ `intent_<name>` for intent heads). Backend-agnostic.
"""

from __future__ import annotations

import dataclasses
import math
import time

import keras
import numpy as np

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
    verbose: int = 1


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
            print(f"  epoch {epoch + 1}: val {MODEL_SELECTION_METRIC}={score:.4f} recall@10={metrics['recall@10']:.4f}")
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
    model.compile(
        optimizer=keras.optimizers.AdamW(learning_rate=cfg.learning_rate, weight_decay=cfg.weight_decay, clipnorm=1.0)
    )
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
        verbose=cfg.verbose,
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
