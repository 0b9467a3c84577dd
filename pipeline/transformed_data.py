"""Transform's materialized output as the Trainer trains on it.

Training data whose dense arrays fit `TrainerConfig.max_in_memory_mb` is loaded into the
numpy `datasets.encoder.Split`s that `datasets.encode` gives `model.train`: the same rows
(those with a target), in the same order (by user, then window end: Transform's
``order_user`` / ``order_end``), with the same ids (Transform's vocabulary order is the
numpy encoder's), so `model.training.fit_and_evaluate` trains on what `model.train`
trains on. Larger training data streams from the files (`StreamingBatches`). The
validation split, one row per user, is always loaded, with the whole-history seen items
(``seen_item``) as `Split.seen`.
"""

from __future__ import annotations

import dataclasses
import math
import os
from typing import Iterator, List

import keras
import numpy as np
import tensorflow as tf

from datasets.encoder import SeenItems, Split
from datasets.feature_spec import FeatureSpec
from model.batching import bucket_boundaries, history_lengths
from pipeline import preprocessing as pp

PARSE_BATCH = 1024
# Streaming: rows the repeat rate and the intent item attribute tables are measured on.
SAMPLE_ROWS = 50_000


@dataclasses.dataclass
class TransformedData:
    """What `model.training.fit_and_evaluate` reads of the data (as of a `datasets.EncodedData`)."""

    train: Split  # every training row, or the first SAMPLE_ROWS when the rows stream
    val: Split  # Transform's eval split
    item_popularity: np.ndarray  # int64 [item vocab]: training-portion occurrences per id
    feature_spec: FeatureSpec
    streamed: bool  # the training rows are too many for memory: `StreamingBatches` reads them
    source: str  # which path ran, for the log

    def split(self, name: str) -> Split:
        if name not in ("train", "val"):
            raise ValueError(f"the Trainer has the train and val (Transform's eval) splits, not {name!r}")
        return getattr(self, name)


def list_files(patterns) -> List[str]:
    files = []
    for p in patterns if isinstance(patterns, (list, tuple)) else [patterns]:
        files += tf.io.gfile.glob(os.path.join(p, "*") if tf.io.gfile.isdir(p) else p)
    if not files:
        raise ValueError(f"no transformed examples under {patterns}")
    return sorted(files)


def _records(files) -> tf.data.Dataset:
    return tf.data.TFRecordDataset(files, compression_type="GZIP")


def _parse(serialized, spec, cfg):
    t = tf.io.parse_example(serialized, spec)
    return pp.to_model_inputs(t, cfg), pp.to_model_targets(t, cfg), t


def _batches(files, tft_output, cfg) -> Iterator[tuple]:
    """(x, y, every transformed feature) of PARSE_BATCH examples at a time."""
    spec = tft_output.transformed_feature_spec()
    yield from _records(files).batch(PARSE_BATCH).map(lambda s: _parse(s, spec, cfg), tf.data.AUTOTUNE)


def has_target(label_items: np.ndarray) -> np.ndarray:
    """[rows] bool: the row has a target item (an id, OOV included; 0 = no target)."""
    return (label_items != 0).any(axis=1)


