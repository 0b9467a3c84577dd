"""TFX Transform: raw per-user tf.Examples -> the model's encoded inputs and targets.

`preprocessing_fn` is the TensorFlow Transform mirror of the numpy reference encoder
`datasets.encoder` (same vocabularies, statistics, padding, targets and weights;
tests/pipeline/test_preprocessing_parity.py checks it). Its graph is saved with the
model and runs again at serving time (the `transform_features` signature and inside
`serving_default` / `predict_raw`), so training and serving cannot skew.

Raw features (written by `components.sequence_example_gen`, sent by serving clients):
``item_id``, ``timestamp`` and one list per metadata column, one value per interaction,
plus the scalar ``label_mode``: 0 (absent, serving) = every interaction is an input;
1 (train) = inputs s[:-1] with next-step targets s[1:] at every position;
2 (eval/test) = inputs s[:-1] with the single target s[-1] at the last position;
3 (an earlier sliding training window) = like 1, left out of the analyzers.

Outputs (ARCHITECTURE.md §2; `to_model_inputs` / `to_model_targets` only cast and rename):

- inputs ``[B, n]``: ``item``, ``time`` (days since the first interaction of the window,
  or the order difference without timestamps), one id column per categorical (including
  the derived ``hour_of_day`` / ``day_of_week``), one z-scored column per numeric;
  ``[B, n, G]``: one multi-hot per multi-label column.
- targets ``label_item``, ``label_<intent>`` (ids, or multi-hot for "multi" intents) and
  ``sample_weight`` (duration weight / training mean; 0 where there is no target).
- ``seen_item`` sparse ``[B, None]``: ids of ``seen_item_id``, the user's whole history
  before an eval/test target (the seen-item filter, `datasets.encoder.Split.seen`).
- ``order_user``, ``order_end`` ``[B]``: user and ``history_length``, the Trainer's row
  order (the numpy encoder's); serving requests lack both, so serving prunes them.

Ids: 0 padding, 1 OOV (unknown or missing), 2.. by descending training frequency;
ties are broken by descending value (TensorFlow Transform's fixed order, which the numpy
`datasets.vocabulary.Vocabulary` follows: both give every value the same id).

The short-term window H is not applied here: the model derives it from ``time``, so H
can be swept without re-running Transform.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Dict, Optional

import tensorflow as tf
import tensorflow_transform as tft

from components.sequence_example_gen import HISTORY_LENGTH, SEEN_ITEMS, USER_FEATURE
from datasets.feature_spec import DAY_OF_WEEK, DEFAULT_MAX_LEN, HOUR_OF_DAY, FeatureSpec, derived_time_features
from datasets.schema import (
    ITEM,
    MULTI_LABEL_SEP,
    NUM_RESERVED_IDS,
    OOV_ID,
    PAD_ID,
    SECONDS_PER_DAY,
    TIMESTAMP,
    WEIGHT,
    InteractionSchema,
)

LABEL_MODE = "label_mode"  # == components.sequence_example_gen.LABEL_MODE
MODE_SERVE, MODE_TRAIN, MODE_EVAL, MODE_TRAIN_WINDOW = 0, 1, 2, 3
ITEM_INPUT = "item"
TIME_INPUT = "time"
LABEL_PREFIX = "label_"
SAMPLE_WEIGHT = "sample_weight"
ITEM_VOCAB = "item"
ITEM_COUNTS_VOCAB = "item_counts"  # same order as ITEM_VOCAB, with training counts
SEEN_OUTPUT = "seen_item"
ORDER_USER, ORDER_END = "order_user", "order_end"
_INT64_MAX = tf.int64.max


@dataclasses.dataclass(frozen=True)
class PreprocessingConfig:
    """What `preprocessing_fn` needs; travels as Transform's `custom_config`."""

    schema: Dict[str, Any]
    max_len: int = DEFAULT_MAX_LEN
    derive_time_features: bool = True

    @property
    def interaction_schema(self) -> InteractionSchema:
        return InteractionSchema.from_dict(self.schema)

    @property
    def derived_categorical(self) -> tuple:
        return derived_time_features(self.interaction_schema, self.derive_time_features)

    @property
    def categorical(self) -> tuple:
        """Categorical model inputs, in the numpy encoder's order (schema, then derived)."""
        return tuple(self.interaction_schema.categorical) + self.derived_categorical

    def to_custom_config(self) -> dict:
        return {"preprocessing": dataclasses.asdict(self)}

    @classmethod
    def from_custom_config(cls, custom_config: Optional[dict]) -> "PreprocessingConfig":
        if not custom_config or "preprocessing" not in custom_config:
            raise ValueError("Transform custom_config must hold {'preprocessing': PreprocessingConfig}")
        d = custom_config["preprocessing"]
        if isinstance(d, str):
            d = json.loads(d)
        return cls(**d)


