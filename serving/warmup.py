"""SavedModel warm-up records, in TF Serving's format.

TF Serving replays ``<version>/assets.extra/tf_serving_warmup_requests`` (a TFRecord file
of ``tensorflow.serving.PredictionLog``) when it loads a version, before marking it
AVAILABLE, so that the first real request does not pay for graph initialisation. A
warm-up failure fails the load. The exporter calls `write_warmup_requests`; our server
(`serving.model_manager`) replays the file the same way (`read_warmup_requests`).
"""

from __future__ import annotations

import os
from typing import Iterable, Sequence

from serving import contract

MAX_WARMUP_RECORDS = 1000  # TF Serving's limit (kMaxNumRecords in saved_model_warmup_util)


def _serialize(example) -> bytes:
    if isinstance(example, (bytes, bytearray)):
        return bytes(example)
    if hasattr(example, "SerializeToString"):
        return example.SerializeToString()
    raise TypeError(f"expected a tf.train.Example or serialized bytes, got {type(example).__name__}")


def build_warmup_logs(
    examples: Iterable,
    *,
    model_name: str = contract.DEFAULT_MODEL_NAME,
    signature_name: str = contract.SERVING_SIGNATURE,
    input_name: str = contract.EXAMPLES_INPUT,
    batch_size: int = 1,
):
    """PredictionLog records, each a Predict request of ``batch_size`` serialized Examples."""
    from tensorflow_serving.apis import prediction_log_pb2

    from serving.tensor_codec import ndarray_to_proto
    import numpy as np

    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    serialized = [_serialize(e) for e in examples]
    logs = []
    for start in range(0, len(serialized), batch_size):
        chunk = serialized[start:start + batch_size]
        log = prediction_log_pb2.PredictionLog()
        req = log.predict_log.request
        req.model_spec.name = model_name
        req.model_spec.signature_name = signature_name
        req.inputs[input_name].CopyFrom(ndarray_to_proto(np.array(chunk, dtype=object)))
        logs.append(log)
    return logs


def write_warmup_requests(
    export_dir: str,
    examples: Sequence,
    *,
    model_name: str = contract.DEFAULT_MODEL_NAME,
    signature_name: str = contract.SERVING_SIGNATURE,
    batch_size: int = 1,
) -> str:
    """Writes ``<export_dir>/assets.extra/tf_serving_warmup_requests``; returns its path.

    ``examples``: tf.train.Example protos (or their serialized bytes), e.g. a few real
    user histories built with `serving.examples.make_example`. One Predict request per
    ``batch_size`` examples, at most 1000 records (TF Serving's limit).
    """
    import tensorflow as tf

    logs = build_warmup_logs(examples, model_name=model_name, signature_name=signature_name,
                             batch_size=batch_size)
    if not logs:
        raise ValueError("no warm-up examples")
    if len(logs) > MAX_WARMUP_RECORDS:
        raise ValueError(f"{len(logs)} warm-up records; TF Serving accepts at most {MAX_WARMUP_RECORDS}")
    path = contract.warmup_path(export_dir)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with tf.io.TFRecordWriter(path) as w:
        for log in logs:
            w.write(log.SerializeToString())
    return path


def read_warmup_requests(version_dir: str):
    """The PredictionLog records of a version directory ([] when there is no file).

    Raises ValueError past MAX_WARMUP_RECORDS or on a corrupt file, as TF Serving fails
    such a load.
    """
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    path = contract.warmup_path(version_dir)
    if not os.path.exists(path):
        return []
    logs = []
    try:
        for raw in tf.data.TFRecordDataset(path).as_numpy_iterator():
            if len(logs) >= MAX_WARMUP_RECORDS:
                raise ValueError(
                    f"number of warmup records exceeds the maximum ({MAX_WARMUP_RECORDS}) in {path}")
            log = prediction_log_pb2.PredictionLog()
            log.ParseFromString(raw)
            logs.append(log)
    except tf.errors.OpError as e:
        raise ValueError(f"corrupt warm-up file {path}: {e.message}") from e
    return logs