def row_order(users: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """`datasets.encode`'s row order: by user id (string order), then window end."""
    _, codes = np.unique(users, return_inverse=True)
    return np.lexsort((ends, codes))


def read_split(files, tft_output, cfg: pp.PreprocessingConfig, max_rows: int = 0) -> Split:
    """The rows of Transform's split that have a target, in `row_order` (of the first
    `max_rows` rows of the files when given); `seen` from ``seen_item`` when present."""
    xs, ys, users, ends, seen_lengths, seen_ids = [], [], [], [], [], []
    for x, y, t in _batches(files, tft_output, cfg):
        xs.append({k: v.numpy() for k, v in x.items()})
        ys.append({k: v.numpy() for k, v in y.items()})
        users.append(t[pp.ORDER_USER].numpy())
        ends.append(t[pp.ORDER_END].numpy())
        if pp.SEEN_OUTPUT in t:
            seen = t[pp.SEEN_OUTPUT]
            rows = seen.indices[:, 0].numpy()
            seen_lengths.append(np.bincount(rows, minlength=len(ends[-1])))
            seen_ids.append(seen.values.numpy().astype(np.int32))
        if max_rows and sum(len(e) for e in ends) >= max_rows:
            break
    x = {k: np.concatenate([b[k] for b in xs]) for k in xs[0]}
    y = {k: np.concatenate([b[k] for b in ys]) for k in ys[0]}
    w = y.pop("weight")
    users, ends = np.concatenate(users), np.concatenate(ends)
    order = row_order(users, ends)
    # Training sequences of one interaction have no target: Transform needs them for its
    # statistics (the training portion), the numpy encoder makes no row of them.
    order = order[has_target(y[pp.ITEM_INPUT][order])]
    seen = None
    if seen_lengths:
        indptr = np.concatenate([[0], np.cumsum(np.concatenate(seen_lengths))]).astype(np.int64)
        seen = SeenItems(indptr, np.concatenate(seen_ids)).take(order)
    return Split(x={k: v[order] for k, v in x.items()}, y={k: v[order] for k, v in y.items()}, w=w[order],
                 user_ids=np.array([u.decode("utf-8") for u in users[order]], dtype=object), seen=seen)


def dense_mb(rows: int, tft_output) -> float:
    """MiB the model arrays of `rows` transformed rows take (4 bytes a value)."""
    values = sum(int(np.prod(f.shape)) for f in tft_output.transformed_feature_spec().values()
                 if isinstance(f, tf.io.FixedLenFeature))
    return rows * values * 4 / 2**20


def load(train_files, eval_files, tft_output, cfg: pp.PreprocessingConfig, max_in_memory_mb: float) -> TransformedData:
    """The training data in memory when it fits `max_in_memory_mb`, else a sample of it
    (the rows then stream through `StreamingBatches`); the validation split always."""
    train_files, eval_files = list_files(train_files), list_files(eval_files)
    records = int(_records(train_files).reduce(np.int64(0), lambda n, _: n + 1))
    mb = dense_mb(records, tft_output)
    streamed = mb > max_in_memory_mb
    train = read_split(train_files, tft_output, cfg, max_rows=SAMPLE_ROWS if streamed else 0)
    source = (f"streamed: {records:,} records, {mb:,.0f} MiB dense > {max_in_memory_mb:,.0f} MiB; repeat rate and "
              f"item attributes from the first {len(train):,} rows" if streamed else
              f"in memory: {len(train):,} rows ({records:,} records, {mb:,.0f} MiB), the numpy encoder's row order")
    return TransformedData(train=train, val=read_split(eval_files, tft_output, cfg),
                           item_popularity=np.asarray(pp.read_item_counts(tft_output), np.int64),
                           feature_spec=pp.feature_spec(tft_output, cfg), streamed=streamed, source=source)


class StreamingBatches(keras.utils.PyDataset):
    """Training batches streamed from Transform's files, for data too large for memory.

    The batches of `model.batching.SequenceBatches` (rows grouped by length bucket, every
    batch cut to its bucket and filled to `batch_size` with weight-0 rows), from a tf.data
    pipeline that shuffles `shuffle_buffer` records at a time, anew every pass. A counting
    pass gives `num_batches`, `rows` and `targets` (the protocol line's numbers).

    Args:
        files: Transform's training files; tft_output, cfg: as `read_split`'s.
        batch_size, num_buckets, seed: as `SequenceBatches`'.
        shuffle_buffer: records shuffled at a time.
        input_names: the keys of x the model takes.
    """

    def __init__(self, files, tft_output, cfg, batch_size, num_buckets=4, seed=0, shuffle_buffer=16384,
                 input_names=None, **kwargs):
        super().__init__(**kwargs)
        self.files, self.cfg, self.spec = list_files(files), cfg, tft_output.transformed_feature_spec()
        self.batch_size, self.seed, self.shuffle_buffer = int(batch_size), int(seed), int(shuffle_buffer)
        self.input_names = input_names
        self.boundaries = bucket_boundaries(cfg.max_len, num_buckets)
        label = pp.LABEL_PREFIX + pp.ITEM_INPUT
        counted = {k: self.spec[k] for k in (pp.ITEM_INPUT, label, pp.SAMPLE_WEIGHT)}
        per_bucket = np.zeros(len(self.boundaries), np.int64)
        self.rows = self.targets = 0
        for t in _records(self.files).batch(PARSE_BATCH).map(lambda s: tf.io.parse_example(s, counted)):
            w = t[pp.SAMPLE_WEIGHT].numpy()
            keep = has_target(t[label].numpy())
            per_bucket += np.bincount(self._bucket(t[pp.ITEM_INPUT].numpy()[keep]), minlength=len(per_bucket))
            self.rows += int(keep.sum())
            self.targets += int((w > 0).sum())
        self._num_batches = int(sum(math.ceil(c / self.batch_size) for c in per_bucket))
        self._passes = 0
        self._iterator = None

    def _bucket(self, items: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.boundaries, np.maximum(history_lengths(items), 1))

    def _stream(self):
        spec, cfg, bounds = self.spec, self.cfg, tf.constant(self.boundaries, tf.int64)

        def bucket(x, y):
            length = tf.reduce_sum(tf.cast(tf.not_equal(x[pp.ITEM_INPUT], 0), tf.int64))
            return tf.searchsorted(bounds, tf.maximum(length, 1)[None], out_type=tf.int64)[0]

        self._passes += 1
        return (_records(self.files).shuffle(self.shuffle_buffer, seed=self.seed + self._passes)
                .batch(PARSE_BATCH).map(lambda s: _parse(s, spec, cfg)[:2], tf.data.AUTOTUNE).unbatch()
                .filter(lambda x, y: tf.reduce_any(tf.not_equal(y[pp.ITEM_INPUT], 0)))
                .group_by_window(bucket, lambda _, rows: rows.batch(self.batch_size), window_size=self.batch_size)
                .prefetch(tf.data.AUTOTUNE).as_numpy_iterator())

    @property
    def num_batches(self) -> int:
        return self._num_batches

    def __len__(self) -> int:
        return self._num_batches

    def __getitem__(self, index):
        # The stream has no random access: batches come in stream order whatever the
        # index. Keras reads a couple of batches ahead of the first epoch to learn their
        # shapes, so a pass can end inside an epoch; the next one then starts.
        if self._iterator is None:
            self._iterator = self._stream()
        try:
            x, y = next(self._iterator)
        except StopIteration:
            self._iterator = self._stream()
            x, y = next(self._iterator)
        length = self.boundaries[self._bucket(x[pp.ITEM_INPUT]).max()]
        fill = self.batch_size - len(x[pp.ITEM_INPUT])

        def cut(array):
            out = array[:, -length:]
            return np.concatenate([out, np.zeros((fill,) + out.shape[1:], out.dtype)]) if fill else out

        names = self.input_names or list(x)
        return {k: cut(x[k]) for k in names}, {k: cut(v) for k, v in y.items()}

    def on_epoch_end(self):
        self._iterator = None