# --------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------
def _sparse(x) -> tf.SparseTensor:
    """A list feature as a [B, L] SparseTensor (parse_example's VarLen format)."""
    if isinstance(x, tf.SparseTensor):
        return x
    if isinstance(x, tf.RaggedTensor):
        return x.to_sparse()
    x = tf.convert_to_tensor(x)
    if x.shape.rank == 1:
        x = tf.expand_dims(x, -1)
    return tf.sparse.from_dense(x)


def _rows(sp: tf.SparseTensor, op, values) -> tf.Tensor:
    """Per-row reduction of `values` (one per sparse entry) -> [B]."""
    return op(values, sp.indices[:, 0], num_segments=sp.dense_shape[0])


def _lengths(sp: tf.SparseTensor) -> tf.Tensor:
    """[B] int64 number of values per row."""
    return tf.maximum(_rows(sp, tf.math.unsorted_segment_max, sp.indices[:, 1] + 1), 0)


def _dense(x, width, default) -> tf.Tensor:
    """[B, width] from a list feature (right-padded with `default` / cut to `width`).

    Sparse ops only: the ragged equivalents add hundreds of graph ops, and every op
    costs at each of TFT's traces and in the saved transform graph.
    """
    sp = _sparse(x)
    width = tf.cast(width, tf.int64)
    sp = tf.sparse.retain(sp, sp.indices[:, 1] < width)
    sp = tf.SparseTensor(sp.indices, sp.values, tf.stack([sp.dense_shape[0], width]))
    return tf.sparse.to_dense(sp, default_value=tf.cast(default, sp.dtype), validate_indices=False)


def _scalar(x, default) -> tf.Tensor:
    """[B] first value of a list feature, `default` when empty."""
    if x is None:
        return None
    return _dense(x, 1, default)[:, 0]


def _gather(values, idx, mask, pad):
    """values [B, W, ...], idx/mask [B, n] -> [B, n, ...], `pad` where not mask."""
    out = tf.gather(values, idx, batch_dims=1)
    m = mask
    for _ in range(out.shape.rank - 2):
        m = m[..., None]
    return tf.where(m, out, tf.cast(pad, out.dtype))


def _lookup(strings, vocab, valid):
    """Strings -> ids (0 where not valid, 1 for unknown / missing '', 2..)."""
    idx = tft.apply_vocabulary(strings, deferred_vocab_filename_tensor=vocab, default_value=-1)
    ids = tf.where(idx < 0, tf.cast(OOV_ID, tf.int64), idx + NUM_RESERVED_IDS)
    ids = tf.where(tf.equal(strings, ""), tf.cast(OOV_ID, tf.int64), ids)
    return tf.where(valid, ids, tf.cast(PAD_ID, tf.int64))


def _multi_hot(strings, valid, vocab_name, train_tokens_filter):
    """[B, W] '|'-joined strings -> ([B, W, G] float multi-hot, vocab). Unknown -> slot 1."""
    b = tf.shape(strings)[0]
    w = tf.shape(strings)[1]
    flat = tf.reshape(strings, [-1])
    toks = tf.strings.split(flat, sep=MULTI_LABEL_SEP)  # ragged [B*W, None]
    row = tf.cast(toks.value_rowids(), tf.int64)
    values = toks.values
    keep = tf.not_equal(values, "") & tf.gather(tf.reshape(valid, [-1]), row)
    row = tf.boolean_mask(row, keep)
    values = tf.boolean_mask(values, keep)
    # Vocabulary counts interactions containing a token (duplicates within one
    # interaction count once, as in the numpy encoder).
    key = tf.strings.join([tf.strings.as_string(row), values], separator="\x1f")
    uniq, _ = tf.unique(tf.boolean_mask(key, train_tokens_filter(row)))
    vocab_tokens = tf.strings.split(uniq, sep="\x1f").to_tensor(default_value="", shape=[None, 2])[:, 1]
    vocab = tft.vocabulary(vocab_tokens, vocab_filename=vocab_name, name=f"vocab_{vocab_name}")
    size = tf.cast(tft.experimental.get_vocabulary_size_by_name(vocab_name), tf.int32) + NUM_RESERVED_IDS
    idx = tft.apply_vocabulary(values, deferred_vocab_filename_tensor=vocab, default_value=-1)
    ids = tf.where(idx < 0, tf.cast(OOV_ID, tf.int64), idx + NUM_RESERVED_IDS)
    one_hot = tf.one_hot(tf.cast(ids, tf.int32), depth=size, dtype=tf.float32)
    mh = tf.math.unsorted_segment_max(one_hot, tf.cast(row, tf.int32), num_segments=b * w)
    mh = tf.maximum(mh, 0.0)  # empty segments come back as the lowest float
    return tf.reshape(mh, tf.stack([b, w, size])), vocab


