"""Full-catalogue ranking metrics and next-intent accuracy (`keras.ops` only).

Every user is ranked against the whole catalogue (no sampled negatives: sampled
metrics mislead). The rank of the target is the number of items scoring
strictly higher, counted chunk by chunk over the catalogue so that
`[batch, |I|]` is the largest score block ever built, never `[users, |I|]`.
"""

from __future__ import annotations

import numpy as np
from keras import ops

from datasets.schema import NUM_RESERVED_IDS

RECALL_KS = (1, 10, 20)
NDCG_KS = (10, 20)
MISS = np.iinfo(np.int32).max // 2


def target_ranks(hidden, targets, item_head, history=None, item_chunk=65536):
    """Rank of each target among all recommendable items (0 = top).

    Ties count half (the expected rank under random tie-breaking), so a model
    that scores everything alike cannot look good.

    Args:
        hidden: `[batch, d]` E^item at the scored position.
        targets: int `[batch]` target item ids.
        item_head: the model's `ItemHead`.
        history: optional int `[batch, seq]`; items in it are excluded from the
            ranking (a target that is in it counts as a miss).
        item_chunk: catalogue items scored at a time.

    Returns:
        float numpy `[batch]`.
    """
    hidden = ops.cast(ops.convert_to_tensor(hidden), "float32")
    targets = ops.cast(ops.convert_to_tensor(targets), "int32")
    kernel = ops.cast(item_head.kernel, "float32")
    bias = ops.cast(item_head.bias, "float32")
    chunks = [(start, min(start + item_chunk, item_head.item_vocab_size))
              for start in range(NUM_RESERVED_IDS, item_head.item_vocab_size, item_chunk)]
    if history is not None:
        history = ops.cast(ops.convert_to_tensor(history), "int32")

    def chunk_scores(start, stop):  # [batch, stop - start]
        return ops.matmul(hidden, kernel[:, start:stop]) + bias[start:stop]

    def gather(scores, ids, start, stop):  # the scores of ids [batch, m] inside the chunk, else 0
        inside = ops.logical_and(ids >= start, ids < stop)
        local = ops.clip(ids - start, 0, stop - start - 1)
        return ops.where(inside, ops.take_along_axis(scores, local, axis=1), 0.0)

    # Every score comes from the same chunked matmul (gathered, never recomputed by
    # another op): with TF32 or bf16 two matmul paths can disagree in the last
    # bits, and a target that no longer ties with itself gets a rank of -1.
    target_score = ops.zeros(ops.shape(targets), "float32")
    history_scores = None if history is None else ops.zeros(ops.shape(history), "float32")
    # A catalogue that fits one chunk keeps its scores for the second pass; with more
    # chunks they are recomputed, so that batch x catalogue is never held at once.
    kept = None
    for start, stop in chunks:
        scores = chunk_scores(start, stop)
        if len(chunks) == 1:
            kept = scores
        target_score = target_score + gather(scores, targets[:, None], start, stop)[:, 0]
        if history is not None:
            history_scores = history_scores + gather(scores, history, start, stop)
    higher = ops.zeros(ops.shape(targets), "float32")
    ties = ops.zeros(ops.shape(targets), "float32")
    for start, stop in chunks:
        scores = kept if kept is not None else chunk_scores(start, stop)
        higher = higher + ops.sum(ops.cast(scores > target_score[:, None], "float32"), axis=-1)
        ties = ties + ops.sum(ops.cast(scores == target_score[:, None], "float32"), axis=-1)
    # The target ties with itself.
    ranks = ops.convert_to_numpy(higher + ops.maximum(ties - 1.0, 0.0) / 2.0)
    targets_np = np.asarray(ops.convert_to_numpy(targets))
    target_np = np.asarray(ops.convert_to_numpy(target_score))
    if history is not None:
        ranks = _exclude_history(ranks, np.asarray(ops.convert_to_numpy(history)),
                                 np.asarray(ops.convert_to_numpy(history_scores)), target_np, targets_np)
    return np.where(targets_np < NUM_RESERVED_IDS, MISS, ranks)


def dense_ranks(scores, targets, history=None):
    """Ranks (0 = top, ties count half) of `targets` among full scores `[batch, |I|]`;
    reserved ids never compete, items of `history` `[batch, H]` are removed (a target in
    it is a miss)."""
    scores = np.array(ops.convert_to_numpy(scores), dtype=np.float64)
    targets = np.asarray(targets)
    rows = np.arange(len(targets))
    scores[:, :NUM_RESERVED_IDS] = -np.inf
    target_seen = np.zeros(len(targets), bool)
    if history is not None:
        history = np.asarray(history)
        seen = np.zeros(scores.shape, bool)
        seen[np.repeat(rows, history.shape[1]), history.ravel()] = True
        seen[:, :NUM_RESERVED_IDS] = False
        target_seen = seen[rows, targets]
        scores[seen] = -np.inf
    target = scores[rows, targets]
    higher = (scores > target[:, None]).sum(axis=1)
    ties = (scores == target[:, None]).sum(axis=1) - 1
    ranks = higher + np.maximum(ties, 0) / 2.0
    return np.where(target_seen | (targets < NUM_RESERVED_IDS), MISS, ranks)


