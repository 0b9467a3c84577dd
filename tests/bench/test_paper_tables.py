"""The paper-table runner end to end: `python -m bench.paper_tables --quick` on synthetic data.

One quick run (tiny models, 2 epochs, 1 seed, 200 synthetic users) of five rows that
exercise every path of the runner: a baseline (SASRec), Table 1's reference
(TransAct), IntentRec V0 and V3, and a single-head row that inherits V3's tuned
config. That every baseline and variant trains and evaluates is tested in
tests/model; the table layout of all 15 rows and the multi-seed statistics (mean ±
std, t-tests, relative cells) are tested on fabricated runs, without training.
"""

import json
import math

import numpy as np
import pytest
from scipy import stats

from bench import paper_tables
from datasets.feature_spec import FeatureSpec, IntentHead
from model import training

pytestmark = pytest.mark.timeout(1800)

ALL_ROWS = {
    "lstm", "gru", "transformer", "sasrec", "bert4rec", "transact", "v0", "v1", "v2", "v3", "v3_month",
    "v3_only_action_type", "v3_only_genre", "v3_only_item_type", "v3_only_release_bucket",
}
QUICK_ROWS = ("sasrec", "transact", "v0", "v3", "v3_only_genre")


def _finite(value):
    return value is not None and math.isfinite(value)


@pytest.fixture(scope="module")
def quick_report(tmp_path_factory):
    out = tmp_path_factory.mktemp("results")
    report = paper_tables.main(["--dataset", "synthetic", "--quick", "--rows", ",".join(QUICK_ROWS),
                                "--out", str(out)])
    return report, out / "synthetic-quick"


def test_every_model_and_variant_has_finite_metrics(quick_report):
    report, _ = quick_report
    assert set(report["rows"]) == set(QUICK_ROWS)
    assert report["seeds"] == [0] and report["complete"]
    for row_id, row in report["rows"].items():
        assert len(row["runs"]) == 1, row_id
        for metric in ("ndcg@10", "recall@10", "mrr"):
            assert _finite(row["test_mean"][metric]), (row_id, metric)
            assert 0.0 <= row["test_mean"][metric] <= 1.0
        assert row["wall_seconds"] > 0


def test_tables_follow_the_paper_layout(quick_report):
    report, _ = quick_report
    tables = report["tables"]
    assert list(tables["table1"]["rows"]) == ["sasrec", "transact", "v0", "v3"]
    assert list(tables["table3"]["rows"]) == ["v0", "v3_only_genre", "v3"]
    t1 = tables["table1"]["rows"]
    # The reference row is marked as such (not "+0.00%"); next-item-only models are N/A on intents.
    assert t1["transact"]["cells"]["ndcg@10"]["is_reference"]
    for row_id in ("sasrec", "v0"):
        assert t1[row_id]["cells"]["intent_accuracy/action_type"] is None
    for row_id in ("transact", "v3"):
        cell = t1[row_id]["cells"]["intent_accuracy/action_type"]
        assert _finite(cell["abs"]["mean"]) and _finite(cell["rel"])
    for row_id, row in t1.items():
        assert _finite(row["cells"]["ndcg@10"]["rel"]), row_id
    # Table 3: the single-head variant predicts only its own head, and took V3's config.
    t3 = tables["table3"]["rows"]
    assert t3["v3_only_genre"]["cells"]["intent_accuracy/genre"]["is_reference"]
    assert t3["v3_only_genre"]["cells"]["intent_accuracy/action_type"] is None
    assert report["rows"]["v3_only_genre"]["tune_as"] == "v3"


def test_all_rows_and_their_table_layout():
    rows, tables = paper_tables.build_rows(FeatureSpec(intents=tuple(
        IntentHead(name, "single", 5) for name in ("action_type", "genre", "item_type", "release_bucket"))))
    assert set(rows) == ALL_ROWS
    assert tables["table1"] == ["lstm", "gru", "transformer", "sasrec", "bert4rec", "transact", "v0", "v3"]
    assert tables["table2"] == ["v0", "v1", "v2", "v3_month", "v3"]
    assert tables["table3"] == ["v0", "v3_only_action_type", "v3_only_genre", "v3_only_item_type",
                                "v3_only_release_bucket", "v3"]


