"""Baselines of the paper's Table 1 (`model.baselines`): contract, causality, cloze, training.

Small on purpose: `make test` runs tests/model on TensorFlow and again on JAX.
"""

import numpy as np
from keras import ops

from datasets.feature_spec import FeatureSpec
from model import evaluation, masks
from model.baselines import BASELINES, BaselineConfig, build_baseline
from model.baselines.cloze_masking import ClozeMasking
from model.baselines.random_window_mask import RandomWindowMask
from model.baselines.transact import prefix_max
from tests.test_case import FEATURE_SPEC, TestCase

CAUSAL = ("lstm", "gru", "transformer", "sasrec", "transact")
MULTITASK = ("lstm", "gru", "transformer", "transact")
HEADS = {"action_type", "item_type", "genre"}


class BaselinesTest(TestCase):
    def make_baseline(self, name, **overrides):
        kwargs = dict(d_model=16, num_heads=2, num_layers=1, dropout=0.0,
                      action_embedding_dim=4, latest_k=3)
        kwargs.update(overrides)
        return build_baseline(name, FEATURE_SPEC, **kwargs)

    def test_contract_and_causality(self):
        """Every baseline: documented outputs and heads; the causal ones ignore the future."""
        x, _ = self.random_batch(batch=3, lengths=[self.seq_len, 7, 4])
        for name in BASELINES:
            model = self.make_baseline(name)
            base = model(model.select_inputs(x), training=False)
            self.assertEqual(tuple(base["item_hidden"].shape), (3, self.seq_len, 16), name)
            heads = {h.name for h in model.intent_heads}
            self.assertEqual(heads, HEADS if name in MULTITASK else set(), name)
            for head in heads:
                probs = ops.convert_to_numpy(base[f"intent_{head}"])
                self.assertTrue(np.isfinite(probs).all(), name)
            self.assertEqual(model.input_names[0], "item")
            if name == "transact":
                self.assertEqual(set(model.input_names), {"item", "time", "action_type"})
            else:
                self.assertEqual(model.input_names, ["item"], f"{name} must take item ids only")
            if name not in CAUSAL:
                continue
            k = self.seq_len - 4
            changed = {key: value.copy() for key, value in x.items()}
            changed["item"][:, k + 1:] = self.rng.integers(2, 40, changed["item"][:, k + 1:].shape)
            changed["action_type"][:, k + 1:] = self.rng.integers(2, 6, changed["action_type"][:, k + 1:].shape)
            changed["time"][:, k + 1:] += 0.001
            out = model(model.select_inputs(changed), training=False)
            for key in base:
                a, b = ops.convert_to_numpy(base[key]), ops.convert_to_numpy(out[key])
                np.testing.assert_allclose(a[:, : k + 1], b[:, : k + 1], atol=1e-5, err_msg=f"{name}/{key}")
            diff = np.abs(ops.convert_to_numpy(base["item_hidden"])[0, k + 1:]
                          - ops.convert_to_numpy(out["item_hidden"])[0, k + 1:])
            self.assertGreater(diff.max(), 1e-4, f"{name}: the change must be visible after k")

    def test_training_steps_reduce_the_loss_and_evaluate(self):
        x, y = self.random_batch(batch=8)
        for name in BASELINES:
            # BERT4Rec: mask only the last item, so that epochs share one loss.
            model = self.make_baseline(name, last_item_mask_prob=1.0)
            model.compile(optimizer="adam")
            history = model.fit(model.select_inputs(x), y, epochs=3, batch_size=8, verbose=0)
            losses = history.history["loss"]
            self.assertTrue(np.isfinite(losses).all(), name)
            self.assertLess(losses[-1], losses[0], name)
            y_eval = {key: value for key, value in y.items()}
            metrics = evaluation.evaluate(model, x, y_eval, batch_size=4)
            self.assertTrue(0.0 <= metrics["ndcg@10"] <= 1.0, name)
            top = model.recommend(x, k=5)
            self.assertEqual(tuple(top["top_k_ids"].shape), (8, 5))
            self.assertTrue((ops.convert_to_numpy(top["top_k_ids"]) >= 2).all(), name)
            # The item head is attached after the functional init: its weights must
            # still be trained (Keras 3.6 drops such layers unless tracked; model.intentrec.track_layer).
            trainable = {id(v) for v in model.trainable_variables}
            head_vars = model.item_head.trainable_variables
            self.assertTrue(head_vars and all(id(v) in trainable for v in head_vars), name)
            bias = ops.convert_to_numpy(model.item_head.bias)
            self.assertGreater(np.abs(bias).max(), 0.0, f"{name}: the item-head bias must have trained")

    def test_bert4rec_cloze_and_inference_input(self):
        layer = ClozeMasking(mask_id=40, mask_prob=0.3, last_item_mask_prob=0.0, seed=3)
        items = np.where(np.arange(12)[None, :] >= 4, 5, 0).repeat(64, axis=0).astype("int32")  # 8 real each
        ids, masked = (ops.convert_to_numpy(t) for t in layer(items, training=True))
        self.assertTrue((masked[:, :4] == 0).all(), "padding is never masked")
        self.assertTrue(((ids == 40) == (masked > 0)).all())
        self.assertAlmostEqual(masked[:, 4:].mean(), 0.3, delta=0.06)
        ids, masked = (ops.convert_to_numpy(t) for t in layer(items, training=False))
        np.testing.assert_array_equal(ids[:, :-1], items[:, 1:])  # shifted left ...
        self.assertTrue((ids[:, -1] == 40).all())  # ... with [MASK] appended
        self.assertEqual(masked.sum(), 0)
        last = ClozeMasking(mask_id=40, mask_prob=0.3, last_item_mask_prob=1.0, seed=3)
        _, masked = (ops.convert_to_numpy(t) for t in last(items, training=True))
        self.assertTrue((masked[:, -1] == 1).all() and masked[:, :-1].sum() == 0)

        # Loss targets: the original items at masked positions, with their own weights.
        model = self.make_baseline("bert4rec")
        x, y = self.random_batch(batch=2, lengths=[self.seq_len, 6])
        y_pred = {"cloze_mask": np.ones((2, self.seq_len), "float32")}
        labels, weights = (ops.convert_to_numpy(t) for t in model.item_targets(x, y, y_pred))
        np.testing.assert_array_equal(labels, x["item"])
        valid = x["item"] > 0
        self.assertTrue((weights[~valid] == 0).all() and (weights[valid] > 0).all())
        np.testing.assert_allclose(weights[0, 1:], y["weight"][0, :-1], rtol=1e-6)
        # BERT4Rec is bidirectional: earlier outputs see later items (not causal, by design).
        changed = {k: v.copy() for k, v in x.items()}
        changed["item"][0, -3] = 2 if changed["item"][0, -3] != 2 else 3
        a = ops.convert_to_numpy(model({"item": x["item"]}, training=False)["item_hidden"])
        b = ops.convert_to_numpy(model({"item": changed["item"]}, training=False)["item_hidden"])
        self.assertGreater(np.abs(a[0, :-4] - b[0, :-4]).max(), 1e-5)

    def test_transact_window_mask_and_pooling(self):
        x, _ = self.random_batch(batch=4)
        valid = masks.padding_mask(x["item"])
        layer = RandomWindowMask(window=5.0, seed=1)
        causal = ops.convert_to_numpy(masks.causal_mask(valid))
        np.testing.assert_array_equal(ops.convert_to_numpy(layer(x["time"], valid, training=False)), causal)
        hidden_any = False
        for _ in range(5):
            trained = ops.convert_to_numpy(layer(x["time"], valid, training=True))
            self.assertFalse((trained & ~causal).any(), "training mask must stay causal")
            self.assertTrue(np.diagonal(trained, axis1=1, axis2=2).all(), "the latest action is always kept")
            hidden_any |= bool((causal & ~trained).any())
        self.assertTrue(hidden_any, "training must hide some recent actions")

        values = self.rng.normal(size=(4, self.seq_len, 3)).astype("float32")
        got = ops.convert_to_numpy(prefix_max(ops.convert_to_tensor(values), valid, values.shape[1]))
        v = ops.convert_to_numpy(valid)
        for b in range(4):
            for k in range(self.seq_len):
                rows = values[b, : k + 1][v[b, : k + 1]]
                expected = rows.max(axis=0) if len(rows) else np.zeros(3)
                np.testing.assert_allclose(got[b, k], expected, atol=1e-6)

    def test_tied_head_scores_with_the_item_embeddings(self):
        model = self.make_baseline("sasrec")
        table = ops.convert_to_numpy(model.get_layer("input_features").item_embedding.embeddings)
        np.testing.assert_allclose(ops.convert_to_numpy(model.item_head.kernel), table.T)
        self.assertEqual(len({id(w) for w in model.weights}), len(model.weights))
        bert = self.make_baseline("bert4rec")
        self.assertEqual(tuple(bert.item_head.kernel.shape), (16, FEATURE_SPEC.item_vocab_size))

    def test_save_and_rebuild(self):
        x, _ = self.random_batch(batch=2)
        for name in ("bert4rec", "transact"):
            model = self.make_baseline(name)
            self.run_model_saving_test(model, model.select_inputs(x))

    def test_data_without_timestamps_or_metadata(self):
        """A plain item-sequence spec (the `sequences` adapter): every baseline builds and runs;
        TransAct falls back to the item alone and to a window in positions."""
        spec = FeatureSpec(max_len=self.seq_len, item_vocab_size=40, has_timestamps=False)
        x, _ = self.random_batch(batch=2)
        x = {"item": x["item"], "time": np.where(x["item"] > 0, np.arange(self.seq_len), 0).astype("float32")}
        for name in BASELINES:
            model = build_baseline(name, spec, d_model=16, num_layers=1, latest_k=3)
            self.assertEqual(model.intent_heads, [])
            out = model(model.select_inputs(x), training=True)
            self.assertTrue(np.isfinite(ops.convert_to_numpy(out["item_hidden"])).all(), name)
            if name == "transact":
                self.assertEqual(model.input_names, ["item", "time"])
                self.assertEqual(model.get_layer("random_window_mask").window, 5.0)

    def test_config_from_feature_spec(self):
        config = BaselineConfig.from_feature_spec(FEATURE_SPEC, intents=["genre"])
        self.assertEqual([h.name for h in config.intents], ["genre"])
        with self.assertRaises(ValueError):
            BaselineConfig.from_feature_spec(FEATURE_SPEC, intents=["nope"])
        with self.assertRaises(ValueError):
            build_baseline("nope", FEATURE_SPEC)