def _exclude_history(ranks, history, history_scores, target_scores, targets):
    """Removes each user's distinct history items from the ranks they took part in.

    history / history_scores `[batch, H]` (H may be a whole history: thousands).
    """
    order = np.argsort(history, axis=1, kind="stable")
    history = np.take_along_axis(history, order, axis=1)
    history_scores = np.take_along_axis(history_scores, order, axis=1)
    first = np.ones(history.shape, dtype=bool)
    first[:, 1:] = history[:, 1:] != history[:, :-1]  # the first occurrence of each item
    counted = first & (history >= NUM_RESERVED_IDS)
    higher = np.sum(counted & (history_scores > target_scores[:, None]), axis=1)
    ties = np.sum(counted & (history_scores == target_scores[:, None]) & (history != targets[:, None]), axis=1)
    ranks = np.asarray(ranks, dtype=np.float64) - higher - ties / 2.0
    return np.where((history == targets[:, None]).any(axis=1), MISS, ranks)


def ranking_metrics(ranks) -> dict:
    """Recall@k, NDCG@k and MRR from 0-based target ranks."""
    ranks = np.asarray(ranks, dtype=np.float64)
    metrics = {f"recall@{k}": float(np.mean(ranks < k)) for k in RECALL_KS}
    for k in NDCG_KS:
        metrics[f"ndcg@{k}"] = float(np.mean(np.where(ranks < k, 1.0 / np.log2(ranks + 2.0), 0.0)))
    metrics["mrr"] = float(np.mean(1.0 / (ranks + 1.0)))
    return metrics


def intent_hits(probabilities, labels, kind) -> np.ndarray:
    """Per-example next-intent hit: the top predicted value is (one of) the true ones.

    probabilities `[batch, d_i]`; labels int `[batch]` (single) or multi-hot
    `[batch, d_i]` (multi). Reserved ids (padding, OOV) are never predicted.
    """
    probabilities = np.asarray(probabilities, dtype=np.float64).copy()
    probabilities[:, :NUM_RESERVED_IDS] = -np.inf
    predicted = probabilities.argmax(axis=-1)
    labels = np.asarray(labels)
    if kind == "single":
        return (predicted == labels).astype(np.float64)
    return labels[np.arange(len(predicted)), predicted].astype(np.float64) > 0


def evaluate(model, x, y, batch_size=256, exclude_seen=False, item_chunk=65536, progress=None, seen=None,
             length_buckets=4) -> dict:
    """Next-item ranking metrics and next-intent accuracy at the last position.

    Args:
        model: an `IntentRec` (or any model with `item_head` whose outputs carry
            `item_hidden` and `intent_<name>`).
        x, y: encoded evaluation arrays (targets at the last position).
        batch_size: users per forward pass.
        exclude_seen: drop the user's seen items from the ranking: those of `seen`
            when given (the whole history), else those of the input window.
        item_chunk: catalogue items scored at a time.
        progress: optional callable wrapping the batch iterator (e.g. tqdm).
        seen: a `datasets.encoder.SeenItems` with every item each user saw before
            the target (`Split.seen`).
        length_buckets: users are scored in batches of one history-length bucket, cut
            to it (`model.batching.bucket_boundaries`); 1: every batch keeps max_len.

    Returns:
        dict of metrics, plus `num_users`.
    """
    from model.batching import bucket_boundaries, history_lengths

    num = len(y["item"])
    items = np.asarray(x["item"])
    # Users are scored in batches of one length bucket, each cut to that length (as the
    # training batches): a short-history log is not scored over max_len positions. Every
    # batch is padded to `batch_size` rows, so each bucket compiles one forward pass.
    boundaries = bucket_boundaries(items.shape[1], length_buckets)
    bucket = np.searchsorted(boundaries, np.maximum(history_lengths(items), 1))
    batches = [(boundaries[b], rows[lo:lo + batch_size]) for b in range(len(boundaries))
               for rows in [np.flatnonzero(bucket == b)] for lo in range(0, len(rows), batch_size)]
    if progress is not None:
        batches = progress(batches)
    ranks = np.zeros(num, np.float64)
    hits = {h.name: np.zeros(num, np.float64) for h in getattr(model, "intent_heads", [])}
    for length, rows in batches:
        fill = batch_size - len(rows) if num > batch_size else 0
        inputs = {name: _rows_padded(x[name], rows, length, fill) for name in model.input_names}
        outputs = {k: v[: len(rows)] for k, v in forward(model, inputs).items()}
        window = inputs["item"][: len(rows)]
        history = (seen.take(rows).padded() if seen is not None else window) if exclude_seen else None
        targets = y["item"][rows, -1]
        if getattr(model, "has_item_score_terms", False):  # intent / copy terms: score the catalogue at once
            scores = model.item_scores(outputs, window, last_only=True)
            ranks[rows] = dense_ranks(scores, targets, history)
        else:
            ranks[rows] = target_ranks(outputs["item_hidden"][:, -1], targets, model.item_head,
                                       history=history, item_chunk=item_chunk)
        for head in getattr(model, "intent_heads", []):
            probs = ops.convert_to_numpy(outputs[f"intent_{head.name}"][:, -1])
            hits[head.name][rows] = intent_hits(probs, y[head.name][rows, -1], head.kind)
    metrics = ranking_metrics(ranks) if num else {}
    for name, values in hits.items():
        metrics[f"intent_accuracy/{name}"] = float(np.mean(values)) if num else float("nan")
    metrics["num_users"] = int(num)
    return metrics


def _rows_padded(array, rows, length, fill):
    """array[rows, -length:] followed by `fill` all-zero rows (ids 0: padding)."""
    out = np.asarray(array)[rows, -length:]
    if fill:
        out = np.concatenate([out, np.zeros((fill,) + out.shape[1:], out.dtype)])
    return out


def forward(model, inputs) -> dict:
    """The model's outputs for one batch through its compiled predict function (traced
    once per input shape), not op by op."""
    return model.predict_on_batch(inputs)