def test_outputs_and_provenance(quick_report):
    report, out = quick_report
    for name in ("paper_tables.md", "paper_tables.json", "paper_tables.png", "runs.jsonl"):
        assert (out / name).stat().st_size > 0, name
    saved = json.loads((out / "paper_tables.json").read_text())
    assert saved["command"].startswith("python -m bench.paper_tables --dataset synthetic --quick")
    assert len(saved["git"]["commit"]) in (7, 40) or saved["git"]["commit"] == "unknown"
    assert saved["backend"] and "tuning" in saved and saved["ttest"].startswith("scipy.stats.ttest_ind")
    assert saved["select_seeds"] == [0]
    md = (out / "paper_tables.md").read_text()
    for label in ("TransAct", "SASRec", "IntentRec-V0", "N/A", "Table 3", "chosen on validation NDCG@10 with seed 0"):
        assert label in md
    # A second call takes every run from runs.jsonl instead of retraining.
    again = paper_tables.main(["--dataset", "synthetic", "--quick", "--rows", ",".join(QUICK_ROWS),
                               "--out", str(out.parent)])
    assert again["rows"]["sasrec"]["runs"] == report["rows"]["sasrec"]["runs"]


def _fake_runs(row_id, values, metric="ndcg@10", intents=()):
    runs = []
    for seed, value in enumerate(values):
        test = {m: value for m in ("recall@1", "recall@10", "recall@20", "ndcg@10", "ndcg@20", "mrr")}
        test.update({f"intent_accuracy/{h}": 0.5 + value for h in intents})
        runs.append({"row": row_id, "seed": seed, "test": test, "wall_seconds": 1.0, "best_epoch": 1,
                     "epochs_run": 2})
    return runs


def test_statistics_over_seeds():
    """Relative %, mean ± std and Student's t-test p-values, on fabricated 3-seed runs."""
    spec = FeatureSpec(intents=(IntentHead("action_type", "single", 5), IntentHead("genre", "multi", 9)))
    rows, tables = paper_tables.build_rows(spec)
    heads = ["action_type", "genre"]
    values = {row_id: [0.10 + 0.01 * i, 0.11 + 0.01 * i, 0.12 + 0.01 * i] for i, row_id in enumerate(rows)}
    runs = {}
    for row_id, vals in values.items():
        kind_heads = heads if rows[row_id].kind == "intentrec" and row_id != "v0" else ()
        if row_id in ("lstm", "gru", "transformer", "transact"):
            kind_heads = heads
        if row_id.startswith("v3_only_"):
            kind_heads = [row_id[len("v3_only_"):]]
        runs[row_id] = _fake_runs(row_id, vals, intents=kind_heads)
    out = paper_tables.build_tables(rows, tables, runs, heads)
    cell = out["table1"]["rows"]["v3"]["cells"]["ndcg@10"]
    a, b = np.array(values["v3"]), np.array(values["transact"])
    assert cell["rel"] == pytest.approx(100 * (a.mean() - b.mean()) / b.mean())
    assert cell["p"] == pytest.approx(stats.ttest_ind(a, b, equal_var=True).pvalue)
    assert cell["abs"]["std"] == pytest.approx(a.std(ddof=1))
    assert out["table1"]["rows"]["sasrec"]["cells"]["intent_accuracy/genre"] is None
    assert out["table2"]["reference"] == "v1"
    assert out["table2"]["rows"]["v1"]["cells"]["ndcg@10"]["rel"] == 0.0
    # Table 3: items vs V0, each intent vs the single-head variant of that intent.
    t3 = out["table3"]["rows"]["v3"]["cells"]
    assert t3["ndcg@10"]["ref"]["mean"] == pytest.approx(np.mean(values["v0"]))
    assert t3["intent_accuracy/genre"]["ref"]["mean"] == pytest.approx(0.5 + np.mean(values["v3_only_genre"]))
    # Identical samples: p = 1; a single seed: no p-value.
    same = np.array([0.2, 0.2])
    assert paper_tables.t_test(same, same) == 1.0
    assert math.isnan(paper_tables.t_test(np.array([0.1]), np.array([0.1, 0.2])))


