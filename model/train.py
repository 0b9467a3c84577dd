"""Train and evaluate one IntentRec variant on one dataset.

    python -m model.train --dataset synthetic --variant v3
    python -m model.train --dataset ml-100k --variant v0 --seed 1
    KERAS_BACKEND=jax python -m model.train --dataset synthetic --set d_model=128

Writes `<out>/metrics.json`, `<out>/config.json`, `<out>/model.keras` and
`<out>/preprocessor.json` (the vocabularies and statistics the model's inputs were
encoded with, which `analysis.intents` and `analysis.realtime` need to encode new
histories) (default out: `runs/<dataset>/<variant>-seed<seed>/`) and prints a metrics
table: IntentRec on validation and test, next to a popularity ranking and
majority-class intent accuracy.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import pathlib
import sys

import keras

import datasets
from datasets.cli import add_dataset_arguments, dataset_from_args
from datasets.feature_spec import DEFAULT_MAX_LEN
from model import IntentRec, IntentRecConfig, training
from model.config import VARIANTS


def parse_overrides(pairs, target_cls):
    """`key=value` strings → typed kwargs for a dataclass (JSON values or plain strings)."""
    fields = {f.name for f in dataclasses.fields(target_cls)}
    out = {}
    for pair in pairs or ():
        if "=" not in pair:
            raise SystemExit(f"--set expects key=value, got {pair!r}")
        key, value = pair.split("=", 1)
        if key not in fields:
            raise SystemExit(f"unknown setting {key!r}; known: {sorted(fields)}")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def build_parser():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_dataset_arguments(p)
    p.add_argument("--variant", default=IntentRecConfig.variant, choices=list(VARIANTS))
    p.add_argument("--intents", default=None, help="comma-separated intent heads to keep (default: all)")
    p.add_argument("--max-len", type=int, default=DEFAULT_MAX_LEN, help="n, the latest interactions per user")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="IntentRecConfig override")
    p.add_argument("--train", action="append", default=[], metavar="KEY=VALUE", help="TrainConfig override")
    p.add_argument("--seed", type=int, default=training.TrainConfig.seed)
    p.add_argument("--out", default=None, help="output directory")
    return p


def main(argv=None) -> dict:
    args = build_parser().parse_args(argv)
    train_cfg = training.TrainConfig(seed=args.seed, **parse_overrides(args.train, training.TrainConfig))
    if sys.stdout.isatty():
        train_cfg.verbose = 2

    dataset, data_kwargs = dataset_from_args(args)
    print(f"[data] {dataset.name}: {len(dataset.interactions):,} interactions")
    print(dataset.report.summary())
    encoded = datasets.encode(dataset, max_len=args.max_len, train_windows=train_cfg.train_windows)
    spec = encoded.feature_spec
    print(f"[data] train rows {len(encoded.train):,} / val users {len(encoded.val):,} / test users "
          f"{len(encoded.test):,}; items {spec.item_vocab_size:,}")

    intents = args.intents.split(",") if args.intents else None
    config = IntentRecConfig.from_feature_spec(spec, intents=intents, variant=args.variant,
                                               **parse_overrides(args.set, IntentRecConfig))
    keras.utils.set_random_seed(args.seed)  # before building: the seed also fixes the initial weights
    model = IntentRec(config)
    print(f"[model] IntentRec-{args.variant} ({keras.config.backend()} backend): "
          f"{model.count_params():,} parameters, intents {[h.name for h in model.intent_heads]}")

    result = training.fit_and_evaluate(model, encoded, train_cfg)
    baselines = training.reference_baselines(encoded, train_cfg, result["exclude_seen"])

    out = pathlib.Path(args.out or os.path.join("runs", dataset.name, f"{args.variant}-seed{args.seed}"))
    out.mkdir(parents=True, exist_ok=True)
    model.save(out / "model.keras")
    encoded.preprocessor.save(out / "preprocessor.json")
    report = {
        "dataset": dataset.name,
        # Enough to rebuild the data: `datasets.resolve(dataset_arg, **data_args)`.
        "dataset_arg": args.dataset,
        "data_args": data_kwargs,
        "max_len": spec.max_len,
        "variant": args.variant,
        "seed": args.seed,
        "backend": keras.config.backend(),
        "model_config": config.to_dict(),
        "train_config": dataclasses.asdict(train_cfg),
        "data_stats": encoded.stats,
        **result,
        "baselines": baselines,
    }
    (out / "metrics.json").write_text(json.dumps(report, indent=2, default=float))
    (out / "config.json").write_text(json.dumps(config.to_dict(), indent=2))
    print_table(report)
    print(f"[out] {out}/metrics.json, {out}/model.keras, {out}/preprocessor.json")
    return report


def print_table(report):
    from rich.console import Console
    from rich.table import Table

    protocol = report["protocol"]
    seen = (f"excluded ({'whole history' if protocol['seen_filter'] == 'history' else 'input window'})"
            if report["exclude_seen"] else "kept")
    table = Table(title=f"IntentRec-{report['variant']} on {report['dataset']} "
                        f"(seen items {seen}; best epoch {report['best_epoch']}/{report['epochs_run']})")
    columns = ["", "recall@1", "recall@10", "recall@20", "ndcg@10", "ndcg@20", "mrr"]
    intent_keys = sorted(k for k in report["test"] if k.startswith("intent_accuracy/"))
    for col in columns + [k.split("/", 1)[1] + " acc" for k in intent_keys]:
        table.add_column(col, justify="right" if col else "left")
    rows = [("val", report["val"]), ("test", report["test"]),
            ("popularity (test)", report["baselines"]["popularity"]),
            ("item co-occurrence (test)", report["baselines"]["cooccurrence"]),
            ("majority class (test)", report["baselines"]["majority"]),
            ("Markov: next intent after the current (test)", report["baselines"]["markov"])]
    for label, metrics in rows:
        table.add_row(label, *[_fmt(metrics.get(c)) for c in columns[1:]], *[_fmt(metrics.get(k)) for k in intent_keys])
    # Off a terminal (a log file, a pipe) rich would wrap the table to 80 columns and
    # truncate the cells: give it the width it needs.
    Console(width=None if sys.stdout.isatty() else 400).print(table)


def _fmt(value):
    return "–" if value is None else f"{value:.4f}"


if __name__ == "__main__":
    main()
