"""The `bench.paper_tables` command line: tune, train every row over seeds, write the tables."""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import pathlib
import platform
import shlex
import sys
import time

import numpy as np

from bench.paper_tables.report import assemble_report, markdown, plot
from bench.paper_tables.rows import (
    GRIDS,
    SELECTION_METRIC,
    build_rows,
    grid_configs,
    parse_grid,
    training_order,
)
from bench.paper_tables.runner import REPO, Runner
from datasets.cli import add_dataset_arguments
from datasets.feature_spec import DEFAULT_MAX_LEN


def build_parser():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_dataset_arguments(p)
    p.add_argument("--seeds", type=int, default=None, help="seeds per row (default 5; 1 with --quick)")
    p.add_argument("--grid", default=None,
                   help=f"tuning grid, learning rate x dropout x width, the same for every row: one of {sorted(GRIDS)} "
                        "(default small; none with --quick) or written out, e.g. learning_rate=3e-3,dropout=0.2/0.5 "
                        "(an axis left out takes the none grid's value)")
    p.add_argument("--select-seeds", type=int, default=1, metavar="K",
                   help="choose each row's grid config on the mean validation NDCG@10 over the first K seeds "
                        "(default 1: seed 0 alone; one seed can pick a setting that is unstable across seeds)")
    p.add_argument("--quick", action="store_true", help="tiny models, 2 epochs, 1 seed, 200 synthetic users: a smoke run")
    p.add_argument("--rows", default=None, help="comma-separated row ids to run (default: all)")
    p.add_argument("--order", default=None,
                   help="comma-separated row ids to train first (default: the SASRec anchor and TransAct first; "
                        "rows that reuse another row's tuned config follow that row); useful when a CPU "
                        "run may not finish")
    p.add_argument("--max-len", type=int, default=None, help=f"n (default {DEFAULT_MAX_LEN}; 20 with --quick)")
    p.add_argument("--train", action="append", default=[], metavar="KEY=VALUE",
                   help="TrainConfig override, for every row alike (default: the TrainConfig defaults, the "
                        "protocol of model.train and the TFX Trainer; --quick: 2 epochs, whole-set batches)")
    p.add_argument("--out", default=str(REPO / "results"), help="results root")
    p.add_argument("--fresh", action="store_true", help="ignore runs already in runs.jsonl")
    p.add_argument("--provenance", default=None,
                   help="free text printed under the command in the .md (e.g. where and how the cached runs ran)")
    p.add_argument("--report-only", action="store_true",
                   help="write the tables from the runs in runs.jsonl, training nothing (e.g. while a run goes on)")
    return p


# Model options added after runs were cached, with the value that builds the model those
# runs trained: left out of the run key while they have it, so adding an option does not
# orphan every cached run (as bench.ablation's KEYED_IF_SET does for TrainConfig fields).
KEYED_IF_CHANGED = {"IntentRecConfig": {"relative_time_bias": False, "item_reads_intent_hidden": False,
                                        "attribute_attention_bias": False}}


def keyed_overrides(train: dict) -> dict:
    """The `--train` overrides as runs are keyed by: without those that repeat today's
    `TrainConfig` default, so `--train patience=20` finds the runs trained without the flag
    when 20 is the default (it retrained them once)."""
    from model import training

    defaults = training.TrainConfig()
    return {k: v for k, v in train.items() if v != getattr(defaults, k)}


def model_defaults() -> dict:
    """The model configs' defaults (not the data-derived fields) that a row inherits."""
    from model import IntentRecConfig
    from model.baselines import BaselineConfig

    defaults = {}
    for cls in (IntentRecConfig, BaselineConfig):
        unkeyed = KEYED_IF_CHANGED.get(cls.__name__, {})
        defaults[cls.__name__] = {
            f.name: f.default for f in dataclasses.fields(cls)
            if f.default is not dataclasses.MISSING and f.name != "feature_spec"
            and not (f.name in unkeyed and f.default == unkeyed[f.name])}
    return defaults