def test_rows_without_timestamps_use_count_windows():
    rows, tables = paper_tables.build_rows(FeatureSpec(has_timestamps=False))
    assert rows["v3"].params["short_term_window_count"] == 10
    assert rows["v3_month"].params["short_term_window_count"] == 40
    assert tables["table3"] == ["v0", "v3"]


def test_a_grid_is_named_or_written_out():
    assert paper_tables.parse_grid("small") is paper_tables.GRIDS["small"]
    one = paper_tables.grid_configs(paper_tables.parse_grid("learning_rate=3e-3"))
    assert one == [{"learning_rate": 3e-3, "dropout": 0.2, "d_model": 64}]  # the other axes: grid none's
    two = paper_tables.grid_configs(paper_tables.parse_grid("dropout=0.2/0.5,d_model=128"))
    assert [(c["dropout"], c["d_model"]) for c in two] == [(0.2, 128), (0.5, 128)]
    for bad, names in (("tiny", "'tiny'"), ("width=64", "'width=64'"), ("learning_rate=fast", "learning_rate")):
        with pytest.raises(ValueError, match=names):
            paper_tables.parse_grid(bad)
    with pytest.raises(SystemExit, match="--grid"):
        paper_tables.main(["--dataset", "synthetic", "--quick", "--grid", "dropout=high"])


def test_rows_that_inherit_a_tuned_config_train_after_it():
    """A single-head V3 row asked for first must still follow V3: its seed-0 run needs the
    config V3's tuning chooses (an earlier runner skipped that run)."""
    rows, _ = paper_tables.build_rows(FeatureSpec(intents=(IntentHead("genre", "multi", 9),
                                                           IntentHead("action_type", "single", 5))))
    order = paper_tables.training_order(rows, ["v3_only_genre", "lstm", "v3"])
    assert sorted(order) == sorted(rows)
    assert order.index("v3") < order.index("v3_only_genre")
    assert order[:2] == ["lstm", "v3"]


def test_invalid_runs_are_flagged_and_excluded():
    """A validation metric outside [0, 1] (a negative rank from the evaluation) voids early
    stopping: such a run is named in the report and left out of the tables."""
    ok = {"val_curve": [0.1, 0.2], "val": {"ndcg@10": 0.2, "num_users": 3}, "test": {"ndcg@10": 0.1}}
    assert paper_tables.invalid_reason(ok) is None
    assert "epoch 2" in paper_tables.invalid_reason({**ok, "val_curve": [0.1, float("inf")]})
    assert paper_tables.invalid_reason({**ok, "test": {"ndcg@10": -0.5}}).startswith("test ndcg@10")

    class FakeRunner:
        def __init__(self, records):
            self.records = records

        def lookup(self, row, hp, seed):
            return self.records.get((row.id, seed))

    rows, tables = paper_tables.build_rows(FeatureSpec())
    rows = {"sasrec": rows["sasrec"]}
    hp = {"learning_rate": 1e-3, "dropout": 0.2, "d_model": 64}
    tuning = {"sasrec": {"configs": [{"hp": hp, "val_ndcg@10": 0.2, "wall_seconds": 1.0}], "chosen": hp}}
    records = {}
    for seed, curve in enumerate(([0.1, 0.2], [0.1, float("inf")], [0.15, 0.25])):
        test = {m: 0.1 + 0.01 * seed for m in ("recall@1", "recall@10", "recall@20", "ndcg@10", "ndcg@20", "mrr")}
        records[("sasrec", seed)] = {"row": "sasrec", "seed": seed, "key": f"k{seed}", "val_curve": curve,
                                     "val": dict(test), "test": test, "best_epoch": 2, "epochs_run": 2,
                                     "wall_seconds": 1.0, "params": 10}
    report = paper_tables.assemble_report({}, rows, {"table1": ["sasrec"], "table2": [], "table3": []}, tuning,
                                          FakeRunner(records), [0, 1, 2], [], final=True)
    assert [r["seed"] for r in report["rows"]["sasrec"]["runs"]] == [0, 2]
    assert report["invalid_runs"] == [{"row": "sasrec", "seed": 1, "key": "k1",
                                       "reason": "validation NDCG@10 = inf at epoch 2"}]
    assert report["complete"] is False


