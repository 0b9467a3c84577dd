"""Exports the trained IntentRec with its TFT graph as ONE TF-Serving SavedModel.

Written by the pipeline's Trainer (`pipeline/trainer.py`) into the Model artifact's
serving directory; the Pusher copies it to ``<serving_root>/<model_name>/<version>/``.
It lives next to the trainer because it builds the serving graph from training-time code
(the Transform output, `pipeline.preprocessing`); `serving/` only reads what it writes.
Signatures and output names are `serving/contract.py`'s:

- ``serving_default``: ``examples`` (DT_STRING [batch], serialized tf.Example with the
  raw history) -> ``top_k_ids``, ``top_k_scores``, ``intent_<head>``,
  ``intent_embedding``, ``intent_attention``, ``primary_intent``.
- ``predict_raw``: the history as plain [batch, L] tensors (``item_id`` "" at padding,
  ``timestamp``, one tensor per metadata column) -> the same outputs.
- ``transform_features``: ``examples`` -> every Transform output a request can give
  (TFMA's preprocessing function: labels and weights for the evaluation metrics;
  ``seen_item`` as a dense ``[batch, longest]`` 0-padded matrix).
- ``intentrec_metadata``: () -> ``metadata_json``.

Both prediction signatures run the same TFT graph as training (the transform layer
is tracked by the saved module, vocabularies travel as assets), so there is no
training/serving skew. Unknown items map to OOV, histories longer than n keep the
latest n, and an empty history gets the popularity ranking (the model's item prior).
With the whole-history seen filter (`TrainConfig.seen_filter="history"` and exclude_seen),
an example's ``seen_item_id`` list is excluded from its ranking as well as its history:
serving requests leave it out, the Evaluator's test examples carry the user's history.

Keras 3 note: `model.export()` / `keras.export.ExportArchive` cannot carry the TFT
vocabulary tables, so a `tf.Module` holds the Keras 3 model and the (tf_keras) TFT
layer and is saved with `tf.saved_model.save`.
"""

from __future__ import annotations

import json
from typing import Dict, Optional, Sequence

import tensorflow as tf

from pipeline import preprocessing as pp
from serving import contract

TRANSFORM_SIGNATURE = "transform_features"
# Raw features the serving graph parses (all list features, VarLen).
_SKIP_RAW = ("user_id", "history_length", "history_bucket")


def serving_raw_feature_spec(tf_transform_output) -> Dict[str, tf.io.VarLenFeature]:
    """Parse spec of serving requests: Transform's raw features as VarLen lists, so any
    feature may be absent (missing values) and any length is accepted."""
    spec = {}
    for name, f in tf_transform_output.raw_feature_spec().items():
        if name in _SKIP_RAW:
            continue
        spec[name] = tf.io.VarLenFeature(f.dtype)
    return spec


