"""Reproduce the paper's Tables 1–3 (IntentRec, §4) on any dataset.

    python -m bench.paper_tables --dataset synthetic --seeds 5
    python -m bench.paper_tables --dataset ml-100k --seeds 3 --grid small
    python -m bench.paper_tables --dataset synthetic-tiny --quick        # CI smoke run (~minutes)

Writes `results/<dataset>/paper_tables.{md,json,png}` (`--out` changes `results/`) and
appends every finished training run to `results/<dataset>/runs.jsonl`, so an
interrupted run resumes where it stopped (`--fresh` ignores earlier runs).

Protocol (docs/experiments.md):

1. Encode the data once (leave-one-out; `--train-windows sliding` by default, so
   every training target of every user is used).
2. Tuning: every tuned row gets the same grid (`--grid`: learning rate × dropout),
   trained with seed 0; the config with the best *validation* NDCG@10 is chosen.
   The single-head V3 rows of Table 3 reuse V3's chosen config.
3. Every row is trained with seeds 0..S-1 with its chosen config (the seed-0 run
   is the tuning run itself). Each run: early stopping on validation NDCG@10,
   test metrics of the best epoch (full-catalogue ranking; `model.evaluation`).
4. Tables: mean ± std over seeds, relative % to the reference row (Table 1:
   TransAct, Table 2: V1, Table 3: V0 for items and the single-head variant for
   each intent), and two-sided Student's t-test p-values (scipy
   `ttest_ind(equal_var=True)`: independent runs, seeds are not paired).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import hashlib
import json
import math
import os
import pathlib
import platform
import shlex
import subprocess
import sys
import time

import numpy as np

REPO = pathlib.Path(__file__).resolve().parent.parent
ITEM_METRICS = ("ndcg@10", "recall@10", "mrr")
SELECTION_METRIC = "ndcg@10"

# Architecture shared by every model (IntentRec's defaults). Only the grid varies.
MODEL_DEFAULTS = {"d_model": 64, "num_heads": 2, "dropout": 0.2}
QUICK_MODEL = {"d_model": 16, "num_heads": 2, "dropout": 0.1}
GRIDS = {
    "none": {"learning_rate": [1e-3], "dropout": [0.2]},
    "dropout": {"learning_rate": [1e-3], "dropout": [0.2, 0.5]},
    "small": {"learning_rate": [1e-3, 3e-3], "dropout": [0.2, 0.5]},
    "full": {"learning_rate": [5e-4, 1e-3, 3e-3], "dropout": [0.1, 0.3, 0.5]},
}
BASELINE_ROWS = ("lstm", "gru", "transformer", "sasrec", "bert4rec", "transact")
# Run order: the SASRec sanity anchor, the Table 1 reference (TransAct) and the other
# baselines, then IntentRec; partial tables (rewritten after every run) fill in that order.
PRIORITY = ("sasrec", "transact", "bert4rec", "transformer", "gru", "lstm", "v0", "v1", "v3", "v2", "v3_month")
LABELS = {
    "lstm": "LSTM", "gru": "GRU", "transformer": "Transformer", "sasrec": "SASRec", "bert4rec": "BERT4Rec",
    "transact": "TransAct", "v0": "IntentRec-V0", "v1": "V1: simple MTL", "v2": "V2: hierarchical MTL",
}


# --------------------------------------------------------------------------------------
# Rows
# --------------------------------------------------------------------------------------
@dataclasses.dataclass
class Row:
    """One model configuration (a table row). `tune_as`: whose tuned config it uses."""

    id: str
    label: str
    kind: str  # "baseline" | "intentrec"
    params: dict  # baseline: {"name"}; intentrec: IntentRecConfig overrides (+ "intents")
    tune_as: str


def training_order(rows: dict, requested=()) -> list:
    """Row ids in training order: `requested` first, then PRIORITY, then the rest; a row
    that inherits another row's tuned config (`tune_as`) always follows that row, since
    its seed-0 run needs the chosen config."""
    order = [r for r in requested if r in rows]
    order += [r for r in PRIORITY if r in rows and r not in order]
    order += [r for r in rows if r not in order]
    inherits = {r for r in order if rows[r].tune_as != r and rows[r].tune_as in rows}
    return [r for r in order if r not in inherits] + [r for r in order if r in inherits]


def build_rows(spec: dict) -> tuple[dict, dict]:
    """(rows by id, {"table1": [...], "table2": [...], "table3": [...]}) for a feature spec."""
    heads = [h["name"] for h in spec.get("intents", ())]
    timed = spec.get("has_timestamps", True)
    rows = {}

    def add(row_id, label, kind, params, tune_as=None):
        rows[row_id] = Row(row_id, label, kind, params, tune_as or row_id)

    for name in BASELINE_ROWS:
        add(name, LABELS[name], "baseline", {"name": name})
    add("v0", LABELS["v0"], "intentrec", {"variant": "v0"})
    add("v1", LABELS["v1"], "intentrec", {"variant": "v1"})
    add("v2", LABELS["v2"], "intentrec", {"variant": "v2"})
    if timed:
        week, month = {"short_term_window_days": 7.0}, {"short_term_window_days": 30.0}
        week_label, month_label = "V3: short-term, last 1 week", "V3: short-term, last 1 month"
    else:  # no timestamps: the count window (paper §3.2's naive definition)
        week, month = {"short_term_window_count": 10}, {"short_term_window_count": 40}
        week_label, month_label = "V3: short-term, last 10 interactions", "V3: short-term, last 40 interactions"
    add("v3", week_label, "intentrec", {"variant": "v3", **week})
    add("v3_month", month_label, "intentrec", {"variant": "v3", **month})
    single = []
    if len(heads) > 1:
        for head in heads:
            add(f"v3_only_{head}", f"V3, only {head}", "intentrec", {"variant": "v3", **week, "intents": [head]},
                tune_as="v3")
            single.append(f"v3_only_{head}")
    tables = {
        "table1": [*BASELINE_ROWS, "v0", "v3"],
        "table2": ["v0", "v1", "v2", "v3_month", "v3"],
        "table3": ["v0", *single, "v3"],
    }
    return rows, tables


def build_model(row: Row, spec: dict, hp: dict, model_overrides: dict, max_len: int):
    """A fresh model for `row` with hyperparameters `hp` (the model part: dropout)."""
    from model import IntentRec, IntentRecConfig
    from model.baselines import build_baseline

    arch = {**model_overrides, "dropout": hp["dropout"], "max_len": max_len}
    if row.kind == "baseline":
        arch = {k: v for k, v in arch.items() if k in ("d_model", "num_heads", "dropout", "max_len", "num_layers")}
        return build_baseline(row.params["name"], spec, **arch)
    params = dict(row.params)
    intents = params.pop("intents", None)
    d = arch.get("d_model", 64)
    layers = arch.pop("num_layers", 2)
    extra = {"item_embedding_dim": d, "intent_layers": layers, "item_layers": layers}
    if d < 64:  # quick mode: shrink the side widths with the model
        extra.update(feature_embedding_dim=8, d_short=8, d_proj=8)
    config = IntentRecConfig.from_feature_spec(spec, intents=intents, **{**extra, **arch, **params})
    return IntentRec(config)


# --------------------------------------------------------------------------------------
# Running and caching
# --------------------------------------------------------------------------------------
def run_key(context: dict, row: Row, hp: dict, seed: int) -> str:
    blob = json.dumps({"context": context, "kind": row.kind, "params": row.params, "hp": hp, "seed": seed},
                      sort_keys=True, default=str)
    return hashlib.sha1(blob.encode()).hexdigest()[:16]


def load_cache(path: pathlib.Path) -> dict:
    cache = {}
    if path.exists():
        for line in path.read_text().splitlines():
            if line.strip():
                record = json.loads(line)
                cache[record["key"]] = record
    return cache


def train_one(row, hp, seed, encoded, spec, settings, exclude_seen, verbose=0) -> dict:
    import keras

    from model import training

    keras.utils.clear_session()
    keras.utils.set_random_seed(seed)  # before building: the seed also fixes the initial weights
    started = time.perf_counter()
    model = build_model(row, spec, hp, settings["model"], settings["max_len"])
    train_cfg = training.TrainConfig(
        **{**settings["train"], "learning_rate": hp["learning_rate"], "seed": seed, "verbose": verbose,
           "exclude_seen": exclude_seen}
    )
    result = training.fit_and_evaluate(model, encoded, train_cfg)
    return {
        "row": row.id, "seed": seed, "hp": hp,
        "val": result["val"], "test": result["test"],
        "best_epoch": result["best_epoch"], "epochs_run": result["epochs_run"],
        "train_seconds": result["train_seconds"], "wall_seconds": time.perf_counter() - started,
        "params": int(model.count_params()),
        "val_curve": [h.get(f"val_{SELECTION_METRIC}") for h in result["history"]],
    }


class Runner:
    """Runs (or takes from the cache) one training run per (row, hp, seed)."""

    def __init__(self, encoded, spec, settings, context, cache_path, fresh, exclude_seen, log, verbose=0,
                 report_only=False):
        self.encoded, self.spec, self.settings, self.context = encoded, spec, settings, context
        self.cache_path = cache_path
        self.cache = {} if fresh else load_cache(cache_path)
        self.exclude_seen = exclude_seen
        self.log = log
        self.verbose = verbose
        self.report_only = report_only
        self.git = git_state()

    def lookup(self, row: Row, hp: dict, seed: int):
        return self.cache.get(run_key(self.context, row, hp, seed))

    def __call__(self, row: Row, hp: dict, seed: int):
        key = run_key(self.context, row, hp, seed)
        if key in self.cache and (self.report_only or not invalid_reason(self.cache[key])):
            return self.cache[key]  # an invalid run is reported as such, or trained again
        if self.report_only:
            return None
        self.log(f"  [{row.id}] lr={hp['learning_rate']:g} dropout={hp['dropout']:g} seed={seed} ...")
        record = train_one(row, hp, seed, self.encoded, self.spec, self.settings, self.exclude_seen, self.verbose)
        record.update(key=key, commit=self.git["commit"], dirty=self.git["dirty"],
                      finished=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"))
        self.log(f"    val ndcg@10={record['val']['ndcg@10']:.4f} test ndcg@10={record['test']['ndcg@10']:.4f} "
                 f"(best epoch {record['best_epoch']}/{record['epochs_run']}, {record['wall_seconds']:.0f}s)")
        if invalid_reason(record):
            self.log(f"    INVALID run, excluded from the tables: {invalid_reason(record)}")
        self.cache[key] = record
        with open(self.cache_path, "a") as f:
            f.write(json.dumps(record, default=float) + "\n")
        return record


def invalid_reason(record: dict):
    """Why a finished run cannot be used (None if it can).

    A validation metric outside [0, 1] means the evaluation produced a negative
    rank (model/evaluation.py subtracts the history items that score above the
    target, scored by a second matmul; where the two disagree in the last bits,
    e.g. TF32 on a GPU, a top-ranked target gets rank -1 and NDCG = inf). Early
    stopping then keeps that epoch as the best one, so the run's selection is void.
    """
    for epoch, value in enumerate(record.get("val_curve") or [], start=1):
        if value is None or not math.isfinite(value) or not 0.0 <= value <= 1.0:
            return f"validation NDCG@10 = {value} at epoch {epoch}"
    for split in ("val", "test"):
        for metric, value in record.get(split, {}).items():
            if metric != "num_users" and (value is None or not math.isfinite(value) or value < 0.0 or value > 1.0):
                return f"{split} {metric} = {value}"
    return None


def grid_configs(grid: dict) -> list[dict]:
    return [{"learning_rate": lr, "dropout": dr} for lr in grid["learning_rate"] for dr in grid["dropout"]]


def cooccurrence_baseline(encoded, exclude_seen, split="test", horizon=5, last=10, decay=0.7,
                          batch=1024) -> dict:
    """Ranking metrics of a non-neural sequential reference: item-to-item co-occurrence.

    C[i, j] counts how often j follows i within `horizon` steps in the training
    portion; a user's scores are Σ_j decay^j · C[h_{-j}] over the last `last`
    history items, ties broken by popularity. A trained sequential model should
    beat it: it is the protocol's sanity anchor (docs/experiments.md).
    """
    from scipy import sparse

    from model import evaluation

    vocab = encoded.feature_spec["item_vocab_size"]
    train = encoded.train
    seq = np.concatenate([train.x["item"], train.y["item"][:, -1:]], axis=1)  # the window + its last target
    seq[:, -1] = np.where(train.w[:, -1] > 0, seq[:, -1], 0)
    rows, cols = [], []
    for d in range(1, horizon + 1):
        a, b = seq[:, :-d].ravel(), seq[:, d:].ravel()
        ok = (a > 1) & (b > 1)
        rows.append(a[ok])
        cols.append(b[ok])
    rows, cols = np.concatenate(rows), np.concatenate(cols)
    counts = sparse.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(vocab, vocab))
    tie_break = 1e-6 * np.log1p(np.asarray(encoded.item_popularity, np.float64))
    s = encoded.split(split)
    history, targets = np.asarray(s.x["item"]), np.asarray(s.y["item"][:, -1])
    ranks = []
    for lo in range(0, len(targets), batch):
        h = history[lo:lo + batch]
        scores = np.zeros((len(h), vocab), np.float64)
        for j in range(1, min(last, h.shape[1]) + 1):
            scores += decay ** (j - 1) * counts[h[:, -j]].toarray()
        scores += tie_break[None, :]
        scores[:, :2] = -np.inf
        t = targets[lo:lo + batch]
        if exclude_seen:
            seen = np.zeros_like(scores, dtype=bool)
            seen[np.repeat(np.arange(len(h)), h.shape[1]), h.ravel()] = True
            seen[:, :2] = True
            target_seen = seen[np.arange(len(h)), t]
            scores[seen] = -np.inf
        else:
            target_seen = np.zeros(len(h), bool)
        target_scores = scores[np.arange(len(h)), t]
        r = (scores > target_scores[:, None]).sum(axis=1).astype(np.float64)
        ranks.append(np.where(target_seen | (t < 2), 1e9, r))
    return evaluation.ranking_metrics(np.concatenate(ranks))


# --------------------------------------------------------------------------------------
# Statistics and tables
# --------------------------------------------------------------------------------------
def metric_values(runs: list, metric: str) -> np.ndarray:
    return np.asarray([r["test"][metric] for r in runs if metric in r["test"]], dtype=np.float64)


def summarize(values: np.ndarray) -> dict:
    if values.size == 0:
        return {"mean": None, "std": None, "n": 0}
    std = float(values.std(ddof=1)) if values.size > 1 else float("nan")
    return {"mean": float(values.mean()), "std": std, "n": int(values.size)}


def t_test(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sided Student's t-test (equal variances) of independent seed samples."""
    from scipy import stats

    if a.size < 2 or b.size < 2:
        return float("nan")
    if np.all(a == a[0]) and np.all(b == b[0]):
        return 0.0 if a[0] != b[0] else 1.0
    return float(stats.ttest_ind(a, b, equal_var=True).pvalue)