def test_selection_over_several_seeds_passes_over_a_setting_that_one_seed_favours():
    """`--select-seeds K` scores each grid config by its mean validation NDCG@10 over seeds
    0..K-1: a config best on seed 0 alone but poor on seed 1 (as SASRec's lr 3e-3 on
    ml-100k) loses to a steady one; with K = 1 it wins."""
    steady, lucky = {"learning_rate": 1e-3}, {"learning_rate": 3e-3}
    val = {(1e-3, 0): 0.110, (1e-3, 1): 0.108, (3e-3, 0): 0.114, (3e-3, 1): 0.080}
    calls = []

    def runner(row, hp, seed):
        calls.append((hp["learning_rate"], seed))
        score = val[(hp["learning_rate"], seed)]
        return {"val": {"ndcg@10": score}, "test": {"ndcg@10": score - 0.01}, "best_epoch": 3, "wall_seconds": 2.0}

    def chosen(seeds):
        configs = paper_tables.tune(runner, None, [steady, lucky], seeds)
        return max(configs, key=lambda c: c["val_ndcg@10"]), configs

    assert chosen([0])[0]["hp"] == lucky
    best, configs = chosen([0, 1])
    assert best["hp"] == steady
    assert configs[1]["val_ndcg@10"] == pytest.approx(0.097)
    assert configs[1]["val_ndcg@10_per_seed"] == [0.114, 0.080] and configs[1]["wall_seconds"] == 4.0
    assert calls[-4:] == [(1e-3, 0), (1e-3, 1), (3e-3, 0), (3e-3, 1)]
    assert paper_tables.tune(lambda row, hp, seed: None, None, [steady], [0]) is None  # --report-only, not run
    with pytest.raises(SystemExit, match="--select-seeds 3"):
        paper_tables.main(["--dataset", "synthetic-tiny", "--seeds", "2", "--select-seeds", "3", "--report-only"])


def test_a_grid_config_another_process_trains_is_waited_for_after_the_rest(tmp_path, monkeypatch):
    """Two processes tuning one row: the second passes over the config the first is
    training, trains the others, then polls until the first one's run is in `runs.jsonl`
    (before, it gave the whole row up at the first claimed config and exited)."""
    import os

    from bench.paper_tables import cli as cli_module
    from bench.paper_tables import runner as runner_module

    rows, _ = paper_tables.build_rows(FeatureSpec())
    grid = [{"learning_rate": lr, "dropout": 0.2, "d_model": 64} for lr in (1e-3, 3e-3, 1e-2)]
    context = {"dataset": "x"}
    trained, logged = [], []

    def record(row, hp, seed, *a, **k):
        return {"row": row.id, "seed": seed, "val": {"ndcg@10": hp["learning_rate"]}, "test": {"ndcg@10": 0.1},
                "val_curve": [0.1], "best_epoch": 30, "epochs_run": 400, "wall_seconds": 1.0}

    def fake_train(row, hp, seed, *a, **k):
        trained.append(hp["learning_rate"])
        return record(row, hp, seed)

    monkeypatch.setattr(runner_module, "train_one", fake_train)
    cache = tmp_path / "runs.jsonl"
    runner = paper_tables.Runner(None, {"train": {}}, context, cache, False, logged.append)
    runner._first_stop_epoch = 1
    # The first config is being trained by a live process (this one, as far as the claim says).
    key0 = paper_tables.run_key(context, rows["gru"], grid[0], 0)
    runner.claims.dir.mkdir()
    (runner.claims.dir / key0).write_text(json.dumps({"host": runner.claims.me["host"], "pid": os.getpid()}))
    assert paper_tables.tune(runner, rows["gru"], grid, [0]) is None  # --report-only: no waiting
    logged.clear()
    sleeps = []

    def other_process_finishes(seconds):
        sleeps.append(seconds)
        if len(sleeps) == 2:  # the other process appends its run and releases the claim
            with open(cache, "a") as f:
                f.write(json.dumps(dict(record(rows["gru"], grid[0], 0), key=key0)) + "\n")
            (runner.claims.dir / key0).unlink()

    monkeypatch.setattr(cli_module.time, "sleep", other_process_finishes)
    configs = paper_tables.tune(runner, rows["gru"], grid, [0], wait_seconds=30)
    assert [c["hp"] for c in configs] == grid and [c["val_ndcg@10"] for c in configs] == [1e-3, 3e-3, 1e-2]
    assert sorted(trained) == [3e-3, 1e-2] and sleeps == [30, 30]
    assert sum("left to it" in m for m in logged) == 0  # said once, in the report-only pass above


