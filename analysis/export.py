"""Streaming export of per-user intents for downstream models: Parquet and TFRecord.

One row / tf.train.Example per user (at the user's latest position):

| column                 | Parquet type          | tf.train.Example feature          |
|------------------------|-----------------------|-----------------------------------|
| `user_id`              | string                | bytes_list[1]                     |
| `timestamp`            | int64                 | int64_list[1] (latest interaction)|
| `z_0` … `z_{d-1}`      | float32 each          | `intent_embedding` float_list[d]  |
| `alpha_<head>`         | float32 per head      | float_list[1] each, and `intent_attention` float_list[M] |
| `primary_intent`       | string (head name)    | bytes_list[1]                     |
| `intent_<head>`        | list<float32> (d_h)   | float_list[d_h]                   |
| `intent_<head>_top`    | string (argmax label) | bytes_list[1]                     |

Label names of every `intent_<head>` position and the head order are stored in the
Parquet schema metadata (`intentrec_intents`: JSON) and in `<tfrecord>.meta.json`.

Nothing is held for more than one batch: users are read, encoded, run through the model
and written batch by batch (ParquetWriter row groups of `batch_size` users;
TFRecordWriter appends), so millions of users need only one batch in memory (besides
the interactions table the dataset adapter loaded).
"""

from __future__ import annotations

import json
from typing import Iterable, Optional, Sequence

import numpy as np

from analysis.inference import count_users, iter_intents
from analysis.sources import INTENT_ATTENTION, INTENT_EMBEDDING, IntentModel, intent_key

METADATA_KEY = b"intentrec_intents"


def export_schema(heads: Sequence[str], d_proj: int):
    import pyarrow as pa

    fields = [pa.field("user_id", pa.string()), pa.field("timestamp", pa.int64())]
    fields += [pa.field(f"z_{i}", pa.float32()) for i in range(d_proj)]
    fields += [pa.field(f"alpha_{h}", pa.float32()) for h in heads]
    fields.append(pa.field("primary_intent", pa.string()))
    for h in heads:
        fields.append(pa.field(f"intent_{h}", pa.list_(pa.float32())))
        fields.append(pa.field(f"intent_{h}_top", pa.string()))
    return pa.schema(fields)


def batch_columns(user_ids, timestamps, out: dict, heads: Sequence[str], labels: dict, d_proj: int) -> dict:
    """One batch of model outputs → plain numpy columns (the export's row layout)."""
    b = len(user_ids)
    z = out.get(INTENT_EMBEDDING)
    z = np.zeros((b, d_proj), np.float32) if z is None or z.shape[-1] != d_proj else z.astype(np.float32)
    att = out.get(INTENT_ATTENTION)
    cols = {"user_id": np.asarray([str(u) for u in user_ids], dtype=object),
            "timestamp": np.asarray(timestamps, dtype=np.int64)}
    for i in range(d_proj):
        cols[f"z_{i}"] = z[:, i]
    if att is not None and att.shape[-1] == len(heads) and len(heads):
        att = att.astype(np.float32)
        primary = np.asarray(heads, dtype=object)[np.argmax(att, axis=1)]
    else:
        att = np.full((b, len(heads)), np.nan, np.float32)
        primary = np.full(b, "", dtype=object)
    for j, h in enumerate(heads):
        cols[f"alpha_{h}"] = att[:, j]
    cols["primary_intent"] = primary
    cols["_attention"] = att
    for h in heads:
        p = np.asarray(out[intent_key(h)], dtype=np.float32)
        cols[f"intent_{h}"] = p
        names = np.asarray(labels.get(h) or [str(i) for i in range(p.shape[1])], dtype=object)
        cols[f"intent_{h}_top"] = names[np.argmax(p, axis=1)] if p.shape[1] else np.full(b, "", object)
    cols["_z"] = z
    return cols


def _arrow_table(cols: dict, schema):
    import pyarrow as pa

    arrays = []
    for field in schema:
        v = cols[field.name]
        if pa.types.is_list(field.type):
            flat = pa.array(np.ascontiguousarray(v, dtype=np.float32).reshape(-1), type=pa.float32())
            offsets = pa.array(np.arange(0, v.shape[0] * v.shape[1] + 1, v.shape[1], dtype=np.int32))
            arrays.append(pa.ListArray.from_arrays(offsets, flat))
        else:
            arrays.append(pa.array(v.tolist() if v.dtype == object else v, type=field.type))
    return pa.Table.from_arrays(arrays, schema=schema)


def _example(cols: dict, i: int, heads: Sequence[str]) -> bytes:
    import tensorflow as tf

    def f(vals):
        return tf.train.Feature(float_list=tf.train.FloatList(value=np.asarray(vals, np.float32).reshape(-1)))

    def s(val):
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[str(val).encode("utf-8")]))

    feats = {
        "user_id": s(cols["user_id"][i]),
        "timestamp": tf.train.Feature(int64_list=tf.train.Int64List(value=[int(cols["timestamp"][i])])),
        "intent_embedding": f(cols["_z"][i]),
        "intent_attention": f(cols["_attention"][i]),
        "primary_intent": s(cols["primary_intent"][i]),
    }
    for h in heads:
        feats[f"alpha_{h}"] = f([cols[f"alpha_{h}"][i]])
        feats[f"intent_{h}"] = f(cols[f"intent_{h}"][i])
        feats[f"intent_{h}_top"] = s(cols[f"intent_{h}_top"][i])
    return tf.train.Example(features=tf.train.Features(feature=feats)).SerializeToString()


