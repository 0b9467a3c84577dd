"""Non-neural references reported beside every model: popularity and item
co-occurrence rankings, majority-class and Markov ("next = current") intents.

A trained sequential model should beat all of them; they use the same targets, the
same full-catalogue ranks (`model.evaluation.ranking_metrics`) and the same
seen-item filter as the model they are reported with.
"""

from __future__ import annotations

import numpy as np

from datasets.schema import NUM_RESERVED_IDS
from model import evaluation


def _seen_mask(rows: int, vocab: int, seen: np.ndarray) -> np.ndarray:
    """bool `[rows, vocab]`: the item ids of `seen` `[rows, H]` (0-padded), reserved ids too."""
    mask = np.zeros((rows, vocab), dtype=bool)
    mask[np.repeat(np.arange(rows), seen.shape[1]), seen.ravel()] = True
    mask[:, :NUM_RESERVED_IDS] = True
    return mask


def _ranks(scores: np.ndarray, targets: np.ndarray, seen) -> np.ndarray:
    """0-based ranks of `targets` among `scores` `[rows, vocab]` (ties count half), seen items removed."""
    scores = scores.copy()
    target_seen = np.zeros(len(targets), bool)
    if seen is not None:
        mask = _seen_mask(len(targets), scores.shape[1], seen)
        target_seen = mask[np.arange(len(targets)), targets] & (targets >= NUM_RESERVED_IDS)
        scores[mask] = -np.inf
    scores[:, :NUM_RESERVED_IDS] = -np.inf
    target_scores = scores[np.arange(len(targets)), targets]
    higher = (scores > target_scores[:, None]).sum(axis=1)
    ties = (scores == target_scores[:, None]).sum(axis=1) - 1
    ranks = higher + np.maximum(ties, 0) / 2.0
    return np.where(target_seen | (targets < NUM_RESERVED_IDS), evaluation.MISS, ranks)


def _batched_seen(seen, history, lo, hi):
    """The seen-item block of rows lo..hi: `seen` (a `SeenItems`), the window `history`, or None."""
    if seen is None:
        return None
    if seen is True:
        return history[lo:hi]
    return seen.padded(lo, hi)


