"""SavedModel warm-up records, in TF Serving's format.

TF Serving replays ``<version>/assets.extra/tf_serving_warmup_requests`` (a TFRecord file
of ``tensorflow.serving.PredictionLog``) when it loads a version, before marking it
AVAILABLE, so that the first real request does not pay for graph initialisation. A
warm-up failure fails the load. The exporter calls `write_warmup_requests`; our server
replays the file the same way (`make_warmup`), then warms the contract signatures the file
does not cover.
"""

from __future__ import annotations

import logging
import os
from typing import Iterable, Sequence

from serving import contract

_log = logging.getLogger(__name__)

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


# --- replay (our server; TF Serving's saved_model_warmup_util) ---------------------------------
def make_warmup(iterations: int = 1):
    """The load-time warm-up of a ServableVersion: replays its warm-up file (a failure fails
    the load, as in TF Serving), then calls once each contract signature the file did not
    cover (predict_raw, intentrec_metadata; serving_default when there is no file), so that
    their first real request does not pay for graph initialisation (predict_raw's first
    call took 1 s). Those extra calls are ours: their failure is logged, not fatal."""

    def warmup(sv) -> None:
        from serving.errors import ServingError, invalid

        try:
            logs = read_warmup_requests(sv.path)
        except ValueError as e:
            raise invalid(str(e)) from None
        covered, first_example, n = set(), None, 0
        for record in logs:
            kind = record.WhichOneof("log_type")
            if kind != "predict_log":
                _log.warning("skipping warm-up record of type %s (only predict_log is replayed)", kind)
                continue
            sig, inputs, names = _record_inputs(sv, record.predict_log.request)
            for _ in range(max(1, iterations)):
                sig.run(inputs, names)
                n += 1
            covered.add(sig.name)
            if first_example is None and sig.example_input is not None and inputs[sig.example_input].size:
                first_example = inputs[sig.example_input].ravel()[0]
        if n:
            _log.info("Finished reading warmup data for model at %s. Number of warmup records read: %d.",
                      sv.path, n)
        for name in (contract.SERVING_SIGNATURE, contract.RAW_SIGNATURE, contract.METADATA_SIGNATURE):
            sig = sv.signatures.get(name)
            if sig is None or name in covered:
                continue
            try:
                inputs = _synthetic_inputs(sig, first_example, (sv.metadata or {}).get(contract.META_HISTORY_LENGTH))
                for _ in range(max(1, iterations)):
                    sig.run(inputs, sig.output_names)
            except (ServingError, ValueError, TypeError) as e:
                _log.warning("%s v%d: warm-up call of %s failed (the load goes on): %s", sv.model_name,
                             sv.version, name, getattr(e, "message", e))

    return warmup


def _record_inputs(sv, req):
    from serving import tensor_codec

    sig = sv.signature(req.model_spec.signature_name)
    sig.check_input_names(list(req.inputs.keys()))
    names = sig.check_output_filter(req.output_filter)
    inputs = {}
    for name, tp in req.inputs.items():
        arr = tensor_codec.proto_to_ndarray(tp, name=name)
        sig.check_input(name, arr, tp.dtype)
        inputs[name] = arr
    return sig, inputs, names


def _synthetic_inputs(sig, example: bytes | None, history_length) -> dict:
    """One-row inputs for sig: the warm-up file's first tf.Example (or an empty one), as
    predict_raw's left-padded [1, n] tensors when sig takes tensors."""
    import numpy as np
    from tensorflow.core.example import example_pb2

    from serving.examples import left_pad

    if sig.example_input is not None:
        return {sig.example_input: np.array([example or b""], dtype=object)}
    features = example_pb2.Example.FromString(example).features.feature if example else {}
    item = features.get(contract.EXAMPLE_ITEM_ID) if features else None
    n = len(item.bytes_list.value) if item is not None else int(history_length or 1)
    inputs = {}
    for name, spec in sig.inputs.items():
        if spec.rank == 2:
            f = features.get(name) if features else None
            kind = f.WhichOneof("kind") if f is not None else None
            values = list(getattr(f, kind).value) if kind else []
            inputs[name] = left_pad([values], spec.shape[1] if spec.shape[1] > 0 else n, spec.np_dtype)
        else:
            shape = tuple(1 if d < 0 else d for d in (spec.shape or ()))
            inputs[name] = np.full(shape, b"" if spec.np_dtype == np.dtype(object) else 0, dtype=spec.np_dtype)
    return inputs