# --------------------------------------------------------------------------------------
# preprocessing_fn
# --------------------------------------------------------------------------------------
def preprocessing_fn(inputs: Dict[str, Any], custom_config: Optional[dict] = None) -> Dict[str, tf.Tensor]:
    """TFT preprocessing: see the module docstring."""
    cfg = PreprocessingConfig.from_custom_config(custom_config)
    schema = cfg.interaction_schema
    n = int(cfg.max_len)

    items_sp = _sparse(inputs[ITEM])
    lengths = _lengths(items_sp)  # [B] int64
    width = tf.reduce_max(tf.concat([lengths, [0]], 0)) + 1  # >= 1 padding column
    b = items_sp.dense_shape[0]
    pos = tf.range(width, dtype=tf.int64)[None, :]
    raw_valid = pos < lengths[:, None]  # [B, W]
    mode = _scalar(inputs.get(LABEL_MODE), 0) if LABEL_MODE in inputs else tf.zeros([b], tf.int64)
    mode = tf.cast(mode, tf.int64)

    # ---- raw columns, dense [B, W], sorted by timestamp (stable) ----
    raw = {ITEM: _dense(items_sp, width, "")}
    if TIMESTAMP in inputs:
        ts_sp = _sparse(inputs[TIMESTAMP])
        ts = _dense(ts_sp, width, 0)
        # No timestamps sent at all: the order is the time (as datasets.encoder does).
        ts = tf.where(tf.equal(_lengths(ts_sp), 0)[:, None], tf.broadcast_to(pos, tf.shape(ts)), ts)
    else:
        ts = tf.broadcast_to(pos, tf.stack([b, width]))
    raw[TIMESTAMP] = tf.cast(ts, tf.int64)
    for c in (*schema.categorical, *schema.multi_label):
        raw[c] = _dense(inputs[c], width, "") if c in inputs else tf.fill(tf.stack([b, width]), "")
    nan = float("nan")
    for c in schema.numeric:
        raw[c] = tf.cast(_dense(inputs[c], width, nan), tf.float32) if c in inputs else tf.fill(
            tf.stack([b, width]), nan)
    if schema.has_weight and WEIGHT in inputs:
        w_raw = tf.cast(_dense(inputs[WEIGHT], width, nan), tf.float32)
    else:
        w_raw = tf.ones(tf.stack([b, width]), tf.float32)
    raw[WEIGHT] = tf.where(tf.math.is_finite(w_raw) & (w_raw >= 0), w_raw, 1.0)
    if schema.has_timestamps:
        key = tf.where(raw_valid, raw[TIMESTAMP], _INT64_MAX)
        order = tf.argsort(key, axis=1, stable=True)
        raw = {k: tf.gather(v, order, batch_dims=1) for k, v in raw.items()}

    # ---- windows: inputs (last n of s[:L_in]) and targets ----
    has_targets = mode > 0
    l_in = tf.maximum(lengths - tf.cast(has_targets, tf.int64), 0)
    m = tf.minimum(l_in, n)
    offset = n - m
    start = l_in - m
    j = tf.range(n, dtype=tf.int64)[None, :]
    in_valid = j >= offset[:, None]  # [B, n]
    src = tf.clip_by_value(start[:, None] + j - offset[:, None], 0, width - 1)
    tgt_raw = start[:, None] + j - offset[:, None] + 1
    trains = tf.equal(mode, MODE_TRAIN) | tf.equal(mode, MODE_TRAIN_WINDOW)
    tgt_valid = (in_valid & has_targets[:, None] & (tgt_raw < lengths[:, None])
                 & (trains[:, None] | tf.equal(j, n - 1)))
    tgt = tf.clip_by_value(tgt_raw, 0, width - 1)

    # Training portion (what analyzers see): every interaction of a MODE_TRAIN example
    # (sliding windows repeat rows of it; analyzers only run on the train split, the
    # filter also keeps eval/test rows out should anyone analyze them).
    train_row = tf.equal(mode, MODE_TRAIN) | tf.equal(mode, MODE_SERVE)
    train_valid = raw_valid & train_row[:, None]

    def fit_values(x):
        return tf.boolean_mask(x, train_valid)

    out = {}
    # ---- items ----
    item_vocab = tft.vocabulary(tf.boolean_mask(fit_values(raw[ITEM]), tf.not_equal(fit_values(raw[ITEM]), "")),
                                vocab_filename=ITEM_VOCAB, name="vocab_item")
    tft.vocabulary(tf.boolean_mask(fit_values(raw[ITEM]), tf.not_equal(fit_values(raw[ITEM]), "")),
                   vocab_filename=ITEM_COUNTS_VOCAB, store_frequency=True, name="vocab_item_counts")
    item_ids = _lookup(raw[ITEM], item_vocab, raw_valid)
    out[ITEM_INPUT] = _gather(item_ids, src, in_valid, PAD_ID)
    labels = {ITEM_INPUT: _gather(item_ids, tgt, tgt_valid, PAD_ID)}

    # ---- time ----
    t0 = tf.gather(raw[TIMESTAMP], tf.clip_by_value(start, 0, width - 1)[:, None], batch_dims=1)  # [B, 1]
    delta = tf.cast(tf.gather(raw[TIMESTAMP], src, batch_dims=1) - t0, tf.float64)
    if schema.has_timestamps:
        delta = delta / SECONDS_PER_DAY
    out[TIME_INPUT] = tf.where(in_valid, tf.cast(delta, tf.float32), 0.0)

    # ---- categoricals (schema, then derived time features) ----
    cat_strings = {c: raw[c] for c in schema.categorical}
    if cfg.derived_categorical:
        t = raw[TIMESTAMP]
        cat_strings[HOUR_OF_DAY] = tf.strings.as_string(tf.math.floormod(tf.math.floordiv(t, 3600), 24))
        cat_strings[DAY_OF_WEEK] = tf.strings.as_string(tf.math.floormod(tf.math.floordiv(t, 86400) + 3, 7))
    cat_ids = {}
    for c in cfg.categorical:
        s = cat_strings[c]
        fv = fit_values(s)
        vocab = tft.vocabulary(tf.boolean_mask(fv, tf.not_equal(fv, "")), vocab_filename=c, name=f"vocab_{c}")
        cat_ids[c] = _lookup(s, vocab, raw_valid)
        out[c] = _gather(cat_ids[c], src, in_valid, PAD_ID)

    # ---- multi-label: multi-hot [B, n, G] ----
    multi = {}
    for c in schema.multi_label:
        train_flat = tf.reshape(train_valid, [-1])
        mh, _ = _multi_hot(raw[c], raw_valid, c, lambda rows: tf.gather(train_flat, rows))
        multi[c] = mh
        out[c] = _gather(mh, src, in_valid, 0.0)

    # ---- numeric: z-score with training statistics; 0 at padding / missing ----
    for c in schema.numeric:
        x = raw[c]
        finite = tf.math.is_finite(x) & raw_valid
        fx = tf.boolean_mask(x, finite & train_valid)
        mean = tft.mean(fx, name=f"mean_{c}")
        var = tft.var(fx, name=f"var_{c}")
        std = tf.sqrt(var)
        std = tf.where(tf.math.is_finite(std) & (std > 0), std, tf.ones_like(std))
        mean = tf.where(tf.math.is_finite(mean), mean, tf.zeros_like(mean))
        z = tf.where(finite, (x - mean) / std, 0.0)
        out[c] = _gather(z, src, in_valid, 0.0)

    # ---- targets of the intent heads ----
    for spec in schema.intents:
        c = spec.column
        if spec.kind == "multi":
            labels[c] = _gather(multi[c], tgt, tgt_valid, 0.0)
        else:
            labels[c] = _gather(cat_ids[c], tgt, tgt_valid, PAD_ID)

    # ---- duration weights: mean 1 over the training targets ----
    w_t = tf.where(tgt_valid, tf.gather(raw[WEIGHT], tgt, batch_dims=1), 0.0)
    mean_w = tft.mean(tf.boolean_mask(w_t, tgt_valid & trains[:, None]), name="mean_weight")
    scale = tf.where(tf.math.is_finite(mean_w) & (mean_w > 0), 1.0 / mean_w, tf.ones_like(mean_w))
    out[SAMPLE_WEIGHT] = w_t * scale

    for k, v in labels.items():
        out[LABEL_PREFIX + k] = v

    # Static shapes (the window length n is fixed; G is known after analysis).
    for k, v in out.items():
        if v.shape.rank == 2:
            out[k] = tf.ensure_shape(v, [None, n])

    if SEEN_ITEMS in inputs:
        out[SEEN_OUTPUT] = tf.sparse.map_values(_lookup, _sparse(inputs[SEEN_ITEMS]), item_vocab, True)
    if USER_FEATURE in inputs and HISTORY_LENGTH in inputs:
        out[ORDER_USER] = _scalar(inputs[USER_FEATURE], "")
        out[ORDER_END] = _scalar(inputs[HISTORY_LENGTH], -1)
    return out


