"""Next-intent losses (model/intent_loss.py), on both backends."""

import numpy as np
from keras import ops

from datasets.feature_spec import IntentHead
from model.intent_loss import attention_entropy, intent_loss
from tests.test_case import TestCase


class IntentLossTest(TestCase):
    def test_a_head_whose_label_sets_the_weight_is_not_class_weighted(self):
        """Taobao-style weights (view 1, buy 4) on the action-type head would make it a
        class-weighted classifier: its loss is minimised by predicting "buy" far more often
        than buys occur, and its accuracy falls below the majority class (issue 15). An
        unweighted head counts every target position once and is minimised by the label
        frequencies; padding (weight 0) stays out either way."""
        labels = np.array([[2, 2, 2, 3, 0], [2, 2, 2, 2, 3]], dtype="int32")  # 2 = view, 3 = buy
        weights = np.where(labels == 3, 4.0, 1.0).astype("float32")
        weights[0, -1] = 0.0  # padding
        frequencies = np.array([7 / 9, 2 / 9])  # among the 9 target positions

        def loss(head, p_buy):
            logits = np.full(labels.shape + (4,), -30.0, "float32")
            logits[..., 2], logits[..., 3] = np.log(1 - p_buy), np.log(p_buy)
            return float(ops.convert_to_numpy(intent_loss(head, labels, logits, weights)))

        grid = np.linspace(0.01, 0.99, 99)
        weighted = IntentHead("action_type", "single", 4)
        unweighted = IntentHead("action_type", "single", 4, weighted=False)
        best_weighted = grid[np.argmin([loss(weighted, p) for p in grid])]
        best_unweighted = grid[np.argmin([loss(unweighted, p) for p in grid])]
        self.assertAlmostEqual(best_unweighted, frequencies[1], delta=0.01)
        # Weighted: 8 buy-weight against 7 view-weight, so the optimum says "buy" (p > 0.5)
        # although 7 of 9 next actions are views.
        self.assertGreater(best_weighted, 0.5)
        expected = -(7 * np.log(0.7) + 2 * np.log(0.3)) / 9
        self.assertAlmostEqual(loss(unweighted, 0.3), expected, places=4)

    def test_attention_entropy(self):
        """Uniform α scores 1 and one-hot α 0, averaged over target positions only; the
        penalty enters the model's loss with its weight."""
        uniform = np.full((1, 3, 4), 0.25, "float32")
        one_hot = np.zeros((1, 3, 4), "float32")
        one_hot[..., 1] = 1.0
        alpha = np.concatenate([uniform, one_hot], axis=1)  # [1, 6, 4]
        weights = np.array([[1, 1, 0, 1, 1, 1]], "float32")  # one uniform position unlabelled
        self.assertAlmostEqual(float(ops.convert_to_numpy(attention_entropy(alpha, weights))), 2 / 5, places=5)
        # Pooled: the entropy of the mean α of the 5 target positions, [0.1, 0.7, 0.1, 0.1].
        mean = np.array([0.1, 0.7, 0.1, 0.1])
        self.assertAlmostEqual(float(ops.convert_to_numpy(attention_entropy(alpha, weights, pooled=True))),
                               -(mean * np.log(mean)).sum() / np.log(4), places=5)

        x, y = self.random_batch(batch=4)
        model = self.make_model(variant="v3", intent_item_score=False, repeat_score=False)
        out = model(x, training=False)
        plain = float(ops.convert_to_numpy(model.compute_loss(x, y, out, training=False)))
        model.config.alpha_entropy_weight = 0.5
        penalised = float(ops.convert_to_numpy(model.compute_loss(x, y, out, training=False)))
        entropy = float(ops.convert_to_numpy(attention_entropy(out["intent_attention"], y["weight"])))
        self.assertGreater(entropy, 0.5)
        self.assertAlmostEqual(penalised - plain, 0.5 * entropy, places=4)
        model.config.alpha_regularizer = "mutual_information"
        mutual = float(ops.convert_to_numpy(model.compute_loss(x, y, out, training=False)))
        pooled = float(ops.convert_to_numpy(attention_entropy(out["intent_attention"], y["weight"], pooled=True)))
        self.assertAlmostEqual(mutual - plain, 0.5 * (entropy - pooled), places=4)