class IntentWriter:
    """Writes batches to Parquet and/or TFRecord as they come (context manager)."""

    def __init__(self, heads: Sequence[str], labels: dict, d_proj: Optional[int], parquet: Optional[str] = None,
                 tfrecord: Optional[str] = None, extra_metadata: Optional[dict] = None,
                 compression: str = "zstd"):
        if not parquet and not tfrecord:
            raise ValueError("give a parquet and/or a tfrecord path")
        self.heads, self.labels = list(heads), {h: list(v) for h, v in labels.items()}
        self.d_proj = None if d_proj is None else int(d_proj)
        self.extra = dict(extra_metadata or {})
        self.compression = compression
        self.rows = 0
        self._pq = self._tf = None
        self._opened = False
        self.parquet, self.tfrecord = parquet, tfrecord

    def _open(self, out: dict) -> None:
        """Files are opened at the first batch, whose shapes fill in what the model's
        metadata lacks (label names, d_proj)."""
        z = out.get(INTENT_EMBEDDING)
        if self.d_proj is None:
            self.d_proj = int(z.shape[-1]) if z is not None else 0
        for h in self.heads:
            d = np.asarray(out[intent_key(h)]).shape[-1]
            if len(self.labels.get(h) or []) != d:
                self.labels[h] = [str(i) for i in range(d)]
        self.meta = {"heads": self.heads, "labels": {h: self.labels[h] for h in self.heads},
                     "d_proj": self.d_proj, **self.extra}
        if self.parquet:
            import pyarrow.parquet as pq

            schema = export_schema(self.heads, self.d_proj)
            self.schema = schema.with_metadata({METADATA_KEY: json.dumps(self.meta).encode("utf-8")})
            self._pq = pq.ParquetWriter(self.parquet, self.schema, compression=self.compression)
        if self.tfrecord:
            import tensorflow as tf

            self._tf = tf.io.TFRecordWriter(self.tfrecord)
            with open(self.tfrecord + ".meta.json", "w", encoding="utf-8") as f:
                json.dump(self.meta, f, indent=2)
        self._opened = True

    def write(self, user_ids, timestamps, out: dict) -> int:
        if not self._opened:
            self._open(out)
        cols = batch_columns(user_ids, timestamps, out, self.heads, self.labels, self.d_proj)
        if self._pq is not None:
            self._pq.write_table(_arrow_table(cols, self.schema))  # one row group per batch
        if self._tf is not None:
            for i in range(len(cols["user_id"])):
                self._tf.write(_example(cols, i, self.heads))
        self.rows += len(cols["user_id"])
        return len(cols["user_id"])

    def close(self):
        if self._pq is not None:
            self._pq.close()
            self._pq = None
        if self._tf is not None:
            self._tf.close()
            self._tf = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def export_intents(model: IntentModel, dataset, parquet: Optional[str] = None, tfrecord: Optional[str] = None,
                   batch_size: int = 1024, history: str = "full", users: Optional[Sequence[str]] = None,
                   progress: bool = True) -> int:
    """Runs `model` over every user of `dataset` batch by batch and streams the rows
    to `parquet` / `tfrecord`. Returns the number of users written."""
    total = count_users(dataset, history) if users is None else len(users)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=total, unit="user", desc="export")
    extra = {"model": model.info.path, "history": history}
    with IntentWriter(model.heads, model.labels, None, parquet, tfrecord, extra) as writer:
        for batch, out in iter_intents(model, dataset, batch_size, history, users):
            n = writer.write(batch.user_ids, batch.timestamps, out)
            if bar is not None:
                bar.update(n)
    if bar is not None:
        bar.close()
    return writer.rows


# --- readers (for tests and downstream users) -------------------------------------------------
def read_parquet_batches(path: str, columns: Optional[Sequence[str]] = None) -> Iterable:
    """Yields pyarrow RecordBatches (one per row group), without loading the whole file."""
    import pyarrow.parquet as pq

    f = pq.ParquetFile(path)
    for i in range(f.num_row_groups):
        yield from f.read_row_group(i, columns=list(columns) if columns else None).to_batches()


def parquet_metadata(path: str) -> dict:
    import pyarrow.parquet as pq

    meta = pq.read_schema(path).metadata or {}
    return json.loads(meta[METADATA_KEY].decode("utf-8")) if METADATA_KEY in meta else {}


def tfrecord_feature_spec(heads: Sequence[str], labels: dict, d_proj: int) -> dict:
    """`tf.io.parse_example` spec of the exported records."""
    import tensorflow as tf

    spec = {
        "user_id": tf.io.FixedLenFeature([], tf.string),
        "timestamp": tf.io.FixedLenFeature([], tf.int64),
        "intent_embedding": tf.io.FixedLenFeature([d_proj], tf.float32),
        "intent_attention": tf.io.FixedLenFeature([len(heads)], tf.float32),
        "primary_intent": tf.io.FixedLenFeature([], tf.string),
    }
    for h in heads:
        spec[f"alpha_{h}"] = tf.io.FixedLenFeature([1], tf.float32)
        spec[f"intent_{h}"] = tf.io.FixedLenFeature([len(labels[h])], tf.float32)
        spec[f"intent_{h}_top"] = tf.io.FixedLenFeature([], tf.string)
    return spec


def read_tfrecord(path: str, batch_size: int = 1024):
    """A tf.data.Dataset of parsed batches (spec from `<path>.meta.json`)."""
    import tensorflow as tf

    with open(path + ".meta.json", encoding="utf-8") as f:
        meta = json.load(f)
    spec = tfrecord_feature_spec(meta["heads"], meta["labels"], meta["d_proj"])
    return tf.data.TFRecordDataset(path).batch(batch_size).map(lambda s: tf.io.parse_example(s, spec))
