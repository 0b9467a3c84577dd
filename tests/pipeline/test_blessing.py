"""The Evaluator's blessing rule (pipeline.pipeline.eval_config), checked with TFMA's own
validator the way the TFX Evaluator runs it: a candidate is blessed only when its
recall@10 reaches the absolute floor AND is at least the last blessed model's (minus
`max_drop`); with no blessed model yet, only the floor applies."""

import dataclasses

import pytest
import tensorflow_model_analysis as tfma
from tensorflow_model_analysis.evaluators import metrics_validator
from tensorflow_model_analysis.metrics import metric_specs

from pipeline import configs
from pipeline.pipeline import eval_config

SCHEMA = {"categorical": ["action_type"], "multi_label": ["genre"], "numeric": [],
          "intents": [{"column": "action_type", "kind": "single"}, {"column": "genre", "kind": "multi"}],
          "has_timestamps": True, "has_weight": False}


def _config(floor, max_drop=0.0):
    cfg = configs.PipelineConfig(pipeline_name="p", pipeline_root="/tmp/p", serving_root="/tmp/s",
                                 data=configs.DataConfig(input_base="/tmp/d"))
    return dataclasses.replace(cfg, evaluation=dataclasses.replace(cfg.evaluation, floor=floor,
                                                                   max_drop=max_drop))


def blessed(cfg, candidate, baseline=None, slice_key=()):
    """TFMA's verdict for these overall recall@10 values (as the TFX Evaluator sets it up)."""
    ec = tfma.utils.update_eval_config_with_defaults(eval_config(cfg, SCHEMA), has_baseline=baseline is not None,
                                                     rubber_stamp=True)
    thresholds = metric_specs.metric_thresholds_from_metrics_specs(ec.metrics_specs, eval_config=ec)
    assert thresholds, "no blessing threshold configured"
    baseline_name = next((s.name for s in ec.model_specs if s.is_baseline), None)
    metrics = {}
    for key in thresholds:
        assert key.name == cfg.evaluation.metric
        if key.is_diff:
            metrics[key] = candidate - baseline
        elif baseline_name is not None and key.model_name == baseline_name:
            metrics[key] = baseline
        else:
            metrics[key] = candidate
    return metrics_validator.validate_metrics((slice_key, metrics), ec).validation_ok


def test_floor_without_a_baseline():
    assert blessed(_config(floor=0.05), 0.06)
    assert not blessed(_config(floor=0.05), 0.04)


@pytest.mark.parametrize("candidate,baseline,max_drop,ok", [
    (0.08, 0.07, 0.0, True),   # better
    (0.07, 0.07, 0.0, True),   # as good
    (0.06, 0.07, 0.0, False),  # worse
    (0.06, 0.07, 0.02, True),  # worse, within the allowed drop
    (0.04, 0.03, 0.0, False),  # better than the baseline but under the floor
])
def test_change_threshold_against_the_last_blessed_model(candidate, baseline, max_drop, ok):
    assert blessed(_config(floor=0.05, max_drop=max_drop), candidate, baseline) is ok


def test_only_the_overall_slice_is_gated():
    # A small slice below the floor does not block the blessing.
    assert blessed(_config(floor=0.05), 0.0, slice_key=(("history_bucket", "001-005"),))
