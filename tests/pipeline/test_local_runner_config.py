"""`python -m pipeline.local_runner` flags -> PipelineConfig (no pipeline run)."""

import json
import os

import pytest

from pipeline import configs, local_runner


def build(tmp_path, *argv):
    return local_runner.build_config(local_runner.parse_args(["--root", str(tmp_path / "root"),
                                                              "--serving-root", str(tmp_path / "srv"), *argv]))


def test_default_is_the_embedded_synthetic_data(tmp_path):
    cfg = build(tmp_path)
    assert cfg.data.adapter == "synthetic" and cfg.data.mode == "adapter"
    assert os.path.exists(os.path.join(cfg.data.input_base, cfg.data.input_pattern))  # fingerprinted input
    assert cfg.beam_pipeline_args == configs.direct_runner_args(0)
    assert cfg.serving_root == str(tmp_path / "srv") and cfg.pipeline_name == "intentrec-synthetic"
    assert json.load(open(cfg.item_titles_path))  # titles for the printed recommendation


def test_training_defaults_are_model_trains_and_flags_override_them(tmp_path):
    from model.training import TrainConfig

    assert build(tmp_path).training == TrainConfig()  # the one default protocol
    cfg = build(tmp_path, "--train", "epochs=5", "--train", "exclude_seen=false", "--trainer", "strategy=mirrored")
    assert (cfg.training.epochs, cfg.training.exclude_seen) == (5, False)
    assert cfg.training.batch_size == TrainConfig.batch_size and cfg.trainer.strategy == "mirrored"
    with pytest.raises(SystemExit, match="unknown setting 'epoch'"):
        build(tmp_path, "--train", "epoch=5")


def test_direct_runner_multi_processing_flag(tmp_path):
    cfg = build(tmp_path, "--direct-workers", "2")
    assert cfg.beam_pipeline_args == ["--direct_running_mode=multi_processing", "--direct_num_workers=2"]


def test_timestamp_free_sequences_through_the_adapter_spec(tmp_path):
    seqs = tmp_path / "seqs.txt"
    seqs.write_text("u1 a b c d e\nu2 b c d\nu3 a c e f\n")
    cfg = build(tmp_path, "--dataset", f"sequences:{seqs}")
    assert cfg.data.adapter == "sequences" and cfg.data.adapter_kwargs["path"] == str(seqs)
    assert cfg.data.input_base == str(tmp_path) and cfg.data.input_pattern == "seqs.txt"
    assert cfg.data.interaction_schema["has_timestamps"] is False
    assert cfg.pipeline_name == "intentrec-sequences"


@pytest.mark.skipif(not os.path.isdir("/work/shared/data/ml-100k"), reason="ml-100k not on this machine")
def test_movielens_alias(tmp_path):
    cfg = build(tmp_path, "--dataset", "ml-100k", "--data-path", "/work/shared/data/ml-100k")
    assert cfg.data.adapter == "movielens" and cfg.data.input_pattern == "u.*"


def test_unknown_dataset_is_a_readable_error(tmp_path):
    with pytest.raises(SystemExit, match="unknown dataset 'nope'"):
        build(tmp_path, "--dataset", "nope")
