"""TFMA custom metrics for IntentRec: next-item Recall@k / NDCG@k and next-intent accuracy.

TFMA 0.47 evaluates the exported SavedModel as a generic model: `serving_default`
gives the predictions (``top_k_ids``, ``intent_<head>``, ...) and the
``transform_features`` preprocessing signature gives the labels computed by the same
Transform graph (``label_item``, ``label_<head>``, ``sample_weight``). Keras 3 metric
classes cannot run there, so these are `tfma.metrics.Metric`s with Beam combiners.

Definitions match `model.evaluation` (the numpy evaluation of the lead's training
script), at the last position of each eval/test example:

- ``recall@k``: the target item is among the top k (a target unknown to the training
  vocabulary (OOV) is a miss); ``ndcg@k``: 1 / log2(rank + 2) when it is, else 0 (one
  relevant item, so IDCG = 1). The ranking is the exported model's (padding and OOV
  are never recommended), so the seen-item filter is the one validation used: when the
  run excludes seen items, the model drops the example's window and, with the
  whole-history filter, the ``seen_item_id`` list every test example carries (the
  user's history before the target); a seen target is then a miss, as in
  `model.evaluation`.
- ``intent_accuracy/<head>``: the most probable non-reserved value is (one of) the
  true next values.

Each example counts once (unweighted), as in `model.evaluation`.
"""

from __future__ import annotations

import json
import math
from typing import Dict, Iterable, Optional

import apache_beam as beam
import numpy as np
import tensorflow_model_analysis as tfma
from tensorflow_model_analysis.metrics import metric_types, metric_util

NUM_RESERVED_IDS = 2  # == datasets.schema.NUM_RESERVED_IDS (kept import-free for Beam workers)
LABEL_ITEM = "label_item"
SAMPLE_WEIGHT = "sample_weight"
ITEM_FEATURE = "item_id"
TOP_K_IDS = "top_k_ids"  # == serving.contract.TOP_K_IDS
INTENT_PREFIX = "intent_"
EXAMPLE_COUNT_NAME = "num_examples"


def _for_model(d, model_name: str):
    if isinstance(d, dict) and model_name and model_name in d and isinstance(d[model_name], dict):
        return d[model_name]
    return d


def _last(x):
    x = np.asarray(x)
    return x[-1] if x.ndim >= 1 and x.shape[0] else None


def _to_str(v) -> str:
    return v.decode("utf-8") if isinstance(v, (bytes, bytearray)) else str(v)


class _Acc:
    __slots__ = ("sums", "count")

    def __init__(self):
        self.sums: Dict[str, float] = {}
        self.count = 0.0


