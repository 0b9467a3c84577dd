"""The intent item score and the copy score (model/item_scores.py), on both backends."""

import keras
import numpy as np
from keras import ops

from datasets.feature_spec import IntentHead
from model.item_scores import IntentItemScore, RepeatScore, item_attribute_tables, mix_with_history
from tests.test_case import TestCase


class ItemScoresTest(TestCase):
    def make_scored_model(self, **overrides):
        model = self.make_model(**{**dict(variant="v3", intent_item_score=True, repeat_score=True,
                                          position_embedding=True, tie_item_embeddings=True,
                                          input_projection="item_plus_dense"), **overrides})
        rng = np.random.default_rng(3)
        tables = {h.name: (rng.integers(0, h.num_classes, 40) if h.kind == "single"
                           else rng.random((40, h.num_classes)) < 0.3) for h in model.intent_heads}
        model.intent_score.set_item_attributes(tables, {h.name: True for h in model.intent_heads})
        return model

    def test_mixture_loss_is_the_cross_entropy_of_the_scores(self):
        """The loss's closed form (catalogue partition + copy mass) equals the softmax
        cross-entropy of `item_scores` over the whole catalogue; OOV targets are skipped."""
        x, y = self.random_batch(batch=4)
        y["item"][0, -2] = 1  # an OOV target: no item loss
        model = self.make_scored_model()
        out = model(x, training=False)
        loss = float(ops.convert_to_numpy(model._scored_item_loss(x, y, out, training=False)))
        scores = ops.convert_to_numpy(model.item_scores(out, x["item"])).astype(np.float64)
        labels = y["item"].reshape(-1)
        weights = y["weight"].reshape(-1) * (labels >= 2)
        top = scores.max(axis=1, keepdims=True)
        lse = np.log(np.exp(scores - top).sum(axis=1)) + top[:, 0]
        expected = ((lse - scores[np.arange(len(labels)), labels]) * weights).sum() / weights.sum()
        self.assertAlmostEqual(loss, expected, places=4)

    def test_sampled_loss_trains_with_both_terms(self):
        x, y = self.random_batch(batch=4)
        model = self.make_scored_model(item_loss="sampled", num_sampled_negatives=16)
        model.compile(optimizer=keras.optimizers.Adam(1e-2))
        history = model.fit(x, y, epochs=3, batch_size=4, verbose=0).history["loss"]
        self.assertTrue(np.all(np.isfinite(history)))
        self.assertLess(history[-1], history[0])

    def test_intent_score_adds_the_log_probability_of_the_items_own_value(self):
        head = IntentHead("genre_single", "single", 5)
        scorer = IntentItemScore([head], item_vocab_size=6)
        scorer.build()
        scorer.set_item_attributes({"genre_single": np.array([0, 0, 2, 3, 3, 0])}, {"genre_single": True})
        logits = np.log(np.array([[1e-6, 1e-6, 0.7, 0.3, 1e-6]], "float32"))
        got = ops.convert_to_numpy(scorer({"genre_single": logits}))[0]
        weight = float(ops.convert_to_numpy(ops.softplus(scorer.weight_logits))[0])
        log_p = np.log(np.array([1e-6, 1e-6, 0.7, 0.3, 1e-6]) / (1.4 + 3e-6 - 0.4))
        np.testing.assert_allclose(got[[2, 3, 4]], weight * log_p[[2, 3, 3]], rtol=1e-4)
        self.assertEqual(got[0], 0.0)  # reserved id / no known value: no term
        self.assertEqual(got[5], 0.0)
        # A head that is not an item attribute contributes nothing.
        scorer.set_item_attributes({"genre_single": np.array([0, 0, 2, 3, 3, 0])}, {"genre_single": False})
        np.testing.assert_allclose(ops.convert_to_numpy(scorer({"genre_single": logits})), 0.0)

    def test_the_intent_item_score_reads_the_history_prior_only_when_told(self):
        x, _ = self.random_batch()
        for reads in (True, False):
            # V1 without the copy score: the prior reaches item scores only through the intent item score.
            model = self.make_scored_model(variant="v1", repeat_score=False, intent_history_prior=True,
                                           intent_score_reads_prior=reads)
            scores = []
            for bias in (0.0, 5.0):
                for head in model.intent_heads:
                    model.get_layer(f"intent_history_{head.name}").gate.bias.assign(np.array([bias, bias], "float32"))
                scores.append(ops.convert_to_numpy(model.item_scores(model(x, training=False), x["item"], True)))
            changed = np.abs(scores[0] - scores[1]).max()
            if reads:
                self.assertGreater(changed, 1e-3)
            else:
                self.assertLess(changed, 1e-5)

    def test_copy_score_lifts_history_items_only(self):
        scores = np.zeros((1, 6), "float32")
        copy = np.array([[0.5, -1e9, 2.0]], "float32")  # the middle position is not copyable
        history = np.array([[4, 5, 4]], "int32")
        got = ops.convert_to_numpy(mix_with_history(scores, copy, history))[0]
        np.testing.assert_allclose(got[[0, 1, 2, 3, 5]], 0.0, atol=1e-6)
        self.assertAlmostEqual(float(got[4]), float(np.logaddexp(0.0, np.logaddexp(0.5, 2.0))), places=5)

    def test_copy_logits_are_causal(self):
        layer = RepeatScore(d_key=4)
        hidden = np.random.default_rng(0).normal(size=(2, 5, 8)).astype("float32")
        valid = np.array([[False, True, True, True, True]] * 2)
        copy = ops.convert_to_numpy(layer(hidden, hidden, valid))
        self.assertTrue(np.all(copy[:, np.triu_indices(5, k=1)[0], np.triu_indices(5, k=1)[1]] < -1e8))
        self.assertTrue(np.all(copy[:, :, 0] < -1e8))  # padding is never copied

    def test_item_attribute_tables_find_the_attributes(self):
        items = np.array([[2, 3, 2, 4], [3, 2, 4, 4]])
        x = {"item": items,
             "kind": np.array([[2, 3, 2, 5], [3, 2, 5, 5]]),  # one value per item: an attribute
             "mood": np.array([[2, 3, 3, 2], [2, 3, 2, 3]])}  # varies per interaction: not one
        heads = [IntentHead("kind", "single", 6), IntentHead("mood", "single", 4)]
        tables, used, consistency = item_attribute_tables(x, heads, item_vocab_size=5)
        self.assertEqual(tables["kind"].tolist(), [0, 0, 2, 3, 5])
        self.assertTrue(used["kind"]) and self.assertEqual(consistency["kind"], 1.0)
        self.assertFalse(used["mood"])

    def test_a_skewed_label_is_not_an_item_attribute(self):
        # 90% of interactions are "view" (2) whatever the item: 90% consistent per item,
        # yet the item explains nothing beyond the global majority.
        rng = np.random.default_rng(0)
        items = rng.integers(2, 50, (200, 10))
        x = {"item": items, "action": np.where(rng.random(items.shape) < 0.9, 2, 3),
             "category": items % 7 + 2}
        heads = [IntentHead("action", "single", 4), IntentHead("category", "single", 9)]
        _, used, consistency = item_attribute_tables(x, heads, item_vocab_size=50)
        self.assertGreaterEqual(consistency["action"], 0.9)
        self.assertFalse(used["action"])
        self.assertTrue(used["category"])

    def test_saving_keeps_the_tables_and_the_scores(self):
        x, _ = self.random_batch(batch=2)
        model = self.make_scored_model()
        restored = self.run_model_saving_test(model, x)
        expected = ops.convert_to_numpy(model.item_scores(model(x, training=False), x["item"], last_only=True))
        got = ops.convert_to_numpy(restored.item_scores(restored(x, training=False), x["item"], last_only=True))
        np.testing.assert_allclose(got, expected, atol=1e-5)
