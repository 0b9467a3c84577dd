"""Run `preprocessing_fn` with tf.Transform on in-memory examples (tests, parity checks, debugging).

The TFX Transform component does the same at scale; this helper skips TFX so that a
handful of serialized tf.Examples can be analyzed and transformed in seconds.
"""

from __future__ import annotations

import os
import pickle
import tempfile
from typing import Dict, List, Sequence

import numpy as np


def raw_schema(interaction_schema) -> "schema_pb2.Schema":
    """The raw-example schema (every feature a VarLen list), as SchemaGen(infer_feature_shape=False)."""
    from tensorflow_metadata.proto.v0 import schema_pb2

    from components import sequence_example_gen as seg
    from datasets.schema import ITEM, TIMESTAMP, WEIGHT

    s = schema_pb2.Schema()

    def add(name, t):
        f = s.feature.add()
        f.name = name
        f.type = t

    add(ITEM, schema_pb2.BYTES)
    add(TIMESTAMP, schema_pb2.INT)
    for c in (*interaction_schema.categorical, *interaction_schema.multi_label):
        add(c, schema_pb2.BYTES)
    for c in interaction_schema.numeric:
        add(c, schema_pb2.FLOAT)
    if interaction_schema.has_weight:
        add(WEIGHT, schema_pb2.FLOAT)
    add(seg.LABEL_MODE, schema_pb2.INT)
    add(seg.USER_FEATURE, schema_pb2.BYTES)
    add(seg.HISTORY_LENGTH, schema_pb2.INT)
    add(seg.HISTORY_BUCKET, schema_pb2.BYTES)
    add(seg.SEEN_ITEMS, schema_pb2.BYTES)
    return s


def analyze_and_transform(train: Sequence[bytes], others: Dict[str, Sequence[bytes]], custom_config: dict,
                          output_dir: str = None) -> tuple:
    """-> (transform output dir, {"train": [dict], split: [dict], ...}) of transformed features."""
    import apache_beam as beam
    import tensorflow_transform as tft
    import tensorflow_transform.beam as tft_beam
    from tfx_bsl.public import tfxio

    from pipeline import preprocessing as pp

    cfg = pp.PreprocessingConfig.from_custom_config(custom_config)
    schema = raw_schema(cfg.interaction_schema)
    output_dir = output_dir or tempfile.mkdtemp(prefix="tft_local_")
    results: Dict[str, List[dict]] = {}

    def fn(inputs):
        return pp.preprocessing_fn(inputs, custom_config)

    with beam.Pipeline() as p, tft_beam.Context(temp_dir=os.path.join(output_dir, "tmp"), force_tf_compat_v1=False):
        source = tfxio.TFExampleBeamRecord(physical_format="tfrecord", schema=schema, raw_record_column_name=None)
        train_data = p | "TrainRecords" >> beam.Create(list(train), reshuffle=False) | "TrainDecode" >> source.BeamSource()
        (transformed_train, _), transform_fn = (
            (train_data, source.TensorAdapterConfig()) | tft_beam.AnalyzeAndTransformDataset(
                fn, output_record_batches=False))
        _ = transform_fn | tft_beam.WriteTransformFn(output_dir)
        collected = {"train": transformed_train}
        for split, records in others.items():
            data = p | f"{split}Records" >> beam.Create(list(records), reshuffle=False) | f"{split}Decode" >> source.BeamSource()
            (t, _) = ((data, source.TensorAdapterConfig()), transform_fn) | f"{split}Transform" >> tft_beam.TransformDataset(
                output_record_batches=False)
            collected[split] = t
        for split, pcoll in collected.items():
            _ = pcoll | f"{split}Collect" >> beam.combiners.ToList() | f"{split}Store" >> beam.Map(
                _dump, os.path.join(output_dir, f"transformed_{split}.pkl"))
    for split in collected_names(others):
        with open(os.path.join(output_dir, f"transformed_{split}.pkl"), "rb") as f:
            results[split] = pickle.load(f)
    return output_dir, results


def collected_names(others) -> List[str]:
    return ["train", *others]


def _dump(rows, path):
    with open(path, "wb") as f:
        pickle.dump(rows, f)


def stack(rows: List[dict]) -> Dict[str, np.ndarray]:
    """Instance dicts -> {feature: stacked array} (a list of arrays for variable-length features)."""
    if not rows:
        return {}
    out = {}
    for k in rows[0]:
        values = [np.asarray(r[k]) for r in rows]
        out[k] = np.stack(values) if len({v.shape for v in values}) == 1 else values
    return out
