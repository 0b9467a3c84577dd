import keras
import numpy as np
from keras import ops

from model import IntentRec, masks
from model.attribute_attention_bias import AttributeAttentionBias
from model.intent_loss import multi_label_loss
from model.short_term_encoder import ShortTermEncoder
from tests.test_case import TestCase


class IntentRecTest(TestCase):
    def test_variants_have_the_documented_outputs(self):
        x, _ = self.random_batch()
        heads = {"intent_action_type", "intent_item_type", "intent_genre"}
        logits = {"intent_logits_action_type", "intent_logits_item_type", "intent_logits_genre"}
        # Every head's label is an input here, so every head has a history prior, and the
        # intent item score reads the heads without it (`intent_score_reads_prior=False`).
        logits |= {"head_logits_action_type", "head_logits_item_type", "head_logits_genre"}
        expected = {
            "v0": {"item_hidden"},
            "v1": {"item_hidden"} | heads | logits,
            "v2": {"item_hidden", "intent_embedding", "intent_attention"} | heads | logits,
            "v3": {"item_hidden", "intent_embedding", "intent_attention"} | heads | logits,
        }
        for variant, keys in expected.items():
            out = self.make_model(variant=variant)(x)
            self.assertEqual(set(out), keys, variant)
            self.assertEqual(tuple(out["item_hidden"].shape), (4, self.seq_len, 16))
        out = self.make_model(variant="v3", intents=["genre"])(x)
        self.assertEqual(tuple(out["intent_attention"].shape), (4, self.seq_len, 1))
        self.assertNotIn("intent_action_type", out)

    def test_only_v3_has_a_short_term_encoder(self):
        for variant in ("v0", "v1", "v2", "v3"):
            names = {layer.name for layer in self.make_model(variant=variant).layers}
            self.assertEqual("short_term_encoder" in names, variant == "v3")
            self.assertEqual("item_encoder" in names, variant in ("v2", "v3"))

    def test_causality_every_output(self):
        """Changing interactions k+1..n changes no output at positions <= k."""
        for option in ({}, {"item_reads_intent_hidden": True}, {"attribute_attention_bias": True}):
            with self.subTest(**option):
                model = self.make_model(variant="v3", **option)
                for layer in model.layers:  # its key starts at zero: make the bias non-zero
                    if isinstance(layer, AttributeAttentionBias):
                        layer.key.assign(self.rng.normal(size=tuple(layer.key.shape)).astype("float32"))
                self._check_causality(model)

    def _check_causality(self, model):
        x, _ = self.random_batch(batch=3, lengths=[self.seq_len, 7, 4])
        base = model(x, training=False)
        for k in (self.seq_len - 6, self.seq_len - 3, self.seq_len - 2):
            changed = {key: value.copy() for key, value in x.items()}
            future = slice(k + 1, None)
            changed["item"][:, future] = self.rng.integers(2, 40, changed["item"][:, future].shape)
            changed["action_type"][:, future] = self.rng.integers(2, 6, changed["action_type"][:, future].shape)
            changed["genre"][:, future] = 1.0 - changed["genre"][:, future]
            changed["duration"][:, future] += 5.0
            changed["time"][:, future] += 0.001  # still non-decreasing
            out = model(changed, training=False)
            for key in base:
                a = ops.convert_to_numpy(base[key])[:, : k + 1]
                b = ops.convert_to_numpy(out[key])[:, : k + 1]
                np.testing.assert_allclose(a, b, atol=1e-5, err_msg=f"{key} at k={k}")
                # ...and the change is visible after k, so the test can fail.
                if key == "item_hidden":
                    diff = np.abs(ops.convert_to_numpy(base[key])[0, k + 1 :] - ops.convert_to_numpy(out[key])[0, k + 1 :])
                    self.assertGreater(diff.max(), 1e-4)

    def test_causality_short_term_encoder(self):
        encoder = ShortTermEncoder(d_short=8, num_heads=2, window=1.0)
        x, _ = self.random_batch(batch=2, lengths=[self.seq_len, 5])
        valid = masks.padding_mask(x["item"])
        features = self.rng.normal(size=(2, self.seq_len, 6)).astype("float32")
        base = ops.convert_to_numpy(encoder(features, x["time"], valid))
        k = self.seq_len - 4
        changed = features.copy()
        changed[:, k + 1 :] += 3.0
        out = ops.convert_to_numpy(encoder(changed, x["time"], valid))
        np.testing.assert_allclose(base[:, : k + 1], out[:, : k + 1], atol=1e-5)
        self.assertGreater(np.abs(base[0, k + 1 :] - out[0, k + 1 :]).max(), 1e-4)

    def test_short_term_window_rule(self):
        """Key i is in query k's window iff real, i <= k and T_k - T_i <= H (Eq. 1)."""
        x, _ = self.random_batch(batch=6)
        valid = ops.convert_to_numpy(masks.padding_mask(x["item"]))
        for window in (0.0, 0.5, 7.0):
            got = ops.convert_to_numpy(masks.time_window_mask(masks.padding_mask(x["item"]), x["time"], window))
            for b in range(6):
                for k in range(self.seq_len):
                    for i in range(self.seq_len):
                        expected = i == k or (
                            valid[b, i] and i <= k and x["time"][b, k] - x["time"][b, i] <= window
                        )
                        self.assertEqual(bool(got[b, k, i]), expected, (window, b, k, i))
            # The window is a contiguous run ending at k for real k (pos = argmin rule).
            for b in range(6):
                for k in np.flatnonzero(valid[b]):
                    row = np.flatnonzero(got[b, k])
                    self.assertEqual(row[-1], k)
                    np.testing.assert_array_equal(row, np.arange(row[0], k + 1))

    def test_short_term_output_ignores_interactions_before_the_window(self):
        encoder = ShortTermEncoder(d_short=8, num_heads=2, window=1.0)
        n = self.seq_len
        item = np.full((1, n), 5, "int32")
        time = np.arange(n, dtype="float32")[None] * 0.6  # window 1.0 → the last 2 positions
        features = self.rng.normal(size=(1, n, 6)).astype("float32")
        valid = masks.padding_mask(item)
        base = ops.convert_to_numpy(encoder(features, time, valid))
        changed = features.copy()
        changed[:, : n - 2] += 5.0
        out = ops.convert_to_numpy(encoder(changed, time, valid))
        np.testing.assert_allclose(base[:, -1], out[:, -1], atol=1e-5)
        self.assertGreater(np.abs(base[:, -3] - out[:, -3]).max(), 1e-4)

    def test_count_window_without_timestamps(self):
        valid = ops.ones((1, 6), "bool")
        got = ops.convert_to_numpy(masks.count_window_mask(valid, 2))[0]
        expected = np.array([[1 if 0 <= k - i < 2 else 0 for i in range(6)] for k in range(6)], bool)
        np.testing.assert_array_equal(got, expected)

    def test_padding_is_never_attended(self):
        model = self.make_model(variant="v3")
        x, _ = self.random_batch(batch=2, lengths=[5, 5])
        base = ops.convert_to_numpy(model(x, training=False)["item_hidden"])
        changed = {key: value.copy() for key, value in x.items()}
        pad = slice(0, self.seq_len - 5)
        changed["action_type"][:, pad] = 3
        changed["duration"][:, pad] = 9.0
        changed["genre"][:, pad] = 1.0
        out = ops.convert_to_numpy(model(changed, training=False)["item_hidden"])
        np.testing.assert_allclose(base[:, -5:], out[:, -5:], atol=1e-5)

    def test_attention_weights_sum_to_one(self):
        x, _ = self.random_batch()
        alpha = ops.convert_to_numpy(self.make_model(variant="v2")(x)["intent_attention"])
        np.testing.assert_allclose(alpha.sum(-1), 1.0, atol=1e-5)
        self.assertTrue((alpha > 0).all())

    def test_head_activations(self):
        x, _ = self.random_batch()
        out = self.make_model(variant="v3")(x)
        np.testing.assert_allclose(ops.convert_to_numpy(out["intent_action_type"]).sum(-1), 1.0, atol=1e-5)
        genre = ops.convert_to_numpy(out["intent_genre"])
        self.assertTrue(((genre > 0) & (genre < 1)).all())
        self.assertGreater(np.abs(genre.sum(-1) - 1.0).max(), 1e-3)  # sigmoid, not softmax

    def test_loss_ignores_positions_with_zero_weight(self):
        model = self.make_model(variant="v3")
        x, y = self.random_batch()
        y_pred = model(x, training=False)
        base = float(model.compute_loss(x, y, y_pred))
        changed = {key: value.copy() for key, value in y.items()}
        off = y["weight"] == 0
        changed["item"][off] = 3
        changed["action_type"][off] = 4
        changed["genre"][off] = 1.0
        self.assertAlmostEqual(base, float(model.compute_loss(x, changed, y_pred)), places=5)
        # A weighted position does move the loss.
        on = np.argwhere(y["weight"] > 0)[0]
        changed["item"][tuple(on)] = (y["item"][tuple(on)] + 1) % 38 + 2
        self.assertNotAlmostEqual(base, float(model.compute_loss(x, changed, y_pred)), places=5)

    def test_loss_is_duration_weighted(self):
        model = self.make_model(variant="v0")
        x, y = self.random_batch(batch=2)
        y_pred = model(x, training=False)
        self.assertAlmostEqual(float(model.compute_loss(x, y, y_pred)), self.item_loss(model, x, y, y_pred), places=4)
        # Without the intent and copy terms the loss is the item head's alone.
        plain = self.make_model(variant="v0", intent_item_score=False, repeat_score=False)
        y_pred = plain(x, training=False)
        self.assertFalse(plain.has_item_score_terms)
        self.assertAlmostEqual(float(plain.compute_loss(x, y, y_pred)), self.item_loss(plain, x, y, y_pred), places=4)

    @staticmethod
    def item_loss(model, x, y, y_pred):
        """The duration-weighted cross-entropy of the model's full-catalogue item scores."""
        logits = ops.convert_to_numpy(model.item_scores(y_pred, x["item"])).astype("float64")
        logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
        labels = y["item"].reshape(-1)
        ce = -logp[np.arange(len(labels)), labels]
        weight = y["weight"].reshape(-1) * (labels >= 2)  # OOV targets carry no item loss
        return (ce * weight).sum() / weight.sum()

    def test_total_loss_is_item_plus_lambda_intents(self):
        model = self.make_model(variant="v3", intent_loss_weight=0.0)
        x, y = self.random_batch()
        y_pred = model(x, training=False)
        item_only = self.item_loss(model, x, y, y_pred)
        self.assertAlmostEqual(float(model.compute_loss(x, y, y_pred)), item_only, places=4)
        model.config.intent_loss_weight = 2.0
        self.assertGreater(float(model.compute_loss(x, y, y_pred)), item_only + 0.1)

    def test_detached_intents_take_no_item_loss_gradient(self):
        # λ = 0: only the item loss trains. It reaches the intent heads through Z, the copy
        # gate and the intent item score, unless detach_intents stops it there.
        x, y = self.random_batch(batch=8)
        for detach in (False, True):
            with self.subTest(detach_intents=detach):
                model = self.make_model(variant="v3", intent_loss_weight=0.0, detach_intents=detach)
                kernel = model.get_layer("intent_head_genre").kernel
                before = ops.convert_to_numpy(kernel).copy()
                model.compile(optimizer=keras.optimizers.Adam(5e-3))
                model.fit(x, y, epochs=1, batch_size=8, verbose=0)
                moved = np.abs(ops.convert_to_numpy(kernel) - before).max()
                if detach:
                    self.assertEqual(moved, 0.0)
                else:
                    self.assertGreater(moved, 1e-4)

    def test_item_encoder_reading_the_intent_hidden_state(self):
        # λ = 0, intents detached, no item score terms: the item loss can reach the intent
        # encoder only through the residual that `item_reads_intent_hidden` adds.
        x, y = self.random_batch(batch=8)
        for reads in (False, True):
            with self.subTest(item_reads_intent_hidden=reads):
                model = self.make_model(variant="v3", intent_loss_weight=0.0, detach_intents=True,
                                        intent_item_score=False, repeat_score=False,
                                        item_reads_intent_hidden=reads)
                kernel = model.get_layer("intent_encoder").trainable_weights[0]
                before = ops.convert_to_numpy(kernel).copy()
                model.compile(optimizer=keras.optimizers.Adam(5e-3))
                model.fit(x, y, epochs=1, batch_size=8, verbose=0)
                moved = np.abs(ops.convert_to_numpy(kernel) - before).max()
                if reads:
                    self.assertGreater(moved, 1e-4)
                else:
                    self.assertEqual(moved, 0.0)
        self.run_model_saving_test(model, x)  # causality: test_causality_every_output

    def test_multi_label_positive_only_loss(self):
        model = self.make_model(variant="v1", multi_label_loss="positive_only")
        labels = np.array([[[0, 0, 1, 0, 1, 0, 0]]], "float32")
        logits = np.array([[[9, 9, 2.0, -50, -1.0, 50, 50]]], "float32")
        got = float(ops.convert_to_numpy(multi_label_loss(labels, logits, model.config.multi_label_loss))[0, 0])
        expected = (np.log1p(np.exp(-2.0)) + np.log1p(np.exp(1.0))) / 2  # negatives do not count
        self.assertAlmostEqual(got, expected, places=5)

    def test_fit_reduces_loss(self):
        model = self.make_model(variant="v3")
        model.compile(optimizer=keras.optimizers.Adam(5e-3))
        x, y = self.random_batch(batch=16)
        history = model.fit(x, y, epochs=8, batch_size=8, verbose=0).history
        self.assertLess(history["loss"][-1], history["loss"][0])
        for key in ("item_loss", "intent_loss_action_type", "intent_loss_genre"):
            self.assertTrue(np.isfinite(history[key]).all())

    def test_attention_is_scaled_dot_product_softmax(self):
        # Keras 3.6's TF attention squares its logits; ours must match the definition.
        from model.transformer_encoder import dot_product_attention

        q, k, v = (self.rng.normal(size=(2, 5, 2, 4)).astype("float32") for _ in range(3))
        mask = np.tril(np.ones((5, 5), bool))[None, None].repeat(2, axis=0)
        got = ops.convert_to_numpy(dot_product_attention(q, k, v, mask))
        logits = np.einsum("btnh,bsnh->bnts", q, k) / 2.0
        logits = np.where(mask, logits, -np.inf)
        probs = np.exp(logits - logits.max(-1, keepdims=True))
        probs /= probs.sum(-1, keepdims=True)
        np.testing.assert_allclose(got, np.einsum("bnts,bsnh->btnh", probs, v), atol=1e-5)

    def test_item_head_is_trained(self):
        # The item head lives outside the functional graph; Keras 3.6 would leave it
        # out of trainable_variables (and frozen at its initial weights) if the model
        # did not track it explicitly.
        for tied in (False, True):
            with self.subTest(tie_item_embeddings=tied):
                self._check_item_head_trains(self.make_model(variant="v3", tie_item_embeddings=tied), tied)

    def _check_item_head_trains(self, model, tied):
        # Tied: the kernel is the (transposed) input embedding table, owned by the graph.
        weight = model.item_head._tied_embedding.embeddings if tied else model.item_head.kernel
        self.assertTrue(any(v is weight for v in model.trainable_variables))
        self.assertTrue(any(v is model.item_head.bias for v in model.trainable_variables))
        kernel_before = ops.convert_to_numpy(model.item_head.kernel).copy()
        model.compile(optimizer=keras.optimizers.Adam(5e-3))
        x, y = self.random_batch(batch=8)
        model.fit(x, y, epochs=1, batch_size=8, verbose=0)
        self.assertGreater(np.abs(ops.convert_to_numpy(model.item_head.kernel) - kernel_before).max(), 1e-4)

    def test_sampled_item_loss_trains(self):
        model = self.make_model(variant="v0", item_loss="sampled", num_sampled_negatives=16)
        model.compile(optimizer=keras.optimizers.Adam(5e-3))
        x, y = self.random_batch(batch=16)
        full_before = float(model.item_head.loss(model(x)["item_hidden"], y["item"], y["weight"]))
        model.fit(x, y, epochs=15, batch_size=8, verbose=0)
        full_after = float(model.item_head.loss(model(x)["item_hidden"], y["item"], y["weight"]))
        self.assertLess(full_after, full_before)

    def test_sampled_loss_masks_accidental_hits(self):
        model = self.make_model(variant="v0", item_loss="sampled", num_sampled_negatives=64,
                                tie_item_embeddings=False)
        hidden = self.rng.normal(size=(1, 1, 16)).astype("float32")
        labels = np.array([[5]], "int32")
        weights = np.ones((1, 1), "float32")
        # Make item 5 dominate: without masking, its own copies among negatives would
        # keep the loss near log(1 + #copies); with masking it goes to ~0.
        kernel = np.zeros((16, 40), "float32")
        kernel[:, 5] = hidden[0, 0] * 10
        model.item_head.kernel.assign(kernel)
        loss = float(model.item_head.loss(hidden, labels, weights, training=True))
        self.assertLess(loss, 1e-3)

    def test_recommend(self):
        model = self.make_model(variant="v3", top_k=5)
        x, _ = self.random_batch(batch=3, lengths=[self.seq_len, 3, 1])
        x["item"][2] = 0  # empty history
        counts = np.zeros(40)
        counts[[7, 9, 11]] = [50, 100, 75]
        model.item_head.set_prior(counts)
        out = model.recommend(x, exclude_seen=True)
        ids = ops.convert_to_numpy(out["top_k_ids"])
        self.assertEqual(ids.shape, (3, 5))
        self.assertTrue((ids >= 2).all())
        np.testing.assert_array_equal(ids[2, :3], [9, 11, 7])  # popularity for an empty history
        for row in range(2):
            self.assertFalse(set(ids[row]) & set(x["item"][row][x["item"][row] > 0]))
        self.assertEqual(tuple(out["intent_attention"].shape), (3, 3))
        scores = ops.convert_to_numpy(out["top_k_scores"])
        self.assertTrue((np.diff(scores, axis=1) <= 0).all())

    def test_recommend_excludes_more_seen_items(self):
        model = self.make_model(variant="v3", top_k=5)
        x, _ = self.random_batch(batch=2, lengths=[3, 1])
        x["item"][1] = 0  # empty history: the popularity answer, filtered too
        counts = np.zeros(40)
        counts[[7, 9, 11]] = [50, 100, 75]
        model.item_head.set_prior(counts)
        plain = ops.convert_to_numpy(model.recommend(x, exclude_seen=True)["top_k_ids"])
        seen = np.zeros((2, 3), "int32")  # 0-padded
        seen[0, :2] = plain[0, :2]
        seen[1] = [9, 11, 0]
        ids = ops.convert_to_numpy(model.recommend(x, exclude_seen=True, seen=seen)["top_k_ids"])
        np.testing.assert_array_equal(ids[0, :3], plain[0, 2:])
        self.assertEqual(ids[1, 0], 7)
        self.assertFalse(set(ids[0]) & set(x["item"][0][x["item"][0] > 0]))

    def test_select_inputs_rejects_missing_and_drops_extra(self):
        model = self.make_model(variant="v1")
        x, _ = self.random_batch()
        self.assertEqual(set(model.select_inputs({**x, "extra": 1})), set(x))
        with self.assertRaisesRegex(KeyError, "genre"):
            model.select_inputs({k: v for k, v in x.items() if k != "genre"})

    def test_saving(self):
        x, _ = self.random_batch()
        for variant in ("v0", "v3"):
            model = self.make_model(variant=variant)
            model.item_head.set_prior(np.arange(40))
            restored = self.run_model_saving_test(model, x)
            self.assertIsInstance(restored, IntentRec)
            np.testing.assert_allclose(
                ops.convert_to_numpy(restored.item_head.log_prior), ops.convert_to_numpy(model.item_head.log_prior)
            )

    def test_config_validation(self):
        with self.assertRaisesRegex(ValueError, "variant"):
            self.make_config(variant="v9")
        with self.assertRaisesRegex(ValueError, "unknown intent"):
            self.make_config(intents=["nope"])