def compare(rows_runs: dict, row_id: str, ref_id: str, metric: str) -> dict:
    """Cell of a relative table: model vs reference on `metric` (None when N/A)."""
    a = metric_values(rows_runs[row_id], metric)
    b = metric_values(rows_runs[ref_id], metric) if ref_id in rows_runs else np.zeros(0)
    if a.size == 0:
        return None
    cell = {"abs": summarize(a)}
    if b.size == 0 or b.mean() == 0:
        cell.update(rel=None, p=None)
    else:
        cell.update(rel=float(100.0 * (a.mean() - b.mean()) / b.mean()), p=t_test(a, b), ref=summarize(b))
    return cell


def build_tables(rows: dict, tables: dict, rows_runs: dict, heads: list) -> dict:
    intent_metrics = [f"intent_accuracy/{h}" for h in heads]
    columns = [*ITEM_METRICS, *intent_metrics]
    out = {}
    specs = {
        "table1": ("transact", "Next-item and next-intent prediction, relative to TransAct"),
        "table2": ("v1", "IntentRec variants, relative to V1 (simple MTL)"),
        "table3": ("v0", "V3 with one intent head vs all heads; items relative to V0, "
                         "intents relative to the single-head variant of that intent"),
    }
    for name, (ref, title) in specs.items():
        row_ids = [r for r in tables[name] if r in rows_runs and rows_runs[r]]
        body = {}
        for row_id in row_ids:
            cells = {}
            for metric in columns:
                reference = ref
                if name == "table3" and metric.startswith("intent_accuracy/"):
                    reference = f"v3_only_{metric.split('/', 1)[1]}"
                    if reference not in rows:  # a single-head dataset: no single-head rows
                        reference = "v3"
                cells[metric] = compare(rows_runs, row_id, reference, metric)
            body[row_id] = {"label": rows[row_id].label, "cells": cells}
        out[name] = {"title": title, "reference": ref, "columns": columns, "rows": body}
    return out


