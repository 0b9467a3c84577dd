import types

import numpy as np

from model import evaluation
from tests.test_case import TestCase


def brute_force_ranks(hidden, targets, kernel, bias, history=None):
    """Expected rank under random tie-breaking, over items 2.. (pad/OOV never ranked)."""
    scores = hidden @ kernel + bias
    ranks = []
    for b, target in enumerate(targets):
        candidates = np.arange(2, kernel.shape[1])
        if history is not None:
            if target in history[b]:
                ranks.append(evaluation.MISS)
                continue
            candidates = np.setdiff1d(candidates, history[b])
        s, t = scores[b, candidates], scores[b, target]
        ranks.append(np.sum(s > t) + (np.sum(s == t) - 1) / 2.0)
    return np.asarray(ranks)


class EvaluationTest(TestCase):
    def make_head(self, num_items, d=8, quantise=False):
        kernel = self.rng.normal(size=(d, num_items)).astype("float32")
        if quantise:  # coarse values make many exact ties
            kernel = np.round(kernel).astype("float32")
        bias = np.zeros(num_items, "float32")
        return types.SimpleNamespace(kernel=kernel, bias=bias, item_vocab_size=num_items)

    def test_ranks_match_brute_force_with_ties_chunks_and_history(self):
        for quantise in (False, True):
            head = self.make_head(53, quantise=quantise)
            hidden = self.rng.normal(size=(12, 8)).astype("float32")
            if quantise:
                hidden = np.round(hidden).astype("float32")
            targets = self.rng.integers(2, 53, size=12).astype("int32")
            history = self.rng.integers(0, 53, size=(12, 6)).astype("int32")
            history[:3, 0] = targets[:3]  # a seen target is a miss when history is excluded
            history[3:, :] = np.where(history[3:] == targets[3:, None], 0, history[3:])
            for chunk in (5, 64):
                for hist in (None, history):
                    got = evaluation.target_ranks(hidden, targets, head, history=hist, item_chunk=chunk)
                    expected = brute_force_ranks(hidden, targets, head.kernel, head.bias, hist)
                    np.testing.assert_allclose(got, expected, err_msg=f"quantise={quantise} chunk={chunk}")
                    self.assertTrue((got >= 0).all())

    def test_ranking_metrics(self):
        metrics = evaluation.ranking_metrics([0, 1, 9, 10, evaluation.MISS])
        self.assertAlmostEqual(metrics["recall@1"], 0.2)
        self.assertAlmostEqual(metrics["recall@10"], 0.6)
        self.assertAlmostEqual(metrics["ndcg@10"], (1 + 1 / np.log2(3) + 1 / np.log2(11)) / 5)
        self.assertAlmostEqual(metrics["mrr"], (1 + 1 / 2 + 1 / 10 + 1 / 11 + 1 / (evaluation.MISS + 1)) / 5)