def test_a_cached_run_stopped_before_the_minimum_steps_is_trained_again(tmp_path, monkeypatch):
    """Early stopping may not end a run before `min_steps` optimiser steps (model.training):
    a cached run that stopped earlier (as GRU at epoch 11 on synthetic-small) is stale."""
    from bench.paper_tables import runner as runner_module

    rows, _ = paper_tables.build_rows(FeatureSpec())
    hp = {"learning_rate": 1e-3, "dropout": 0.2, "d_model": 64}
    context = {"dataset": "x"}
    record = {"row": "gru", "seed": 0, "val": {"ndcg@10": 0.08}, "test": {"ndcg@10": 0.08}, "val_curve": [0.08],
              "best_epoch": 1, "epochs_run": 11, "wall_seconds": 1.0}
    for epochs_run in (11, 25):
        cache = tmp_path / f"runs{epochs_run}.jsonl"
        record["best_epoch"] = max(1, epochs_run - training.TrainConfig().patience)  # stopped by patience
        cache.write_text(json.dumps({**record, "epochs_run": epochs_run,
                                     "key": paper_tables.run_key(context, rows["gru"], hp, 0)}) + "\n")
        trained = []
        monkeypatch.setattr(runner_module, "train_one",
                            lambda *a, **k: trained.append(1) or {**record, "epochs_run": 40, "best_epoch": 30})
        run = paper_tables.Runner(None, {"train": {}}, context, cache, False, lambda m: None)
        run._first_stop_epoch = 25  # what 300 steps at 12 steps per epoch give
        assert run(rows["gru"], hp, 0)["epochs_run"] == (40 if epochs_run == 11 else 25)
        assert trained == ([1] if epochs_run == 11 else [])


