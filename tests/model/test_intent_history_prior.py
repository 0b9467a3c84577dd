import numpy as np
from keras import ops

from model.intent_history_prior import IntentHistoryPrior
from tests.test_case import TestCase


class IntentHistoryPriorTest(TestCase):
    def make_inputs(self, kind):
        hidden = self.rng.normal(size=(2, 6, 8)).astype("float32")
        valid = np.array([[0, 0, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1]], bool)
        if kind == "single":
            values = np.array([[0, 0, 3, 4, 3, 2], [2, 2, 5, 5, 5, 4]], "int32")
        else:
            values = (self.rng.random((2, 6, 5)) < 0.4).astype("float32") * valid[..., None]
        return hidden, values, valid

    def reference(self, layer, hidden, values, valid, kind):
        """The docstring's formula, one position at a time in numpy."""
        gates = np.logaddexp(0.0, hidden @ ops.convert_to_numpy(layer.gate.kernel)
                             + ops.convert_to_numpy(layer.gate.bias))
        gamma = 1.0 / (1.0 + np.exp(-float(ops.convert_to_numpy(layer.decay_logit))))
        onehot = np.eye(layer.num_classes)[values] if kind == "single" else values
        onehot = onehot * valid[..., None]
        out = np.zeros((*values.shape[:2], layer.num_classes))
        for b in range(values.shape[0]):
            for k in range(values.shape[1]):
                w = np.array([gamma ** (k - j) * valid[b, j] for j in range(k + 1)])
                hist = (w[:, None] * onehot[b, : k + 1]).sum(0) / max(w.sum(), 1e-6)
                out[b, k] = gates[b, k, 0] * onehot[b, k] + gates[b, k, 1] * hist
        return out

    def test_matches_the_formula(self):
        for kind, classes in (("single", 6), ("multi", 5)):
            layer = IntentHistoryPrior(classes, kind, decay=0.6)
            hidden, values, valid = self.make_inputs(kind)
            out = ops.convert_to_numpy(layer(hidden, values, valid))
            self.assertEqual(out.shape, (2, 6, classes))
            np.testing.assert_allclose(out, self.reference(layer, hidden, values, valid, kind), atol=1e-5,
                                       err_msg=kind)

    def test_lifts_the_current_value_most_and_ignores_padding(self):
        layer = IntentHistoryPrior(6, "single")
        hidden, values, valid = self.make_inputs("single")
        out = ops.convert_to_numpy(layer(hidden, values, valid))
        # Padded positions (row 0, positions 0-1) and the padding id get no bonus.
        np.testing.assert_allclose(out[0, :2], 0.0)
        np.testing.assert_allclose(out[..., 0], 0.0)
        # At every real position the current value gets the largest bonus.
        for b, k in zip(*np.nonzero(valid)):
            self.assertEqual(out[b, k].argmax(), values[b, k])
        # Row 1, last position: 5 (three steps back) outranks 2, further back.
        self.assertGreater(out[1, 5, 5], out[1, 5, 2])
        self.assertGreater(out[1, 5, 2], out[1, 5, 1])

    def test_causal(self):
        layer = IntentHistoryPrior(6, "single")
        hidden, values, valid = self.make_inputs("single")
        base = ops.convert_to_numpy(layer(hidden, values, valid))
        changed = values.copy()
        changed[:, 4:] = 1
        out = ops.convert_to_numpy(layer(hidden, changed, valid))
        np.testing.assert_allclose(out[:, :4], base[:, :4], atol=1e-6)
        self.assertGreater(np.abs(out[:, 4:] - base[:, 4:]).max(), 1e-3)

    def test_model_with_the_prior_predicts_the_current_intent_and_saves(self):
        model = self.make_model(variant="v3", intent_history_prior=True)
        names = {layer.name for layer in model.layers}
        self.assertTrue({"intent_history_action_type", "intent_history_item_type", "intent_history_genre"} <= names)
        x, _ = self.random_batch()
        x["action_type"][:, -1] = 4
        prior = model.get_layer("intent_history_action_type")
        prior.gate.bias.assign(np.array([20.0, 0.0], "float32"))  # the current value dominates the head
        probs = ops.convert_to_numpy(model(x, training=False)["intent_action_type"])[:, -1]
        np.testing.assert_array_equal(probs.argmax(axis=1), 4)
        x["action_type"][:, -1] = 3
        probs = ops.convert_to_numpy(model(x, training=False)["intent_action_type"])[:, -1]
        np.testing.assert_array_equal(probs.argmax(axis=1), 3)
        self.run_model_saving_test(model, x)