def tune(runner, row, grid, select_seeds, wait_seconds=None) -> list | None:
    """Every grid config of `row` trained with each of `select_seeds` (taken from the cache
    where it ran before), scored by its mean validation NDCG@10.

    A run that another process is training is passed over while this one trains the rest;
    then, with `wait_seconds`, it is waited for (polled), since the choice needs every
    config. Without it (--report-only) None while a config has no run."""
    runs = [(c, seed) for c in range(len(grid)) for seed in select_seeds]
    done = {}  # (config index, seed) → record
    while True:
        for c, seed in runs:
            if (c, seed) not in done and (record := runner(row, grid[c], seed)) is not None:
                done[c, seed] = record
        if len(done) == len(runs):
            break
        if wait_seconds is None:
            return None
        time.sleep(wait_seconds)
    configs = []
    for c, hp in enumerate(grid):
        records = [done[c, seed] for seed in select_seeds]
        val = [r["val"][SELECTION_METRIC] for r in records]
        configs.append({"hp": hp, "seeds": list(select_seeds), f"val_{SELECTION_METRIC}": float(np.mean(val)),
                        f"val_{SELECTION_METRIC}_per_seed": val,
                        f"test_{SELECTION_METRIC}": float(np.mean([r["test"][SELECTION_METRIC] for r in records])),
                        "best_epoch": [r["best_epoch"] for r in records],
                        "wall_seconds": sum(r["wall_seconds"] for r in records)})
    return configs


def _without_provenance(argv):
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a == "--provenance":
            skip = True
        elif not a.startswith("--provenance="):
            out.append(a)
    return out


