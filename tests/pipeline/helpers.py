"""Tiny data and configs for the pipeline tests (seconds of data, minutes of TFX)."""

from __future__ import annotations

import dataclasses
import os

import datasets
from pipeline import configs, sources
from pipeline.configs import PipelineConfig

# Two intent heads (one single-label, one multi-label) of the four: every traced head
# costs seconds in the Trainer and the export, and the code paths are the same.
TINY_INTENTS = ["action_type", "genre"]
TINY_HPARAMS = {"d_model": 16, "item_embedding_dim": 16, "feature_embedding_dim": 4, "d_short": 8,
                "d_proj": 8, "intent_layers": 1, "item_layers": 1, "num_heads": 1, "ffn_multiplier": 2,
                "dropout": 0.0, "intents": TINY_INTENTS}
MAX_LEN = 10
BAD_LINES = [
    ",i_missing_user,1600000000,discover,movie,catalog,drama,30.0,0.5",  # missing user
    "u_bad,i1,not-a-time,discover,movie,catalog,drama,30.0,0.5",  # bad timestamp
    "u_bad,i2",  # wrong number of fields
]


def tiny_dataset(num_users: int = 60, seed: int = 7):
    return datasets.load("synthetic", num_users=num_users, seed=seed, interactions_per_user=12,
                         min_interactions=2, num_items=300)


def write_shards(ds, out_dir: str, num_shards: int = 3, bad_lines=BAD_LINES):
    """Canonical CSV shards (+ malformed rows appended to the first one)."""
    data = sources.write_sharded_log(ds, out_dir, num_shards=num_shards)
    if bad_lines:
        with open(os.path.join(out_dir, "part-00000.csv"), "a") as f:
            for line in bad_lines:
                f.write(line + "\n")
    return data


def tiny_config(root: str, data: configs.DataConfig, name: str = "e2e", **overrides) -> PipelineConfig:
    cfg = PipelineConfig(
        pipeline_name=name,
        pipeline_root=os.path.join(root, "pipelines", name),
        serving_root=os.path.join(root, "serving"),
        data=data,
        max_len=MAX_LEN,
        top_k=10,
        training=configs.TrainingConfig(hparams=dict(TINY_HPARAMS), epochs=2, batch_size=32,
                                        learning_rate=3e-3),
        evaluation=configs.EvaluationConfig(floor=0.0),
        beam_pipeline_args=configs.direct_runner_args(0),
        # hour_of_day / day_of_week are covered by test_preprocessing_parity; here they
        # would only add two vocabularies to every Transform run.
        derive_time_features=False,
        code_version="test",
    )
    return dataclasses.replace(cfg, **overrides)