def _fmt_rel(cell):
    if cell is None:
        return "N/A"
    if cell.get("rel") is None:
        return "–"
    p = cell.get("p")
    p_text = "" if p is None or (isinstance(p, float) and math.isnan(p)) else f" (p={p:.2g})"
    return f"{cell['rel']:+.2f}%{p_text}"


def _fmt_abs(cell):
    if cell is None:
        return "N/A"
    a = cell["abs"]
    std = a["std"]
    return f"{a['mean']:.4f}" + ("" if std is None or math.isnan(std) else f" ± {std:.4f}")


def _column_title(metric):
    if metric.startswith("intent_accuracy/"):
        return metric.split("/", 1)[1] + " acc"
    return {"ndcg@10": "NDCG@10", "recall@10": "Recall@10", "mrr": "MRR"}.get(metric, metric)


def markdown(report: dict) -> str:
    lines = [f"# Paper tables on `{report['dataset']}`", ""]
    lines.append(f"Command: `{report['command']}`  ")
    lines.append(f"Commit `{report['git']['commit'][:12]}`{' (dirty tree)' if report['git']['dirty'] else ''}, "
                 f"backend {report['backend']}, seeds {report['seeds']}, grid `{report['grid_name']}` "
                 f"({len(report['grid'])} configs), train windows `{report['train_windows']}`, "
                 f"max_len {report['max_len']}, seen items {'excluded' if report['exclude_seen'] else 'kept'} "
                 f"in the ranking{', QUICK (smoke test: not a result)' if report['quick'] else ''}.  ")
    if report.get("provenance"):
        lines.append(f"Runs: {report['provenance']}  ")
    runs = [r for info in report["rows"].values() for r in info["runs"]]
    lines.append(f"Wall time of this invocation {report['wall_seconds_total'] / 60:.1f} min; "
                 f"training runs in the tables: {len(runs)}, their summed wall time "
                 f"{sum(r['wall_seconds'] for r in runs) / 60:.1f} min.")
    budget = report["settings"]["train"]
    lines.append(f"Budget, the same for every row: at most {budget['epochs']} epochs, early stopping on validation "
                 f"NDCG@10 with patience {budget['patience']}, batch {budget['batch_size']}, AdamW lr/dropout from "
                 f"grid `{report['grid_name']}`.")
    if not report.get("complete", True):
        done = sum(len(r["runs"]) for r in report["rows"].values())
        lines.append("")
        lines.append(f"**PARTIAL: {done} valid runs; rows marked n=k have k of {len(report['seeds'])} seeds "
                     f"(runs not finished, or excluded below).**")
    if report.get("invalid_runs"):
        lines.append("")
        lines.append("Excluded runs (`invalid_reason`: a validation metric outside [0, 1] voids early stopping): "
                     + "; ".join(f"{r['row']} seed {r['seed']} ({r['reason']})" for r in report["invalid_runs"]) + ".")
    lines.append("")
    lines.append("Relative cells: % change of the mean over seeds vs the reference row, with the two-sided "
                 "Student's t-test p-value (independent samples, equal variances) over seeds. "
                 "Absolute cells: mean ± std (ddof=1) of the test metric. N/A: the model has no such head.")
    for name in ("table1", "table2", "table3"):
        table = report["tables"][name]
        if not table["rows"]:
            continue
        number = name[-1]
        cols = table["columns"]
        for kind, fmt in (("relative", _fmt_rel), ("absolute", _fmt_abs)):
            lines += ["", f"## Table {number} ({kind}): {table['title']}", ""]
            lines.append("| Model | " + " | ".join(_column_title(c) for c in cols) + " |")
            lines.append("|---|" + "---|" * len(cols))
            for row_id, row in table["rows"].items():
                n = len(report["rows"][row_id]["runs"])
                label = row["label"] + (f" (n={n})" if n < len(report["seeds"]) else "")
                lines.append(f"| {label} | " + " | ".join(fmt(row["cells"][c]) for c in cols) + " |")
            if name == "table1" and kind == "absolute":
                ref = report["reference_baselines"]
                pop = [f"{ref['popularity'].get(c, float('nan')):.4f}" if c in ITEM_METRICS else
                       (f"{ref['majority'][c]:.4f}" if c in ref["majority"] else "N/A") for c in cols]
                lines.append("| *Popularity / majority class* | " + " | ".join(pop) + " |")
                if "cooccurrence" in ref:
                    co = [f"{ref['cooccurrence'][c]:.4f}" if c in ITEM_METRICS else "N/A" for c in cols]
                    lines.append("| *Item co-occurrence (non-neural)* | " + " | ".join(co) + " |")
    lines += ["", "## Chosen hyperparameters (validation NDCG@10, seed 0)", "",
              "| Row | learning rate | dropout | val NDCG@10 of each grid config | best epoch / epochs run, per seed "
              "| wall time (all runs) |", "|---|---|---|---|---|---|"]
    for row_id, info in report["rows"].items():
        tuning = report["tuning"].get(info["tune_as"], {})
        grid_text = ", ".join(f"{c['hp']['learning_rate']:g}/{c['hp']['dropout']:g}: {c['val_ndcg@10']:.4f}"
                              for c in tuning.get("configs", [])) if info["tune_as"] == row_id else f"as {info['tune_as']}"
        epochs = ", ".join(f"{r['best_epoch']}/{r['epochs_run']}" for r in info["runs"])
        lines.append(f"| {info['label']} | {info['hp']['learning_rate']:g} | {info['hp']['dropout']:g} | "
                     f"{grid_text} | {epochs} | {info['wall_seconds'] / 60:.1f} min |")
    lines.append("")
    return "\n".join(lines)