class _IntentRecCombiner(beam.CombineFn):
    """Accumulates every IntentRec metric of one model in one pass."""

    def __init__(self, keys: Dict[str, metric_types.MetricKey], model_name: str, ks, heads):
        self._keys = keys
        self._model_name = model_name
        self._ks = tuple(ks)
        self._heads = dict(heads)  # head -> "single" | "multi" ("" = infer from label rank)

    def create_accumulator(self):
        return _Acc()

    def _example_values(self, element) -> Optional[Dict[str, float]]:
        preds = _for_model(element.get("predictions") or {}, self._model_name)
        tfeat = _for_model(element.get("transformed_features") or {}, self._model_name)
        feats = element.get("features") or {}
        if not isinstance(preds, dict) or LABEL_ITEM not in tfeat:
            return None
        weight = _last(tfeat.get(SAMPLE_WEIGHT, [1.0]))
        if weight is None or float(weight) <= 0:
            return None  # no target at the last position
        values = {}
        label_id = int(_last(tfeat[LABEL_ITEM]))
        raw_items = feats.get(ITEM_FEATURE)
        target = _to_str(_last(raw_items)) if raw_items is not None and len(np.asarray(raw_items)) else None
        top = [_to_str(v) for v in np.asarray(preds[TOP_K_IDS]).reshape(-1)]
        rank = None
        if label_id >= NUM_RESERVED_IDS and target is not None and target in top:
            rank = top.index(target)
        for k in self._ks:
            hit = rank is not None and rank < k
            values[f"recall@{k}"] = 1.0 if hit else 0.0
            values[f"ndcg@{k}"] = 1.0 / math.log2(rank + 2.0) if hit else 0.0
        for head, kind in self._heads.items():
            probs = preds.get(INTENT_PREFIX + head)
            label = tfeat.get("label_" + head)
            if probs is None or label is None:
                continue
            probs = np.asarray(probs, dtype=np.float64).reshape(-1).copy()
            probs[:NUM_RESERVED_IDS] = -np.inf
            predicted = int(np.argmax(probs))
            label_last = np.asarray(label)[-1]
            if np.ndim(label_last) == 0:
                hit = int(label_last) == predicted
            else:
                hit = float(np.asarray(label_last).reshape(-1)[predicted]) > 0
            values[f"intent_accuracy/{head}"] = 1.0 if hit else 0.0
        return values

    def add_input(self, acc, element):
        values = self._example_values(element)
        if values is None:
            return acc
        acc.count += 1.0
        for k, v in values.items():
            acc.sums[k] = acc.sums.get(k, 0.0) + v
        return acc

    def merge_accumulators(self, accumulators: Iterable[_Acc]):
        accumulators = iter(accumulators)
        out = next(accumulators)
        for a in accumulators:
            out.count += a.count
            for k, v in a.sums.items():
                out.sums[k] = out.sums.get(k, 0.0) + v
        return out

    def extract_output(self, acc):
        result = {}
        for name, key in self._keys.items():
            if name == EXAMPLE_COUNT_NAME:
                result[key] = acc.count
            elif acc.count:
                result[key] = acc.sums.get(name, 0.0) / acc.count
            else:
                result[key] = float("nan")
        return result


def _metric_names(ks, heads):
    names = [EXAMPLE_COUNT_NAME]
    for k in ks:
        names += [f"recall@{k}", f"ndcg@{k}"]
    names += [f"intent_accuracy/{h}" for h in heads]
    return names


def _computations(ks=(1, 10), heads=None, eval_config=None, model_names=None, output_names=None,
                  sub_keys=None, aggregation_type=None, class_weights=None, example_weighted=False,
                  query_key=None, name=None, **_):
    heads = dict(heads or {})
    ks = tuple(int(k) for k in ks)
    computations = []
    for model_name in (model_names or [""]):
        # example_weighted=None: the keys TFMA builds for MetricsSpec thresholds.
        keys = {n: metric_types.MetricKey(name=n, model_name=model_name, example_weighted=None)
                for n in _metric_names(ks, heads)}
        computations.append(metric_types.MetricComputation(
            keys=list(keys.values()),
            preprocessors=[metric_types.StandardMetricInputsPreprocessor(
                include_filter={"features": {ITEM_FEATURE: {}}, "transformed_features": {},
                                "predictions": {}},
                include_default_inputs=False)],
            combiner=_IntentRecCombiner(keys, model_name, ks, heads)))
    return computations


class IntentRecMetrics(tfma.metrics.Metric):
    """All IntentRec metrics of one model: `recall@k`, `ndcg@k`, `intent_accuracy/<head>`,
    `num_examples`.

    Args:
        ks: cut-offs (each at most the exported top-k).
        heads: {head name: "single" | "multi"} of the intent heads to score.
    """

    def __init__(self, ks=(1, 10), heads=None, name: str = "intentrec", code_version: str = ""):
        # code_version only makes the Evaluator's configuration (its cache key) change
        # with this file.
        del code_version
        super().__init__(_computations, ks=list(ks), heads=dict(heads or {}), name=name)

    @property
    def compute_confidence_interval(self) -> bool:
        return False


metric_types.register_metric(IntentRecMetrics)


def metric_config(ks=(1, 10), heads=None, code_version: str = "") -> tfma.MetricConfig:
    """The tfma.MetricConfig naming this metric by module path (for EvalConfig)."""
    return tfma.MetricConfig(class_name="IntentRecMetrics", module=__name__, config=json.dumps(
        {"ks": list(ks), "heads": dict(heads or {}), "code_version": code_version}, sort_keys=True))


__all__ = ["IntentRecMetrics", "metric_config", "metric_util"]
