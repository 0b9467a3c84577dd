"""`bench.train_speed`: its import path stays TensorFlow-free (the GPU machine has no
TensorFlow, bench/gpu_run.sh), and the short-history run works at tiny sizes."""

import json
import os
import subprocess
import sys

import numpy as np

from bench.train_speed import short_history
from bench.train_speed.cli import main


def test_import_pulls_in_no_tensorflow():
    code = "import sys, bench.train_speed; sys.exit('tensorflow' in sys.modules)"
    env = {**os.environ, "KERAS_BACKEND": "jax"}
    assert subprocess.run([sys.executable, "-c", code], env=env, timeout=120).returncode == 0


def test_history_lengths_are_short_and_clipped():
    lengths = short_history.history_lengths(20_000, 50)
    assert np.median(lengths) == short_history.MEDIAN_LENGTH
    assert lengths.min() >= 2 and lengths.max() <= 50
    assert 8 < lengths.mean() < 10  # Amazon Beauty: ~8.9 interactions per user


def test_short_history_compares_one_bucket_with_the_default(tmp_path):
    out = tmp_path / "short.json"
    report = main(["short-history", "--rows", "32", "--items", "50", "--n", "16", "--batch", "8",
                   "--epochs", "1", "--models", "sasrec", "--out", str(out)])
    one, bucketed = report["results"]
    assert (one["length_buckets"], one["boundaries"], one["x_one_bucket"]) == (1, [16], 1.0)
    assert bucketed["length_buckets"] == 4 and bucketed["boundaries"][-1] == 16
    assert bucketed["positions_per_row"] < one["positions_per_row"] == 16
    assert bucketed["x_one_bucket"] == one["epoch_s"] / bucketed["epoch_s"]
    assert len(one["load_avg"]) == 3 and len(bucketed["epochs_s"]) == 1
    assert json.loads(out.read_text())["table"] == report["table"]
    assert "x_one_bucket" in report["table"] and "load_avg" in report["table"]
