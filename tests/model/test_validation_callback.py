"""model.validation_callback.ValidationCallback: early stopping and which epoch's weights come back."""

from unittest import mock

import keras
import numpy as np

from model import training, validation_callback
from tests.test_case import TestCase


class _Weights:
    """Stands in for a model: its weights are the number of the epoch that set them."""

    def __init__(self):
        self.epoch = 0
        self.restored = None
        self.stop_training = False

    def get_weights(self):
        return self.epoch

    def set_weights(self, weights):
        self.restored = weights


class ValidationCallbackTest(TestCase):
    def run_epochs(self, scores, min_epochs=1, **cfg):
        cfg = training.TrainConfig(verbose=0, **cfg)
        callback = validation_callback.ValidationCallback(None, None, cfg, exclude_seen=False, min_epochs=min_epochs)
        model = _Weights()
        callback.set_model(model)
        with mock.patch.object(validation_callback.evaluation, "evaluate",
                               side_effect=[{"ndcg@10": s} for s in scores]):
            for epoch in range(len(scores)):
                model.epoch = epoch + 1
                callback.on_epoch_end(epoch)
                if model.stop_training:
                    break
        callback.on_train_end()
        return callback, model

    def test_best_epoch_is_restored_by_default(self):
        callback, model = self.run_epochs([0.40, 0.50, 0.499, 0.498, 0.49], patience=3)
        self.assertEqual((callback.best_epoch, callback.selected_epoch, model.restored), (2, 2, 2))
        self.assertEqual(model.epoch, 5)  # stopped after 3 epochs without a new best

    def test_tolerance_restores_the_latest_epoch_within_it(self):
        # 0.496 is within 1% of 0.50, 0.49 is not; a later new best resets the choice.
        callback, model = self.run_epochs([0.40, 0.50, 0.496, 0.49, 0.45], patience=3, selection_tolerance=0.01)
        self.assertEqual((callback.best_epoch, callback.selected_epoch, model.restored), (2, 3, 3))
        callback, model = self.run_epochs([0.40, 0.50, 0.496, 0.51, 0.45, 0.44, 0.43], patience=3,
                                          selection_tolerance=0.01)
        self.assertEqual((callback.best_epoch, callback.selected_epoch, model.restored), (4, 4, 4))

    def test_no_stop_before_the_minimum_steps(self):
        """A lucky first epoch, then a plateau below it while the model has not started to
        learn (GRU on synthetic-small): patience alone stops at epoch 4; with the floor the
        run goes on and finds the later, better epochs."""
        scores = [0.08, 0.05, 0.06, 0.07, 0.075, 0.09, 0.20, 0.30, 0.29, 0.28, 0.27]
        callback, model = self.run_epochs(scores, patience=3)
        self.assertEqual((callback.best_epoch, model.epoch, model.restored), (1, 4, 1))
        callback, model = self.run_epochs(scores, patience=3, min_epochs=6)
        self.assertEqual((callback.best_epoch, model.epoch, model.restored), (8, 11, 8))


class WeightAveragingTest(TestCase):
    """`ema_momentum`: validation and the restored weights are the moving average, while
    training goes on from the raw weights as if there were none."""

    def fit(self, ema_momentum, scores):
        keras.utils.set_random_seed(3)
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3), keras.layers.Dense(1)])
        cfg = training.TrainConfig(verbose=0, patience=100, ema_momentum=ema_momentum, learning_rate=0.05)
        model.compile(optimizer=training.optimizer(cfg), loss="mse")  # the loss: a Sequential has no compute_loss
        validated, raw = [], []
        x = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
        callback = validation_callback.ValidationCallback(None, None, cfg, exclude_seen=False)
        record_raw = keras.callbacks.LambdaCallback(on_epoch_end=lambda *_: raw.append(model.get_weights()))

        def evaluate(model, *args, **kwargs):
            model.predict_on_batch(x[:2])  # as the real evaluation (JAX donates the weights' buffers)
            validated.append(model.get_weights())
            return {"ndcg@10": scores[len(validated) - 1]}

        with mock.patch.object(validation_callback.evaluation, "evaluate", side_effect=evaluate):
            model.fit(x, x[:, :1] * 2.0, batch_size=8, epochs=len(scores), shuffle=False, verbose=0,
                      callbacks=[callback, record_raw])
        return model.get_weights(), validated, raw

    def test_the_average_is_validated_and_restored_and_training_is_unchanged(self):
        scores = [0.1, 0.3, 0.2]  # epoch 2 is the best
        plain_final, plain_validated, plain_raw = self.fit(0.0, scores)
        final, validated, raw = self.fit(0.5, scores)
        for a, b in zip(raw, plain_raw):  # the averaging did not change the training trajectory
            for wa, wb in zip(a, b):
                np.testing.assert_allclose(wa, wb, rtol=1e-5, atol=1e-6)
        for epoch in range(3):  # without averaging, the raw weights are validated
            for wa, wb in zip(plain_validated[epoch], plain_raw[epoch]):
                np.testing.assert_allclose(wa, wb, rtol=1e-5, atol=1e-6)
        self.assertGreater(max(np.abs(wa - wb).max() for wa, wb in zip(validated[1], raw[1])), 1e-3)
        for wa, wb in zip(final, validated[1]):  # the average of the best epoch comes back
            np.testing.assert_allclose(wa, wb, rtol=1e-6)
        for wa, wb in zip(plain_final, plain_raw[1]):
            np.testing.assert_allclose(wa, wb, rtol=1e-6)
