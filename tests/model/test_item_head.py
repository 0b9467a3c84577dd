"""Item head losses: chunked == full (values and gradients), label compaction, sampled
softmax consistency, and chunked evaluation at a large catalogue. Runs on TF and JAX."""

import keras
import numpy as np
from keras import ops

from model import evaluation
from model.item_head import ItemHead, chunked_softmax_cross_entropy, full_softmax_cross_entropy
from tests.test_case import TestCase


def value_and_grads(fn, args):
    """(fn(*args), [∂fn/∂arg]) with the backend's own autodiff (tests only)."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        value, grads = jax.value_and_grad(fn, argnums=tuple(range(len(args))))(*args)
        return np.asarray(value), [np.asarray(g, dtype=np.float32) for g in grads]
    if backend == "tensorflow":
        import tensorflow as tf

        args = [tf.convert_to_tensor(a) for a in args]
        with tf.GradientTape() as tape:
            tape.watch(args)
            value = fn(*args)
        grads = tape.gradient(value, args)
        return value.numpy(), [np.asarray(tf.cast(g, "float32")) for g in grads]
    raise NotImplementedError(backend)


def peak_rss_mb():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM")) / 1024


def reset_peak_rss_mb():
    """Resets the process's peak RSS to its current RSS (Linux) and returns it."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    return peak_rss_mb()


class ChunkedSoftmaxTest(TestCase):
    def random_problem(self, rows=13, d=6, items=37, dtype="float32"):
        hidden = self.rng.normal(size=(rows, d)).astype("float32")
        kernel = self.rng.normal(size=(d, items)).astype("float32")
        bias = self.rng.normal(size=(items,)).astype("float32")
        labels = self.rng.integers(0, items, rows).astype("int32")
        weights = (self.rng.uniform(0.5, 2.0, rows) * (self.rng.random(rows) > 0.3)).astype("float32")
        return ops.cast(hidden, dtype), ops.cast(kernel, dtype), ops.cast(bias, dtype), labels, weights

    def naive(self, labels, weights):
        def fn(hidden, kernel, bias):
            return ops.sum(full_softmax_cross_entropy(hidden, kernel, bias, labels) * weights)

        return fn

    def chunked(self, labels, weights, chunk):
        def fn(hidden, kernel, bias):
            return chunked_softmax_cross_entropy(hidden, kernel, bias, labels, weights, chunk)

        return fn

    def test_value_and_gradients_equal_full_softmax(self):
        hidden, kernel, bias, labels, weights = self.random_problem()
        expected, expected_grads = value_and_grads(self.naive(labels, weights), [hidden, kernel, bias])
        # One chunk, chunks that divide |I| unevenly, and single-item chunks.
        for chunk in (64, 37, 8, 5, 1):
            value, grads = value_and_grads(self.chunked(labels, weights, chunk), [hidden, kernel, bias])
            np.testing.assert_allclose(value, expected, rtol=1e-5, err_msg=f"chunk={chunk}")
            for name, got, want in zip(("hidden", "kernel", "bias"), grads, expected_grads):
                np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5, err_msg=f"d/d{name} chunk={chunk}")
        # The gradient is not trivially zero where it should not be.
        self.assertGreater(np.abs(expected_grads[1]).max(), 1e-2)

    def test_extreme_logits_stay_finite(self):
        hidden, kernel, bias, labels, weights = self.random_problem()
        big = ops.convert_to_numpy(bias).copy()
        big[3] = 80.0  # exp overflows float32 without the running max
        big[30] = -80.0
        expected, expected_grads = value_and_grads(self.naive(labels, weights), [hidden, kernel, big])
        value, grads = value_and_grads(self.chunked(labels, weights, 8), [hidden, kernel, big])
        self.assertTrue(np.isfinite(value))
        np.testing.assert_allclose(value, expected, rtol=1e-5)
        for got, want in zip(grads, expected_grads):
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)

    def test_bfloat16_matches_full_softmax_in_bfloat16(self):
        hidden, kernel, bias, labels, weights = self.random_problem(dtype="bfloat16")
        expected, expected_grads = value_and_grads(self.naive(labels, weights), [hidden, kernel, bias])
        value, grads = value_and_grads(self.chunked(labels, weights, 8), [hidden, kernel, bias])
        np.testing.assert_allclose(value, expected, rtol=2e-2)
        for got, want in zip(grads, expected_grads):
            np.testing.assert_allclose(got, want, rtol=5e-2, atol=5e-2)