def test_relative_tables_need_their_reference_row():
    """`--rows` without TransAct: Table 1 has no relative form (it would compare to nothing),
    and the reference row itself reads "ref", never "+0.00%"."""
    rows, tables = paper_tables.build_rows(FeatureSpec())
    runs = {row_id: _fake_runs(row_id, [0.1 + 0.01 * i, 0.12 + 0.01 * i]) for i, row_id in enumerate(("sasrec", "v0", "v1"))}
    out = paper_tables.build_tables(rows, tables, runs, [])
    assert not out["table1"]["has_reference"] and out["table2"]["has_reference"]
    report = {"dataset": "d", "command": "c", "git": {"commit": "0" * 40, "dirty": False}, "backend": "jax",
              "seeds": [0, 1], "grid_name": "none", "grid": [{}], "max_len": 5, "exclude_seen": True, "quick": False,
              "protocol": {"seen_filter": "history", "train_windows": "sliding", "epochs": 9, "patience": 2,
                           "batch_size": 4, "weight_decay": 0.0},
              "wall_seconds_total": 1.0, "tables": out, "tuning": {},
              "rows": {row_id: {"runs": r, "label": rows[row_id].label, "tune_as": row_id, "wall_seconds": 1.0,
                                "hp": {"learning_rate": 1e-3, "dropout": 0.2}} for row_id, r in runs.items()},
              "reference_baselines": {"popularity": dict.fromkeys(("ndcg@10", "recall@10", "mrr"), 0.01),
                                      "majority": {},
                                      "cooccurrence": dict.fromkeys(("ndcg@10", "recall@10", "mrr"), 0.02)}}
    md = paper_tables.markdown(report)
    assert "Table 1 (relative)" not in md and "Table 1 (absolute)" in md
    assert "Table 2 (relative)" in md
    v1_line = next(line for line in md.splitlines() if line.startswith("| V1: simple MTL") and "±" not in line)
    assert "| ref |" in v1_line and "+0.00%" not in md


def test_results_directory_does_not_make_a_run_dirty(tmp_path, monkeypatch):
    import subprocess

    from bench.paper_tables import runner

    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / "code.py").write_text("x = 1\n")
    subprocess.run(["git", "-C", str(tmp_path), "add", "code.py"], check=True)
    subprocess.run(["git", "-C", str(tmp_path), "-c", "user.email=a@b", "-c", "user.name=a", "commit", "-qm", "c"],
                   check=True)
    monkeypatch.setattr(runner, "REPO", tmp_path)
    (tmp_path / "results" / "ml-100k").mkdir(parents=True)
    (tmp_path / "results" / "ml-100k" / "runs.jsonl").write_text("{}\n")
    assert runner.git_state()["dirty"] is False
    # A committed results file changed by a later run (" M results/...", the first line of
    # the status output) is not code either.
    subprocess.run(["git", "-C", str(tmp_path), "add", "results"], check=True)
    subprocess.run(["git", "-C", str(tmp_path), "-c", "user.email=a@b", "-c", "user.name=a", "commit", "-qm", "r"],
                   check=True)
    (tmp_path / "results" / "ml-100k" / "runs.jsonl").write_text("{}\n{}\n")
    assert runner.git_state()["dirty"] is False
    (tmp_path / "code.py").write_text("x = 2\n")
    assert runner.git_state()["dirty"] is True


def test_a_new_model_option_at_its_old_behaviour_keeps_the_cached_runs():
    """The run key holds the model defaults; an option added later with the default that
    builds the old model must not change it (it orphaned every cached run once). If this
    fails on purpose (a default now builds a different model), update the pin."""
    import hashlib

    from bench.paper_tables.cli import KEYED_IF_CHANGED, model_defaults

    defaults = model_defaults()
    assert "relative_time_bias" not in defaults["IntentRecConfig"]
    assert KEYED_IF_CHANGED["IntentRecConfig"]["relative_time_bias"] is False
    assert "item_reads_intent_hidden" not in defaults["IntentRecConfig"]
    blob = json.dumps(defaults, sort_keys=True, default=str).encode()
    assert hashlib.sha1(blob).hexdigest()[:16] == "0068c36a9f3ab029"


