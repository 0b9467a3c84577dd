"""Training batches cut to their longest history, so padding costs (almost) nothing.

Sequences are left-padded to `max_len`, but most users of a short-history log (an
e-commerce log with a median of 6 interactions, say) fill a handful of positions. A
batch of such rows is cut to its last `L` positions, where `L` is the smallest
bucket boundary that holds every row of the batch: attention, feed-forward and the
item head then run over `L` positions instead of `max_len`. Rows are grouped into
batches by bucket (shuffled within the bucket every epoch, then the batches
shuffled), so a batch is as random as the length bucket allows. Every batch has
`batch_size` rows (the last one of a bucket is filled with all-padding rows of
weight 0, which the losses ignore), so each bucket compiles exactly once.
"""

from __future__ import annotations

import math

import keras
import numpy as np


def bucket_boundaries(max_len: int, num_buckets: int) -> list[int]:
    """`num_buckets` lengths ≤ max_len, halving from max_len and rounded up to a multiple of 8."""
    if num_buckets < 1:
        raise ValueError(f"num_buckets must be >= 1, got {num_buckets}")
    bounds = {max_len}
    length = max_len
    for _ in range(num_buckets - 1):
        length = max(8, int(math.ceil(length / 2 / 8)) * 8)
        if length >= max_len:
            break
        bounds.add(length)
    return sorted(bounds)


def history_lengths(items: np.ndarray) -> np.ndarray:
    """Real positions per left-padded row: `max_len` minus the leading padding."""
    real = np.asarray(items) != 0
    first = np.where(real.any(axis=1), real.argmax(axis=1), real.shape[1])
    return real.shape[1] - first


class SequenceBatches(keras.utils.PyDataset):
    """`(x, y)` batches of one split for `model.fit`, each cut to its length bucket.

    Args:
        x, y: encoded input / target arrays `[rows, max_len, ...]` (`y["weight"]` included).
        batch_size: rows per batch.
        num_buckets: length buckets (1: every batch keeps `max_len` positions).
        shuffle: reshuffle rows and batches every epoch.
        seed: seed of the shuffling.
        input_names: the keys of `x` the model takes (others are dropped).

    Example:
    ```python
    batches = SequenceBatches(split.x, {**split.y, "weight": split.w}, batch_size=128, num_buckets=4)
    model.fit(batches, epochs=10)
    ```
    """

    def __init__(self, x, y, batch_size, num_buckets=4, shuffle=True, seed=0, input_names=None, **kwargs):
        super().__init__(**kwargs)
        names = list(input_names) if input_names is not None else list(x)
        self.x = {name: np.asarray(x[name]) for name in names}
        self.y = {name: np.asarray(value) for name, value in y.items()}
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.rng = np.random.default_rng(seed)
        max_len = self.x["item"].shape[1]
        self.boundaries = bucket_boundaries(max_len, num_buckets)
        lengths = history_lengths(self.x["item"])
        self.bucket_of = np.searchsorted(self.boundaries, np.maximum(lengths, 1))
        self._plan()

    def _plan(self):
        """The epoch's batches: (bucket length, row indices) in training order."""
        batches = []
        for b, length in enumerate(self.boundaries):
            rows = np.flatnonzero(self.bucket_of == b)
            if self.shuffle:
                rows = self.rng.permutation(rows)
            for lo in range(0, len(rows), self.batch_size):
                batches.append((length, rows[lo:lo + self.batch_size]))
        if self.shuffle:
            batches = [batches[i] for i in self.rng.permutation(len(batches))]
        self.batches = batches

    @property
    def num_batches(self) -> int:
        return len(self.batches)

    def __getitem__(self, index):
        length, rows = self.batches[index]
        fill = self.batch_size - len(rows)

        def cut(array):
            out = array[rows, -length:]
            if fill:  # all-padding rows (ids 0, weight 0) keep the batch shape static
                out = np.concatenate([out, np.zeros((fill,) + out.shape[1:], out.dtype)])
            return out

        return {k: cut(v) for k, v in self.x.items()}, {k: cut(v) for k, v in self.y.items()}

    def on_epoch_end(self):
        if self.shuffle:
            self._plan()