def plot(report: dict, path: pathlib.Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [n for n in ("table1", "table2", "table3") if report["tables"][n]["rows"]]
    if not names:
        return
    fig, axes = plt.subplots(1, len(names), figsize=(6 * len(names), 4.8), squeeze=False)
    for ax, name in zip(axes[0], names):
        table = report["tables"][name]
        labels, means, stds, colors = [], [], [], []
        for row_id, row in table["rows"].items():
            cell = row["cells"][SELECTION_METRIC]
            labels.append(row["label"])
            means.append(cell["abs"]["mean"])
            std = cell["abs"]["std"]
            stds.append(0.0 if std is None or math.isnan(std) else std)
            colors.append("tab:orange" if row_id == table["reference"] else
                          ("tab:blue" if row_id.startswith("v") else "tab:gray"))
        ax.bar(range(len(labels)), means, yerr=stds, color=colors, capsize=3)
        ax.set_xticks(range(len(labels)))
        ax.set_xticklabels(labels, rotation=60, ha="right", fontsize=8)
        ax.set_ylabel("test NDCG@10 (mean ± std over seeds)")
        ax.set_title(f"Table {name[-1]} (reference: orange)", fontsize=10)
    fig.suptitle(f"{report['dataset']}: next-item NDCG@10, {len(report['seeds'])} seeds"
                 + (" (QUICK smoke run)" if report["quick"] else ""))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def assemble_report(meta, rows, tables, tuning, runner, seeds, heads, final) -> dict:
    """The report from the runs finished so far (a row may have fewer seeds until `final`)."""
    rows_runs, row_info, invalid = {}, {}, []
    for row in rows.values():
        if row.tune_as not in tuning:
            continue
        hp = tuning[row.tune_as]["chosen"]
        runs = [r for r in (runner.lookup(row, hp, seed) for seed in seeds) if r is not None]
        for r in runs:
            reason = invalid_reason(r)
            if reason:
                invalid.append({"row": row.id, "seed": r["seed"], "key": r["key"], "reason": reason})
        runs = [r for r in runs if not invalid_reason(r)]
        if not runs:
            continue
        rows_runs[row.id] = runs
        own_tuning = row.tune_as == row.id
        tuning_seconds = sum(c["wall_seconds"] for c in tuning[row.id]["configs"]) if own_tuning else 0.0
        final_seconds = sum(r["wall_seconds"] for r in runs if not (own_tuning and r["seed"] == seeds[0]))
        row_info[row.id] = {
            "label": row.label, "kind": row.kind, "params": row.params, "tune_as": row.tune_as, "hp": hp,
            "seeds_done": [r["seed"] for r in runs],
            "wall_seconds": tuning_seconds + final_seconds, "tuning_seconds": tuning_seconds,
            "seconds_per_run": float(np.mean([r["wall_seconds"] for r in runs])),
            "num_params": runs[0]["params"],
            "test_mean": {m: summarize(metric_values(runs, m))["mean"] for m in runs[0]["test"] if m != "num_users"},
            "test_std": {m: summarize(metric_values(runs, m))["std"] for m in runs[0]["test"] if m != "num_users"},
            "runs": [{k: r[k] for k in ("seed", "test", "val", "best_epoch", "epochs_run", "wall_seconds", "key")}
                     for r in runs],
        }
    if invalid:
        final = False
    return {**meta, "complete": final, "tuning": tuning, "rows": row_info, "invalid_runs": invalid,
            "tables": build_tables(rows, tables, rows_runs, heads)}


# --------------------------------------------------------------------------------------
# Provenance
# --------------------------------------------------------------------------------------
def git_state() -> dict:
    def git(*args):
        try:
            return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=30).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    return {"commit": git("rev-parse", "HEAD") or "unknown", "dirty": bool(git("status", "--porcelain"))}


