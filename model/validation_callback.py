"""Validation during training: early stopping and which weights a run keeps."""

from __future__ import annotations

import contextlib
import math
import time
from typing import TYPE_CHECKING

import keras

from model import evaluation

if TYPE_CHECKING:
    from model.training import TrainConfig

MODEL_SELECTION_METRIC = "ndcg@10"


class ValidationCallback(keras.callbacks.Callback):
    """Full-catalogue validation every `eval_every` epochs; keeps the best weights."""

    def __init__(self, x, y, cfg: TrainConfig, exclude_seen: bool, seen=None, min_epochs: int = 1):
        super().__init__()
        self.min_epochs = min_epochs  # early stopping may end the run from this epoch on
        self.x, self.y, self.cfg, self.exclude_seen, self.seen = x, y, cfg, exclude_seen, seen
        self.best = -math.inf
        self.best_epoch = -1
        self.selected_epoch = -1  # whose weights are restored (the best, or within the tolerance)
        self.best_weights = None
        self.history = []
        self.wait = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.cfg.eval_every:
            return
        trained = time.perf_counter() - getattr(self, "epoch_started", time.perf_counter())
        started = time.perf_counter()
        with self.averaged_weights():  # one swap: validate, and keep these weights if selected
            metrics = evaluation.evaluate(
                self.model, self.x, self.y, batch_size=self.cfg.eval_batch_size, exclude_seen=self.exclude_seen,
                seen=self.seen, length_buckets=self.cfg.length_buckets,
            )
            score = metrics[MODEL_SELECTION_METRIC]
            improved = score > self.best
            tolerance = self.cfg.selection_tolerance
            if improved or (tolerance and score >= self.best * (1.0 - tolerance)):
                self.selected_epoch = epoch + 1
                self.best_weights = self.model.get_weights()
        self.history.append({"epoch": epoch + 1, **(logs or {}), **{f"val_{k}": v for k, v in metrics.items()}})
        if self.cfg.verbose:
            loss = (logs or {}).get("loss", float("nan"))
            print(f"  epoch {epoch + 1}: loss {loss:.4f}  val {MODEL_SELECTION_METRIC}={score:.4f} "
                  f"recall@10={metrics['recall@10']:.4f}  ({trained:.1f} s train, "
                  f"{time.perf_counter() - started:.1f} s validation)", flush=True)
        if improved:
            self.best, self.best_epoch, self.wait = score, epoch + 1, 0
        else:
            self.wait += 1
        if self.wait >= self.cfg.patience and epoch + 1 >= self.min_epochs:
            self.model.stop_training = True

    @contextlib.contextmanager
    def averaged_weights(self):
        """The model holds the optimizer's moving average of its weights inside the block
        (with `cfg.ema_momentum`), its training weights again after it."""
        if not self.cfg.ema_momentum:
            yield
            return
        variables = self.model.trainable_variables
        training_values = [keras.ops.copy(v.value) for v in variables]
        self.model.optimizer.finalize_variable_values(variables)  # public: writes the averages in
        for variable in variables:  # own buffers: JAX's predict donates (deletes) the model's
            variable.assign(keras.ops.copy(variable.value))
        try:
            yield
        finally:
            for variable, value in zip(variables, training_values):
                variable.assign(value)

    def on_train_end(self, logs=None):
        if self.best_weights is not None:
            self.model.set_weights(self.best_weights)