# --------------------------------------------------------------------------------------
# Transformed features -> model inputs / targets (shared by the Trainer and the export)
# --------------------------------------------------------------------------------------
def to_model_inputs(transformed: Dict[str, tf.Tensor], cfg: PreprocessingConfig) -> Dict[str, tf.Tensor]:
    """Exactly the model's input keys with the ARCHITECTURE.md §2 dtypes."""
    s = cfg.interaction_schema
    x = {ITEM_INPUT: tf.cast(transformed[ITEM_INPUT], tf.int32),
         TIME_INPUT: tf.cast(transformed[TIME_INPUT], tf.float32)}
    for c in cfg.categorical:
        x[c] = tf.cast(transformed[c], tf.int32)
    for c in s.multi_label:
        x[c] = tf.cast(transformed[c], tf.float32)
    for c in s.numeric:
        x[c] = tf.cast(transformed[c], tf.float32)
    return x


def to_model_targets(transformed: Dict[str, tf.Tensor], cfg: PreprocessingConfig) -> Dict[str, tf.Tensor]:
    """{"item", <intent>..., "weight"} as `model.IntentRec.compute_loss` expects."""
    y = {ITEM_INPUT: tf.cast(transformed[LABEL_PREFIX + ITEM_INPUT], tf.int32)}
    for spec in cfg.interaction_schema.intents:
        v = transformed[LABEL_PREFIX + spec.column]
        y[spec.column] = tf.cast(v, tf.float32 if spec.kind == "multi" else tf.int32)
    y["weight"] = tf.cast(transformed[SAMPLE_WEIGHT], tf.float32)
    return y