# --------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------
def build_parser():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="synthetic", help="dataset alias or adapter:path (see datasets.aliases())")
    p.add_argument("--data-arg", action="append", default=[], metavar="KEY=VALUE", help="adapter argument")
    p.add_argument("--seeds", type=int, default=None, help="seeds per row (default 5; 1 with --quick)")
    p.add_argument("--grid", choices=sorted(GRIDS), default=None,
                   help="tuning grid, learning rate x dropout (default small; none with --quick)")
    p.add_argument("--quick", action="store_true", help="tiny models, 2 epochs, 1 seed, 200 synthetic users: a smoke run")
    p.add_argument("--rows", default=None, help="comma-separated row ids to run (default: all)")
    p.add_argument("--order", default=None,
                   help="comma-separated row ids to train first (default: the SASRec anchor and TransAct first; "
                        "rows that reuse another row's tuned config follow that row); useful when a CPU "
                        "run may not finish")
    p.add_argument("--max-len", type=int, default=None, help="n (default 50; 20 with --quick)")
    p.add_argument("--train-windows", choices=["last", "sliding"], default="sliding")
    p.add_argument("--epochs", type=int, default=None, help="max epochs (default 40; 2 with --quick)")
    p.add_argument("--patience", type=int, default=None, help="early-stopping patience (default 5)")
    p.add_argument("--batch-size", type=int, default=None,
                   help="default 32 (on CPU 4x the updates of 128 at half the time per epoch); --quick: the "
                        "whole training set in one batch (one traced step shape: TF tracing dominates tiny runs)")
    p.add_argument("--out", default=str(REPO / "results"), help="results root")
    p.add_argument("--fresh", action="store_true", help="ignore runs already in runs.jsonl")
    p.add_argument("--provenance", default=None,
                   help="free text printed under the command in the .md (e.g. where and how the cached runs ran)")
    p.add_argument("--report-only", action="store_true",
                   help="write the tables from the runs in runs.jsonl, training nothing (e.g. while a run goes on)")
    return p


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
    from bench import keras_fixes

    keras_fixes.jax_compat()  # Keras 3.6 on a newer JAX (e.g. a GPU machine's): no-op otherwise
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    started_wall = time.perf_counter()
    started = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")

    import keras

    import datasets
    from model import training

    quick = args.quick
    seeds = list(range(args.seeds if args.seeds is not None else (1 if quick else 5)))
    grid_name = args.grid or ("none" if quick else "small")
    grid = grid_configs(GRIDS[grid_name])
    max_len = args.max_len or (20 if quick else 50)
    from model.train import parse_data_args

    data_kwargs = parse_data_args(args.data_arg)
    if quick and args.dataset.startswith("synthetic") and "num_users" not in data_kwargs:
        data_kwargs["num_users"] = 200
    settings = {
        "max_len": max_len,
        "model": dict(QUICK_MODEL, num_layers=1) if quick else dict(MODEL_DEFAULTS),
        "train": {"epochs": args.epochs or (2 if quick else 40),
                  "patience": args.patience or (1 if quick else 5),
                  "batch_size": args.batch_size or 32},
    }

    def log(message):
        print(message, flush=True)

    dataset = datasets.resolve(args.dataset, **data_kwargs)
    encoded = datasets.encode(dataset, max_len=max_len, train_windows=args.train_windows)
    if quick and args.batch_size is None:
        settings["train"]["batch_size"] = len(encoded.train)
    spec = encoded.feature_spec
    heads = [h["name"] for h in spec.get("intents", ())]
    exclude_seen = training.resolve_exclude_seen("auto", encoded.train)
    log(f"[data] {dataset.name}: {len(dataset.interactions):,} interactions, users train {len(encoded.train):,} / "
        f"test {len(encoded.test):,}, items {spec['item_vocab_size']:,}, intents {heads}, "
        f"timestamps {spec['has_timestamps']}, exclude seen {exclude_seen}")

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
    context = {"dataset": args.dataset, "data_args": data_kwargs, "max_len": max_len,
               "train_windows": args.train_windows, "settings": settings, "backend": keras.config.backend(),
               # Always true since attention is correct on every backend; kept so that the
               # keys of runs trained under the old runtime patch stay valid.
               "attention_fix": True}
    runner = Runner(encoded, spec, settings, context, out_dir / "runs.jsonl", args.fresh, exclude_seen, log,
                    verbose=0 if quick else 1,  # 1: one line per epoch (val NDCG@10) in the log
                    report_only=args.report_only)

    reference = training.reference_baselines(encoded, exclude_seen)
    reference["cooccurrence"] = cooccurrence_baseline(encoded, exclude_seen)
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
        "git": runner.git,
        "backend": keras.config.backend(),
        "keras_version": keras.__version__,
        "python": platform.python_version(),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
        "started": started,
        "max_len": max_len,
        "train_windows": args.train_windows,
        "exclude_seen": exclude_seen,
        "settings": settings,
        "data_args": data_kwargs,
        "data_stats": encoded.stats,
        "feature_spec": spec,
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

    # Phase 0: tuning on seed 0 (validation NDCG@10); rows that inherit a tuned config
    # get their seed-0 run. Phase s: seed s for every row. Tables are rewritten after
    # every run, so a long CPU run can be read (with fewer seeds) at any time.
    for row_id in order:
        row = rows[row_id]
        if row.tune_as == row.id:
            if not args.report_only:
                log(f"[tune] {row.id} ({row.label}): {len(grid)} configs, seed {seeds[0]}")
            configs = []
            for hp in grid:
                record = runner(row, hp, seeds[0])
                if record is None:  # --report-only and not run yet
                    continue
                configs.append({"hp": hp, f"val_{SELECTION_METRIC}": record["val"][SELECTION_METRIC],
                                f"test_{SELECTION_METRIC}": record["test"][SELECTION_METRIC],
                                "best_epoch": record["best_epoch"], "wall_seconds": record["wall_seconds"]})
            if len(configs) < len(grid):
                continue  # tuning unfinished: no chosen config yet
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
    complete = all(runner.lookup(rows[r], tuning[rows[r].tune_as]["chosen"], seed) is not None
                   for r in rows if rows[r].tune_as in tuning for seed in seeds) and len(tuning) == len(
        {r.tune_as for r in rows.values()})
    report = write(final=complete)
    log(markdown(report))
    log(f"[out] {out_dir}/paper_tables.md, .json, .png; runs in {out_dir}/runs.jsonl")
    return report


if __name__ == "__main__":
    main()