class ItemHeadLossTest(TestCase):
    def head(self, mode, items=40, d=8, **kwargs):
        head = ItemHead(items, loss_mode=mode, seed=3, **kwargs)
        head.build((None, d))
        return head

    def batch(self, batch=4, seq=6, d=8, items=40, labelled=0.5):
        hidden = self.rng.normal(size=(batch, seq, d)).astype("float32")
        labels = self.rng.integers(2, items, (batch, seq)).astype("int32")
        weights = (self.rng.uniform(0.5, 2.0, (batch, seq)) * (self.rng.random((batch, seq)) < labelled))
        return hidden, labels, weights.astype("float32")

    def loss_and_grads(self, head, hidden, labels, weights, training=True):
        """Loss and gradients w.r.t. (hidden, kernel, bias) through `ItemHead.loss`."""
        kernel = ops.convert_to_numpy(head.kernel)
        bias = np.random.default_rng(11).normal(size=(head.item_vocab_size,)).astype("float32")
        # Padding/OOV: in the full softmax but never sampled; a trained head scores
        # them far down, as here, so that full and sampled losses are comparable.
        bias[:2] = -30.0
        if keras.backend.backend() == "jax":
            from keras.src.backend.common.stateless_scope import StatelessScope

            def fn(hidden, kernel, bias):
                mapping = [(head.kernel, kernel), (head.bias, bias)]
                with StatelessScope(state_mapping=mapping):
                    return head.loss(hidden, labels, weights, training=training)

            return value_and_grads(fn, [hidden, kernel, bias])
        import tensorflow as tf

        head.bias.assign(bias)
        hidden = tf.convert_to_tensor(hidden)
        with tf.GradientTape() as tape:
            tape.watch(hidden)
            value = head.loss(hidden, labels, weights, training=training)
        grads = tape.gradient(value, [hidden, head.kernel, head.bias])
        return value.numpy(), [np.asarray(g) for g in grads]

    def test_chunked_head_equals_full_head(self):
        hidden, labels, weights = self.batch()
        full = self.head("full")
        chunked = self.head("chunked", chunk_size=7)
        chunked.kernel.assign(full.kernel)
        want, want_grads = self.loss_and_grads(full, hidden, labels, weights)
        got, got_grads = self.loss_and_grads(chunked, hidden, labels, weights)
        np.testing.assert_allclose(got, want, rtol=1e-5)
        for g, w in zip(got_grads, want_grads):
            np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-6)

    def test_label_compaction_keeps_value_and_gradients(self):
        """Gathering labelled rows (budget ≥ labelled) or falling back (budget <
        labelled) changes neither the loss nor its gradients."""
        hidden, labels, weights = self.batch(labelled=0.4)
        num_labelled = int((weights > 0).sum())
        reference = self.head("chunked", chunk_size=16)
        want, want_grads = self.loss_and_grads(reference, hidden, labels, weights)
        for budget in (num_labelled, num_labelled + 3, num_labelled - 2, 1):
            head = self.head("chunked", chunk_size=16, max_label_positions=budget)
            head.kernel.assign(reference.kernel)
            got, got_grads = self.loss_and_grads(head, hidden, labels, weights)
            np.testing.assert_allclose(got, want, rtol=1e-5, err_msg=f"budget={budget}")
            for g, w in zip(got_grads, want_grads):
                np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-6, err_msg=f"budget={budget}")

    def test_label_compaction_with_fewer_rows_than_the_budget(self):
        hidden, labels, weights = self.batch(batch=2, seq=3)
        reference = self.head("full")
        want = float(reference.loss(hidden, labels, weights))
        head = self.head("full", max_label_positions=100)
        head.kernel.assign(reference.kernel)
        self.assertAlmostEqual(float(head.loss(hidden, labels, weights)), want, places=5)

    def test_sampled_negatives_come_from_labelled_rows_and_the_catalogue(self):
        head = self.head("sampled", items=1000, num_sampled_negatives=400)
        labels = np.full((40,), 500, "int32")
        labels[::2] = 7  # unlabelled rows carry label 7: never an in-batch negative
        weights = np.where(labels == 500, 1.0, 0.0).astype("float32")
        negatives = ops.convert_to_numpy(head.sample_negatives(labels, weights))
        self.assertEqual(negatives.shape, (400,))
        np.testing.assert_array_equal(negatives[:200], 500)
        self.assertNotIn(7, set(negatives[:200]))
        self.assertGreater(len(set(negatives[200:])), 150)  # uniform over 998 items
        self.assertTrue((negatives >= 2).all() and (negatives < 1000).all())
        # No labelled row at all: in-batch draws fall back to uniform.
        negatives = ops.convert_to_numpy(head.sample_negatives(labels, np.zeros_like(weights)))
        self.assertTrue((negatives >= 2).all())
        self.assertGreater(len(set(negatives[:200])), 100)

    def test_sampled_loss_converges_to_full_softmax(self):
        """With the in-batch half drawn from the prior and a large pool, the log-Q
        corrected sampled loss and its gradient match the full softmax."""
        items, d, rows = 30, 6, 64
        head = self.head("sampled", items=items, d=d, num_sampled_negatives=20000)
        hidden = self.rng.normal(size=(1, rows, d)).astype("float32")
        labels = self.rng.choice(np.arange(2, 8), size=(1, rows)).astype("int32")
        labels[0, :4] = np.arange(8, 12)  # some rarer targets
        weights = np.ones((1, rows), "float32")
        counts = np.bincount(labels.ravel(), minlength=items).astype("float64")
        prior = np.where(np.arange(items) < 2, 0.0, counts / counts.sum())
        head.log_prior.assign(np.log(np.maximum(prior, 1e-30)).astype("float32"))
        full = self.head("full", items=items, d=d)
        full.kernel.assign(head.kernel)
        want, want_grads = self.loss_and_grads(full, hidden, labels, weights)
        got, got_grads = self.loss_and_grads(head, hidden, labels, weights, training=True)
        np.testing.assert_allclose(got, want, rtol=0.03)
        g, w = got_grads[0].ravel(), want_grads[0].ravel()
        self.assertGreater(float(g @ w / np.linalg.norm(g) / np.linalg.norm(w)), 0.98)
        # Outside training the sampled head reports the exact (chunked) loss.
        exact, _ = self.loss_and_grads(head, hidden, labels, weights, training=False)
        np.testing.assert_allclose(exact, want, rtol=1e-5)

    def test_config_round_trip(self):
        head = self.head("chunked", chunk_size=128, max_label_positions=64)
        config = head.get_config()
        self.assertEqual((config["chunk_size"], config["max_label_positions"]), (128, 64))
        self.assertEqual(ItemHead.from_config(config).loss_mode, "chunked")
        with self.assertRaises(ValueError):
            ItemHead(10, loss_mode="softmax")


