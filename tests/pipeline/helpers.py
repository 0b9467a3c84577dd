"""Tiny data and configs for the pipeline tests (seconds of data, minutes of TFX)."""

from __future__ import annotations

import dataclasses
import os

import datasets
from model.training import TrainConfig
from pipeline import configs, sources
from pipeline.configs import PipelineConfig

# Two intent heads (one single-label, one multi-label) of the four: every traced head
# costs seconds in the Trainer and the export, and the code paths are the same.
TINY_INTENTS = ["action_type", "genre"]
TINY_HPARAMS = {"d_model": 16, "item_embedding_dim": 16, "feature_embedding_dim": 4, "d_short": 8,
                "d_proj": 8, "intent_layers": 1, "item_layers": 1, "num_heads": 1, "ffn_multiplier": 2,
                "dropout": 0.0, "intents": TINY_INTENTS}
MAX_LEN = 10
# A few epochs of model.train's protocol; seen items excluded whatever the repeat rate, so
# that the whole-history filter is exercised (validation, the export and the Evaluator).
TINY_TRAIN = {"epochs": 3, "batch_size": 32, "learning_rate": 3e-3, "exclude_seen": True}
BAD_LINES = [
    ",i_missing_user,1600000000,discover,movie,catalog,drama,30.0,0.5",  # missing user
    "u_bad,i1,not-a-time,discover,movie,catalog,drama,30.0,0.5",  # bad timestamp
    "u_bad,i2",  # wrong number of fields
]


# The synthetic generator's arguments of the tiny data (model.train: --data-arg KEY=VALUE).
TINY_DATA = {"num_users": 60, "seed": 7, "interactions_per_user": 12, "min_interactions": 2, "num_items": 300}


def tiny_dataset():
    return datasets.load("synthetic", **TINY_DATA)


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
        hparams=dict(TINY_HPARAMS),
        training=TrainConfig(**TINY_TRAIN),
        evaluation=configs.EvaluationConfig(floor=0.0),
        beam_pipeline_args=configs.direct_runner_args(0),
        code_version="test",
    )
    return dataclasses.replace(cfg, **overrides)