def test_a_train_flag_that_repeats_the_default_finds_the_cached_runs(tmp_path, monkeypatch):
    """`--train patience=20` when 20 is the default is the same protocol as no flag: its runs
    share a key, and runs cached under the flag as typed are still found (not retrained)."""
    from bench.paper_tables import runner as runner_module
    from bench.paper_tables.cli import keyed_overrides

    default_patience = training.TrainConfig().patience
    assert keyed_overrides({"patience": default_patience}) == {}
    assert keyed_overrides({"patience": default_patience + 1}) == {"patience": default_patience + 1}

    rows, _ = paper_tables.build_rows(FeatureSpec())
    hp = {"learning_rate": 1e-3, "dropout": 0.2, "d_model": 64}
    typed = {"dataset": "x", "settings": {"train": {"patience": default_patience}}}
    record = {"row": "gru", "seed": 0, "val": {"ndcg@10": 0.1}, "test": {"ndcg@10": 0.1}, "val_curve": [0.1],
              "best_epoch": 30, "epochs_run": 400, "wall_seconds": 1.0,
              "key": paper_tables.run_key(typed, rows["gru"], hp, 0)}
    cache = tmp_path / "runs.jsonl"
    cache.write_text(json.dumps(record) + "\n")
    trained = []
    monkeypatch.setattr(runner_module, "train_one", lambda *a, **k: trained.append(1) or dict(record))
    keyed = {"dataset": "x", "settings": {"train": keyed_overrides(typed["settings"]["train"])}}
    run = paper_tables.Runner(None, typed["settings"], keyed, cache, False, lambda m: None, aliases=[typed])
    run._first_stop_epoch = 1
    assert run(rows["gru"], hp, 0)["best_epoch"] == 30 and trained == []
    assert run.lookup(rows["gru"], hp, 0) is not None
    # Without the alias the same cache misses: the test is not vacuous.
    bare = paper_tables.Runner(None, typed["settings"], keyed, cache, False, lambda m: None)
    bare._first_stop_epoch = 1
    assert bare.lookup(rows["gru"], hp, 0) is None
    bare(rows["gru"], hp, 0)
    assert trained == [1]


def test_processes_sharing_one_results_directory_train_each_run_once(tmp_path, monkeypatch):
    """Two processes on one `runs.jsonl`: a run claimed by a live process is left to it, a run
    the other process finished since the start is read back instead of trained, and the
    claim of a process that died is taken over."""
    import os
    import subprocess
    import sys

    from bench.paper_tables import runner as runner_module

    rows, _ = paper_tables.build_rows(FeatureSpec())
    hp = {"learning_rate": 1e-3, "dropout": 0.2, "d_model": 64}
    context = {"dataset": "x"}
    trained = []

    def fake_train(row, hp, seed, *a, **k):
        trained.append(seed)
        return {"row": row.id, "seed": seed, "val": {"ndcg@10": 0.1}, "test": {"ndcg@10": 0.1},
                "val_curve": [0.1], "best_epoch": 30, "epochs_run": 400, "wall_seconds": 1.0}

    monkeypatch.setattr(runner_module, "train_one", fake_train)
    cache = tmp_path / "runs.jsonl"

    def runner():
        r = paper_tables.Runner(None, {"train": {}}, context, cache, False, lambda m: None)
        r._first_stop_epoch = 1
        return r

    first, second = runner(), runner()
    # Seed 0 is being trained by a live process (this one, as far as the claim says).
    claims = first.claims.dir
    claims.mkdir()
    key0 = paper_tables.run_key(context, rows["gru"], hp, 0)
    (claims / key0).write_text(json.dumps({"host": first.claims.me["host"], "pid": os.getpid()}))
    assert second(rows["gru"], hp, 0) is None and trained == []
    # The first process finishes seed 1; the second, started before, reads it back.
    assert first(rows["gru"], hp, 1)["seed"] == 1 and trained == [1]
    assert second(rows["gru"], hp, 1)["seed"] == 1 and trained == [1]
    assert not (claims / paper_tables.run_key(context, rows["gru"], hp, 1)).exists()  # released
    # A claim of a process that has exited is stale: the run is trained here.
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (claims / key0).write_text(json.dumps({"host": first.claims.me["host"], "pid": dead.pid}))
    assert second(rows["gru"], hp, 0)["seed"] == 0 and trained == [1, 0]
    # --fresh ignores the runs already in the file, not the ones written after it started.
    fresh = paper_tables.Runner(None, {"train": {}}, context, cache, True, lambda m: None)
    assert fresh.lookup(rows["gru"], hp, 1) is None
    first(rows["gru"], hp, 2)
    fresh.refresh()
    assert fresh.lookup(rows["gru"], hp, 2)["seed"] == 2