class ChunkedModelTest(TestCase):
    def test_chunked_model_trains_like_full(self):
        """Same seed, same data: one epoch of chunked training gives the full-softmax
        weights (the gradients are the same)."""
        x, y = self.random_batch(batch=8)
        results = []
        for mode in ("full", "chunked"):
            keras.utils.set_random_seed(4)
            # The item head alone on both sides: the chunked loss has no intent/copy terms.
            model = self.make_model(variant="v0", item_loss=mode, item_chunk_size=9, max_label_positions=24,
                                    intent_item_score=False, repeat_score=False)
            model.compile(optimizer=keras.optimizers.Adam(1e-2))
            history = model.fit(x, y, epochs=2, batch_size=4, shuffle=False, verbose=0).history
            results.append((history["item_loss"], ops.convert_to_numpy(model.item_head.kernel)))
        np.testing.assert_allclose(results[1][0], results[0][0], rtol=1e-4)
        np.testing.assert_allclose(results[1][1], results[0][1], atol=1e-4)


class ChunkedEvaluationTest(TestCase):
    def test_large_catalogue_is_ranked_in_chunks(self):
        """2M items × 256 users would be a 2 GB score block; ranked in 64k-item
        chunks, evaluation stays within a few hundred MB and gives exact ranks."""
        items, d, users = 2_000_000, 4, 256
        head = ItemHead(items)
        head.build((None, d))
        kernel = self.rng.normal(size=(d, items)).astype("float32")
        head.kernel.assign(kernel)
        hidden = self.rng.normal(size=(users, d)).astype("float32")
        targets = self.rng.integers(2, items, users).astype("int32")
        before = reset_peak_rss_mb()
        ranks = evaluation.target_ranks(hidden, targets, head, item_chunk=65536)
        grown = peak_rss_mb() - before
        self.assertLess(grown, 1000, "evaluation built a [users, |I|] block")
        # Exact against numpy on a few users.
        for u in range(3):
            scores = hidden[u] @ kernel[:, 2:]
            target = hidden[u] @ kernel[:, targets[u]]
            self.assertLessEqual(abs(ranks[u] - float((scores > target).sum())), 2)  # float32 rounding
