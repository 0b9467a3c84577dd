"""model.training: the protocol's settings and when a run may stop."""

from model import training
from tests.test_case import TestCase


class TrainConfigTest(TestCase):
    def test_min_epochs_from_min_steps(self):
        cfg = training.TrainConfig(min_steps=300, epochs=200)
        self.assertEqual(training.min_epochs(cfg, 12), 25)  # synthetic-small: 12 steps per epoch
        self.assertEqual(training.min_epochs(cfg, 1000), 1)  # large logs: no floor
        self.assertEqual(training.min_epochs(training.TrainConfig(min_steps=300, epochs=10), 12), 10)
        self.assertEqual(training.min_epochs(training.TrainConfig(min_steps=0), 12), 1)

    def test_stale_stops_of_cached_runs(self):
        cfg = training.TrainConfig(epochs=400, patience=10)
        self.assertIn("before epoch 25", training.stale_stop({"epochs_run": 11, "best_epoch": 1}, cfg, 25))
        self.assertIsNone(training.stale_stop({"epochs_run": 25, "best_epoch": 15}, cfg, 25))
        # Capped at 200 while improving (best 198): stale under a cap of 400; stopped by
        # patience at 200 (best 190) or at today's cap: not.
        self.assertIn("2 epochs after its best", training.stale_stop({"epochs_run": 200, "best_epoch": 198}, cfg, 25))
        self.assertIsNone(training.stale_stop({"epochs_run": 200, "best_epoch": 190}, cfg, 25))
        self.assertIsNone(training.stale_stop({"epochs_run": 400, "best_epoch": 399}, cfg, 25))
        # Stopped by a patience of 10: stale once the patience is 20 (it would have waited).
        longer = training.TrainConfig(epochs=400, patience=20)
        self.assertIn("wait 20 epochs", training.stale_stop({"epochs_run": 200, "best_epoch": 190}, longer, 25))
        self.assertIsNone(training.stale_stop({"epochs_run": 210, "best_epoch": 190}, longer, 25))

    def test_tolerance_is_validated(self):
        with self.assertRaisesRegex(ValueError, "selection_tolerance"):
            training.TrainConfig(selection_tolerance=1.0)

    def test_momentum_is_validated(self):
        with self.assertRaisesRegex(ValueError, "ema_momentum"):
            training.TrainConfig(ema_momentum=1.0)