class IntentRecServingModule(tf.Module):
    """The exported module: Keras 3 model + TFT layer + vocabularies."""

    def __init__(self, model, tf_transform_output, preprocessing_config, *, k: int = 10,
                 exclude_seen: bool = False, exclude_history: bool = False, metadata: Optional[dict] = None):
        super().__init__(name="intentrec_serving")
        self.model = model
        self.tft_layer = tf_transform_output.transform_features_layer()
        self._cfg = preprocessing_config
        self._k = int(k)
        self._exclude_seen = bool(exclude_seen)
        self._exclude_history = bool(exclude_seen and exclude_history)
        tokens = pp.read_vocabulary(tf_transform_output, pp.ITEM_VOCAB)
        self._num_items = len(tokens)
        self.item_tokens = tf.Variable(tf.constant(tokens, tf.string), trainable=False, name="item_tokens")
        self._heads = [h.name for h in getattr(model, "intent_heads", [])]
        self.head_names = tf.Variable(tf.constant(self._heads or [""], tf.string), trainable=False,
                                      name="head_names")
        self._metadata_json = json.dumps(metadata or {}, sort_keys=True)
        self.metadata_json = tf.Variable(self._metadata_json, trainable=False, name="metadata_json")
        self._raw_spec = serving_raw_feature_spec(tf_transform_output)
        schema = preprocessing_config.interaction_schema
        self._raw_inputs = [(contract.EXAMPLE_ITEM_ID, tf.string), (contract.EXAMPLE_TIMESTAMP, tf.int64)]
        for c in (*schema.categorical, *schema.multi_label):
            self._raw_inputs.append((c, tf.string))
        for c in schema.numeric:
            self._raw_inputs.append((c, tf.float32))

    # ---- core ----
    def _transform(self, raw: Dict[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
        return self.tft_layer(raw)

    def _recommend(self, transformed: Dict[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
        x = pp.to_model_inputs(transformed, self._cfg)
        n = int(self._cfg.max_len)
        x = {k: tf.ensure_shape(v, [None, n] + list(v.shape[2:])) for k, v in x.items()}
        seen = None
        if self._exclude_history and pp.SEEN_OUTPUT in transformed:
            seen = tf.sparse.to_dense(transformed[pp.SEEN_OUTPUT])
        out = self.model.recommend(x, k=self._k, exclude_seen=self._exclude_seen, seen=seen)
        ids = tf.cast(out["top_k_ids"], tf.int64)
        result = {
            contract.TOP_K_IDS: tf.gather(self.item_tokens, ids),
            contract.TOP_K_SCORES: tf.cast(out["top_k_scores"], tf.float32),
        }
        batch = tf.shape(ids)[0]
        for h in self._heads:
            result[contract.intent_output_name(h)] = tf.cast(out[f"intent_{h}"], tf.float32)
        if "intent_attention" in out:
            att = tf.cast(out["intent_attention"], tf.float32)
            result[contract.INTENT_EMBEDDING] = tf.cast(out["intent_embedding"], tf.float32)
            result[contract.INTENT_ATTENTION] = att
            result[contract.PRIMARY_INTENT] = tf.gather(self.head_names, tf.argmax(att, axis=-1))
        else:  # v0 / v1: no intent aggregation
            result[contract.INTENT_EMBEDDING] = tf.zeros([batch, 0], tf.float32)
            result[contract.INTENT_ATTENTION] = tf.zeros([batch, len(self._heads)], tf.float32)
            result[contract.PRIMARY_INTENT] = tf.fill([batch], "")
        return result

    def _parse(self, examples):
        return tf.io.parse_example(examples, self._raw_spec)

    # ---- signatures ----
    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=contract.EXAMPLES_INPUT)])
    def serve_examples(self, examples):
        return self._recommend(self._transform(self._parse(examples)))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=contract.EXAMPLES_INPUT)])
    def transform_features(self, examples):
        # A signature returns dense tensors only.
        return {k: tf.sparse.to_dense(v) if isinstance(v, tf.SparseTensor) else v
                for k, v in self._transform(self._parse(examples)).items()}

    def _raw_to_features(self, tensors: Dict[str, tf.Tensor]) -> Dict[str, tf.SparseTensor]:
        """[B, L] left-padded tensors ("" item = padding) -> the parsed-example format."""
        items = tensors[contract.EXAMPLE_ITEM_ID]
        valid = tf.not_equal(items, "")
        feats = {}
        for name, _ in self._raw_inputs:
            if name not in self._raw_spec:
                continue
            r = tf.ragged.boolean_mask(tensors[name], valid)
            feats[name] = r.to_sparse()
        # Features a serving request never carries (label_mode, weight) go in empty, as
        # parse_example gives them; the TFT layer drops outputs whose inputs are absent.
        batch = tf.shape(items, out_type=tf.int64)[0]
        for name, spec in self._raw_spec.items():
            if name not in feats:
                feats[name] = tf.SparseTensor(tf.zeros([0, 2], tf.int64), tf.zeros([0], spec.dtype),
                                              tf.stack([batch, tf.constant(0, tf.int64)]))
        return feats

    def make_raw_signature(self):
        specs = [tf.TensorSpec([None, None], dtype, name=name) for name, dtype in self._raw_inputs]
        names = [name for name, _ in self._raw_inputs]

        @tf.function(input_signature=specs)
        def predict_raw(*args):
            tensors = dict(zip(names, args))
            return self._recommend(self._transform(self._raw_to_features(tensors)))

        self.predict_raw = predict_raw
        return predict_raw.get_concrete_function()

    @tf.function(input_signature=[])
    def serve_metadata(self):
        return {contract.METADATA_OUTPUT: tf.identity(self.metadata_json)}


def build_metadata(model, tf_transform_output, preprocessing_config, *, k: int,
                   item_titles: Optional[Dict[str, str]] = None) -> dict:
    heads = [h.name for h in getattr(model, "intent_heads", [])]
    labels = {h: pp.read_vocabulary(tf_transform_output, h) for h in heads}
    schema = preprocessing_config.interaction_schema
    features = {contract.EXAMPLE_ITEM_ID: "bytes", contract.EXAMPLE_TIMESTAMP: "int64"}
    for c in (*schema.categorical, *schema.multi_label):
        features[c] = "bytes"
    for c in schema.numeric:
        features[c] = "float"
    return contract.make_metadata(
        heads, intent_labels=labels, item_titles=item_titles or {},
        **{contract.META_K: int(k), contract.META_HISTORY_LENGTH: int(preprocessing_config.max_len),
           contract.META_EXAMPLE_FEATURES: features})


def export_serving_model(model, tf_transform_output, preprocessing_config, export_dir: str, *,
                         k: int = 10, exclude_seen: bool = False, exclude_history: bool = False,
                         model_name: str = contract.DEFAULT_MODEL_NAME,
                         item_titles: Optional[Dict[str, str]] = None,
                         warmup_examples: Sequence = ()) -> str:
    """Saves the serving SavedModel to `export_dir` (+ assets.extra metadata / warm-up).

    exclude_seen: rankings skip the items of the history; exclude_history: with
    exclude_seen, also those of the example's ``seen_item_id`` (the whole history).
    """
    metadata = build_metadata(model, tf_transform_output, preprocessing_config, k=k, item_titles=item_titles)
    module = IntentRecServingModule(model, tf_transform_output, preprocessing_config, k=k,
                                    exclude_seen=exclude_seen, exclude_history=exclude_history,
                                    metadata=metadata)
    signatures = {
        contract.SERVING_SIGNATURE: module.serve_examples.get_concrete_function(),
        contract.RAW_SIGNATURE: module.make_raw_signature(),
        TRANSFORM_SIGNATURE: module.transform_features.get_concrete_function(),
        contract.METADATA_SIGNATURE: module.serve_metadata.get_concrete_function(),
    }
    tf.saved_model.save(module, export_dir, signatures=signatures)
    contract.write_metadata(export_dir, metadata)
    if warmup_examples:
        from serving import warmup

        warmup.write_warmup_requests(export_dir, list(warmup_examples)[:8], model_name=model_name)
    return export_dir
