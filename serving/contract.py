"""The serving contract between the exporter (`pipeline/export.py`), the servers and clients.

Everything that crosses the boundary between the exported SavedModel and the code that
serves or calls it is named here, so that the exporter, our server (`serving.server`),
the client (`serving.client`) and real TF Serving agree. The prose version, with
shapes and examples, is docs/serving.md; keep the two in step.

This module is deliberately dependency-free (no TensorFlow import), so that anything
may import it cheaply.

Layout pushed by the Pusher (exactly what `tensorflow/serving` loads)::

    <serving_root>/<model_name>/<version>/        # version: a positive integer
        saved_model.pb
        variables/...
        assets/...                                 # vocabularies used by the graph
        assets.extra/intentrec_metadata.json       # METADATA_FILE (see below)
        assets.extra/tf_serving_warmup_requests    # WARMUP_FILE, optional (serving.warmup)

Signatures (all under the SavedModel tag "serve"):

- ``serving_default`` — input ``examples``: DT_STRING ``[batch]``, one serialized
  ``tf.train.Example`` per user holding the user's raw history, oldest first, as
  list features of equal length (see EXAMPLE_* below).
- ``predict_raw`` — the same history as plain tensors, ``[batch, n]`` each, left-padded
  (latest interaction at index n-1; "" / 0 at padding).
- ``intentrec_metadata`` (optional but recommended) — no inputs, one DT_STRING scalar
  output ``metadata_json`` holding the METADATA_FILE document, so that clients of real
  TF Serving (whose GetModelMetadata only returns signature defs) can get titles and
  intent labels.

Outputs of ``serving_default`` and ``predict_raw`` (identical):

=====================  ==========  ===============  =======================================
name                   dtype       shape            meaning
=====================  ==========  ===============  =======================================
``top_k_ids``          DT_STRING   [batch, k]       recommended item ids, best first
``top_k_scores``       DT_FLOAT    [batch, k]       their scores (logits), descending
``intent_<head>``      DT_FLOAT    [batch, d_head]  per-head next-intent probabilities
``intent_embedding``   DT_FLOAT    [batch, d_proj]  Z, the fused intent embedding
``intent_attention``   DT_FLOAT    [batch, M]       softmax(alpha) over the M heads, in
                                                    ``intent_heads`` order; rows sum to 1
``primary_intent``     DT_STRING   [batch]          name of the head with the largest alpha
=====================  ==========  ===============  =======================================

Head names must not be ``embedding`` or ``attention`` (they would collide with the fixed
outputs) and must be valid signature keys (``[A-Za-z0-9_]``).
"""

from __future__ import annotations

import json
import os
import re
from typing import Any, Mapping

# --- SavedModel / TF Serving layout ------------------------------------------------------
SAVED_MODEL_TAG = "serve"
SAVED_MODEL_PB = "saved_model.pb"
SAVED_MODEL_PBTXT = "saved_model.pbtxt"
ASSETS_EXTRA_DIR = "assets.extra"
METADATA_FILE = "intentrec_metadata.json"
WARMUP_FILE = "tf_serving_warmup_requests"  # TF Serving's fixed name; TFRecord of PredictionLog
DEFAULT_MODEL_NAME = "intentrec"

# --- Signatures ----------------------------------------------------------------------------
SERVING_SIGNATURE = "serving_default"  # == tf.saved_model.DEFAULT_SERVING_SIGNATURE_DEF_KEY
RAW_SIGNATURE = "predict_raw"
METADATA_SIGNATURE = "intentrec_metadata"
METADATA_OUTPUT = "metadata_json"
PREDICT_METHOD_NAME = "tensorflow/serving/predict"

# Input of SERVING_SIGNATURE.
EXAMPLES_INPUT = "examples"

# tf.Example features (list features, one value per interaction, oldest first). The raw
# signature takes the same names as [batch, n] tensors. Besides these two, every
# per-interaction metadata column of the dataset schema (datasets.schema) may appear:
#   categorical -> bytes_list, multi-label -> bytes_list of "|"-joined values,
#   numeric     -> float_list.
EXAMPLE_ITEM_ID = "item_id"  # bytes_list
EXAMPLE_TIMESTAMP = "timestamp"  # int64_list, seconds since the epoch (or the 0-based order)