def _rows_per_block(vocab: int) -> int:
    return max(16, min(1024, 2 ** 23 // max(vocab, 1)))  # [rows, vocab] float64 blocks of ≤ 64 MB


def popularity(item_counts, x, y, seen=None) -> dict:
    """Ranking metrics of "the most popular training items".

    Args:
        item_counts: `[vocab]` training occurrences.
        x, y: the evaluation split's inputs and targets (target at the last position).
        seen: items to exclude: a `SeenItems` (the whole history), True (the input
            window `x["item"]`) or None (nothing).
    """
    counts = np.asarray(item_counts, dtype=np.float64)
    batch = _rows_per_block(len(counts))
    targets = np.asarray(y["item"][:, -1])
    history = np.asarray(x["item"])
    ranks = [_ranks(np.broadcast_to(counts, (min(hi, len(targets)) - lo, len(counts))), targets[lo:hi],
                    _batched_seen(seen, history, lo, hi))
             for lo, hi in ((lo, lo + batch) for lo in range(0, len(targets), batch))]
    return evaluation.ranking_metrics(np.concatenate(ranks) if ranks else np.zeros(0))


def cooccurrence(train_split, item_counts, x, y, seen=None, horizon=5, last=10, decay=0.7) -> dict:
    """Ranking metrics of item-to-item co-occurrence, a non-neural sequential recommender.

    C[i, j] counts how often j follows i within `horizon` steps in the training
    windows; a user's score of j is Σ_k decay^k · C[h_{-k}, j] over the last `last`
    history items, ties broken by popularity. Items of the history score like any
    other (a re-view is predicted when the log has them), unless `seen` removes them.
    """
    from scipy import sparse

    vocab = len(item_counts)
    batch = _rows_per_block(vocab)
    seq = np.concatenate([train_split.x["item"], train_split.y["item"][:, -1:]], axis=1)  # window + last target
    seq[:, -1] = np.where(train_split.w[:, -1] > 0, seq[:, -1], 0)
    rows, cols = [], []
    for d in range(1, horizon + 1):
        a, b = seq[:, :-d].ravel(), seq[:, d:].ravel()
        ok = (a >= NUM_RESERVED_IDS) & (b >= NUM_RESERVED_IDS)
        rows.append(a[ok])
        cols.append(b[ok])
    rows, cols = np.concatenate(rows), np.concatenate(cols)
    counts = sparse.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(vocab, vocab))
    tie_break = 1e-6 * np.log1p(np.asarray(item_counts, np.float64))
    history, targets = np.asarray(x["item"]), np.asarray(y["item"][:, -1])
    ranks = []
    for lo in range(0, len(targets), batch):
        h = history[lo:lo + batch]
        scores = np.zeros((len(h), vocab), np.float64)
        for k in range(1, min(last, h.shape[1]) + 1):
            scores += decay ** (k - 1) * counts[h[:, -k]].toarray()
        scores += tie_break[None, :]
        ranks.append(_ranks(scores, targets[lo:lo + batch], _batched_seen(seen, history, lo, lo + batch)))
    return evaluation.ranking_metrics(np.concatenate(ranks) if ranks else np.zeros(0))


def majority(train_y, y, intents) -> dict:
    """Next-intent accuracy of always predicting the most frequent training label."""
    metrics = {}
    train_w = train_y["weight"] > 0
    for head in intents:
        labels = train_y[head.name][train_w]
        if head.kind == "single":
            counts = np.bincount(labels.astype(np.int64), minlength=head.num_classes)
        else:
            counts = labels.sum(axis=0)
        counts = np.asarray(counts, dtype=np.float64)
        counts[:NUM_RESERVED_IDS] = -1
        probs = np.broadcast_to(counts, (len(y["item"]), len(counts)))
        hits = evaluation.intent_hits(probs, y[head.name][:, -1], head.kind)
        metrics[f"intent_accuracy/{head.name}"] = float(np.mean(hits))
    return metrics


def markov(train_x, train_y, x, y, intents) -> dict:
    """Next-intent accuracy of a first-order Markov chain on the intent values: the
    training transitions' most frequent next value after the current one (for
    multi-label heads, summed over the current values), the majority class where the
    current value was never seen. Heads whose label column is not an input are skipped.

    On logs where an intent persists (a session's genre or category), this is the
    reference an intent head has to beat, not the majority class.
    """
    metrics = {}
    train_w = train_y["weight"] > 0
    for head in intents:
        if head.name not in x or head.name not in train_x:
            continue
        current, nxt = train_x[head.name][train_w], train_y[head.name][train_w]
        if head.kind == "single":
            # Counted per observed (current, next) pair, never as a [K, K] matrix: a
            # catalogue's categories may number tens of thousands.
            k = head.num_classes
            current, nxt = current.astype(np.int64), nxt.astype(np.int64)
            keep = nxt >= NUM_RESERVED_IDS
            pairs, counts = np.unique(current[keep] * k + nxt[keep], return_counts=True)
            pair_current, pair_next = np.divmod(pairs, k)
            prior = np.bincount(nxt[keep], minlength=k).astype(np.float64)
            score = counts + prior[pair_next] / max(prior.sum(), 1.0) * 1e-6  # ties: the more frequent value
            order = np.lexsort((score, pair_current))  # by current value, its best next value last
            is_last = np.ones(len(order), bool)
            is_last[:-1] = pair_current[order][1:] != pair_current[order][:-1]
            last = order[is_last]
            best = np.full(k, int(np.argmax(prior)))  # never-seen values: the majority class
            best[pair_current[last]] = pair_next[last]
            predicted = best[np.asarray(x[head.name][:, -1], np.int64)]
            hits = predicted == np.asarray(y[head.name][:, -1], np.int64)
        else:
            counts = np.asarray(current, np.float64).T @ np.asarray(nxt, np.float64)
            prior = np.asarray(nxt, np.float64).sum(axis=0)
            scores = np.asarray(x[head.name][:, -1], np.float64) @ counts
            scores = scores + 1e-6 * prior / max(prior.sum(), 1.0)  # ties and unseen values: the majority class
            hits = evaluation.intent_hits(scores, y[head.name][:, -1], head.kind)
        metrics[f"intent_accuracy/{head.name}"] = float(np.mean(hits))
    return metrics