def main(argv=None) -> dict:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    started_wall = time.perf_counter()
    started = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")

    import keras

    import datasets
    from datasets.cli import parse_key_values
    from model import training
    from model.train import parse_overrides

    quick = args.quick
    seeds = list(range(args.seeds if args.seeds is not None else (1 if quick else 5)))
    grid_name = args.grid or ("none" if quick else "small")
    if not 1 <= args.select_seeds <= len(seeds):
        raise SystemExit(f"--select-seeds {args.select_seeds}: must be between 1 and --seeds ({len(seeds)})")
    select_seeds = seeds[:args.select_seeds]
    try:
        grid = grid_configs(parse_grid(grid_name))
    except ValueError as e:
        raise SystemExit(f"--grid: {e}") from None
    max_len = args.max_len or (20 if quick else DEFAULT_MAX_LEN)

    data_kwargs = parse_key_values(args.data_arg)
    if quick and args.dataset.startswith("synthetic") and "num_users" not in data_kwargs:
        data_kwargs["num_users"] = 200
    train = parse_overrides(args.train, training.TrainConfig)
    if quick:
        train = {"epochs": 2, "patience": 1, "min_steps": 0, "length_buckets": 1, **train}
    protocol = training.TrainConfig(**train)

    def log(message):
        print(message, flush=True)

    dataset = datasets.resolve(args.dataset, **data_kwargs)
    encoded = datasets.encode(dataset, max_len=max_len, train_windows=protocol.train_windows)
    if quick and "batch_size" not in train:  # one traced step shape: TF tracing dominates tiny runs
        train["batch_size"] = len(encoded.train)
        protocol = training.TrainConfig(**train)
    settings = {"train": train, "quick": quick}
    spec = encoded.feature_spec
    heads = [h.name for h in spec.intents]
    exclude_seen = training.resolve_exclude_seen(protocol.exclude_seen, encoded.train)
    log(f"[data] {dataset.name}: {len(dataset.interactions):,} interactions, train rows {len(encoded.train):,} / "
        f"test users {len(encoded.test):,}, items {spec.item_vocab_size:,}, intents {heads}, "
        f"timestamps {spec.has_timestamps}, exclude seen {exclude_seen} ({protocol.seen_filter})")

    rows, tables = build_rows(spec)
    if args.rows:
        wanted = set(args.rows.split(","))
        unknown = wanted - set(rows)
        if unknown:
            raise SystemExit(f"unknown rows {sorted(unknown)}; known: {sorted(rows)}")
        rows = {k: v for k, v in rows.items() if k in wanted}

    out_dir = pathlib.Path(args.out) / (dataset.name if ":" in args.dataset else args.dataset)
    if quick:
        out_dir = out_dir.with_name(out_dir.name + "-quick")
    out_dir.mkdir(parents=True, exist_ok=True)
    # The model defaults are part of a run's identity: a row is "IntentRecConfig defaults +
    # its overrides", so runs cached under other defaults must not be reused.
    context = {"dataset": args.dataset, "data_args": data_kwargs, "max_len": max_len,
               "settings": {**settings, "train": keyed_overrides(train)},
               "backend": keras.config.backend(), "model_defaults": model_defaults()}
    runner = Runner(encoded, settings, context, out_dir / "runs.jsonl", args.fresh, log,
                    verbose=0 if quick else 1,  # 1: the protocol line and one line per epoch in the log
                    report_only=args.report_only,
                    aliases=[{**context, "settings": settings}])  # runs cached under the flags as typed

    reference = training.reference_baselines(encoded, protocol, exclude_seen)
    meta = {
        "dataset": args.dataset,
        "dataset_name": dataset.name,
        "command": "python -m bench.paper_tables " + " ".join(shlex.quote(a) for a in _without_provenance(argv)),
        "argv": argv,
        "provenance": args.provenance,
        "quick": quick,
        "seeds": seeds,
        "grid_name": grid_name,
        "grid": grid,
        "select_seeds": select_seeds,
        "git": runner.git,
        "backend": keras.config.backend(),
        "keras_version": keras.__version__,
        "python": platform.python_version(),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
        "started": started,
        "max_len": max_len,
        "protocol": dataclasses.asdict(protocol),
        "exclude_seen": exclude_seen,
        "settings": settings,
        "data_args": data_kwargs,
        "data_stats": encoded.stats,
        "feature_spec": spec.to_dict(),
        "ttest": "scipy.stats.ttest_ind(equal_var=True), two-sided, over seeds (independent runs)",
        "reference_baselines": reference,
    }
    order = training_order(rows, args.order.split(",") if args.order else [])
    tuning = {}

    def write(final=False):
        report = assemble_report(meta, rows, tables, tuning, runner, seeds, heads, final)
        report["wall_seconds_total"] = time.perf_counter() - started_wall
        (out_dir / "paper_tables.json").write_text(json.dumps(report, indent=1, default=float))
        (out_dir / "paper_tables.md").write_text(markdown(report))
        if final or not quick:
            plot(report, out_dir / "paper_tables.png")
        return report

    # Phase 0: tuning on the selection seeds (mean validation NDCG@10); rows that inherit
    # a tuned config get their seed-0 run. Phase s: seed s for every row. Tables are
    # rewritten after every run, so a long CPU run can be read (with fewer seeds) at any time.
    for row_id in order:
        row = rows[row_id]
        if row.tune_as == row.id:
            if not args.report_only:
                log(f"[tune] {row.id} ({row.label}): {len(grid)} configs, seeds {select_seeds}")
            configs = tune(runner, row, grid, select_seeds, wait_seconds=None if args.report_only else 30)
            if configs is None:
                continue  # --report-only and tuning unfinished: no chosen config yet
            best = max(configs, key=lambda c: c[f"val_{SELECTION_METRIC}"])
            tuning[row.id] = {"configs": configs, "chosen": best["hp"]}
        else:
            if row.tune_as not in rows:
                if len(grid) != 1:
                    raise SystemExit(f"row {row.id!r} uses the tuned config of {row.tune_as!r}; include it in --rows")
                # One config: nothing to tune, the choice does not need the other row's runs.
                tuning.setdefault(row.tune_as, {"configs": [], "chosen": grid[0]})
            if row.tune_as not in tuning:
                continue
            runner(row, tuning[row.tune_as]["chosen"], seeds[0])
        if not args.report_only:
            write()
    for seed in seeds[1:]:
        for row_id in order:
            if rows[row_id].tune_as in tuning:
                runner(rows[row_id], tuning[rows[row_id].tune_as]["chosen"], seed)
                if not args.report_only:
                    write()
    runner.refresh()  # runs that other processes on this directory finished meanwhile
    complete = all(runner.lookup(rows[r], tuning[rows[r].tune_as]["chosen"], seed) is not None
                   for r in rows if rows[r].tune_as in tuning for seed in seeds) and len(tuning) == len(
        {r.tune_as for r in rows.values()})
    report = write(final=complete)
    log(markdown(report))
    log(f"[out] {out_dir}/paper_tables.md, .json, .png; runs in {out_dir}/runs.jsonl")
    return report


if __name__ == "__main__":
    main()