# --- Outputs -------------------------------------------------------------------------------
TOP_K_IDS = "top_k_ids"
TOP_K_SCORES = "top_k_scores"
INTENT_PREFIX = "intent_"
INTENT_EMBEDDING = "intent_embedding"
INTENT_ATTENTION = "intent_attention"
PRIMARY_INTENT = "primary_intent"
FIXED_OUTPUTS = (TOP_K_IDS, TOP_K_SCORES, INTENT_EMBEDDING, INTENT_ATTENTION, PRIMARY_INTENT)
RESERVED_HEAD_NAMES = ("embedding", "attention")

# --- METADATA_FILE keys --------------------------------------------------------------------
# {
#   "format_version": 1,
#   "intent_heads": ["action_type", "genre"],               # order of intent_attention
#   "intent_labels": {"genre": ["<pad>", "<oov>", "Drama", ...], ...},  # d_head labels each
#   "item_titles": {"1193": "One Flew Over the Cuckoo's Nest (1975)", ...},
#   "k": 10, "history_length": 200,                          # optional
#   "example_features": {"item_id": "bytes", "timestamp": "int64", "genre": "bytes", ...}
# }
META_FORMAT_VERSION = "format_version"
META_INTENT_HEADS = "intent_heads"
META_INTENT_LABELS = "intent_labels"
META_ITEM_TITLES = "item_titles"
META_K = "k"
META_HISTORY_LENGTH = "history_length"
META_EXAMPLE_FEATURES = "example_features"  # feature -> "bytes" | "int64" | "float"
FORMAT_VERSION = 1
# intent_labels[h][0] and [1] are the vocabularies' padding and OOV slots ("<pad>", "<oov>"):
# never a predicted intent.
NUM_RESERVED_LABELS = 2

_HEAD_RE = re.compile(r"^[A-Za-z0-9_]+$")


def intent_output_name(head: str) -> str:
    """Output alias of an intent head's probabilities: ``intent_<head>``."""
    validate_head_name(head)
    return INTENT_PREFIX + head


def validate_head_name(head: str) -> None:
    if not _HEAD_RE.match(head) or head in RESERVED_HEAD_NAMES:
        raise ValueError(
            f"invalid intent head name {head!r}: must match [A-Za-z0-9_]+ and not be one of "
            f"{RESERVED_HEAD_NAMES}"
        )


def intent_heads_from_outputs(output_names) -> list[str]:
    """Head names recovered from output aliases (fallback when there is no metadata)."""
    fixed = set(FIXED_OUTPUTS)
    return sorted(
        name[len(INTENT_PREFIX):]
        for name in output_names
        if name.startswith(INTENT_PREFIX) and name not in fixed
    )


def expected_outputs(intent_heads) -> list[str]:
    """Every output alias that serving_default and predict_raw must have."""
    return [*FIXED_OUTPUTS[:2], *(intent_output_name(h) for h in intent_heads), *FIXED_OUTPUTS[2:]]


def metadata_path(version_dir: str) -> str:
    return os.path.join(version_dir, ASSETS_EXTRA_DIR, METADATA_FILE)


def warmup_path(version_dir: str) -> str:
    return os.path.join(version_dir, ASSETS_EXTRA_DIR, WARMUP_FILE)


def make_metadata(
    intent_heads,
    intent_labels: Mapping[str, list] | None = None,
    item_titles: Mapping[str, str] | None = None,
    **extra: Any,
) -> dict:
    """The METADATA_FILE document, validated."""
    heads = [str(h) for h in intent_heads]
    for h in heads:
        validate_head_name(h)
    labels = {str(h): [str(v) for v in vals] for h, vals in (intent_labels or {}).items()}
    unknown = set(labels) - set(heads)
    if unknown:
        raise ValueError(f"intent_labels for unknown heads: {sorted(unknown)}")
    doc = {
        META_FORMAT_VERSION: FORMAT_VERSION,
        META_INTENT_HEADS: heads,
        META_INTENT_LABELS: labels,
        META_ITEM_TITLES: {str(k): str(v) for k, v in (item_titles or {}).items()},
    }
    doc.update(extra)
    return doc


def write_metadata(version_dir: str, metadata: Mapping[str, Any]) -> str:
    """Writes METADATA_FILE under ``<version_dir>/assets.extra/``; returns its path."""
    path = metadata_path(version_dir)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(dict(metadata), f, ensure_ascii=False, sort_keys=True)
    return path


def read_metadata(version_dir: str) -> dict | None:
    """The METADATA_FILE of a version directory, or None when absent."""
    path = metadata_path(version_dir)
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)