def feature_spec(tf_transform_output, cfg: PreprocessingConfig) -> FeatureSpec:
    """The model's data description, counted from Transform's vocabularies (the numpy
    encoder's is `datasets.preprocessor.Preprocessor.feature_spec`: one builder, `FeatureSpec.build`)."""
    s = cfg.interaction_schema
    names = (ITEM_VOCAB, *cfg.categorical, *s.multi_label)
    sizes = {name: int(tf_transform_output.vocabulary_size_by_name(name)) + NUM_RESERVED_IDS for name in names}
    return FeatureSpec.build(s, cfg.max_len, sizes, cfg.derived_categorical)


def read_vocabulary(tf_transform_output, name: str) -> list:
    """id-ordered tokens incl. '<pad>' and '<oov>' (as `datasets.vocabulary.Vocabulary.tokens`)."""
    values = tf_transform_output.vocabulary_by_name(name)
    return ["<pad>", "<oov>", *[v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in values]]


def read_item_counts(tf_transform_output) -> list:
    """Training-portion occurrences per item id (0 for pad / OOV), aligned with the item vocabulary."""
    path = tf_transform_output.vocabulary_file_by_name(ITEM_COUNTS_VOCAB)
    tokens = read_vocabulary(tf_transform_output, ITEM_VOCAB)
    counts = {}
    with tf.io.gfile.GFile(path, "rb") as f:
        for line in f:
            line = line.rstrip(b"\n")
            if not line:
                continue
            c, _, v = line.partition(b" ")
            counts[v.decode("utf-8")] = int(float(c))
    return [0, 0] + [counts.get(t, 0) for t in tokens[NUM_RESERVED_IDS:]]
