"""Statistics over seeds, the relative / absolute tables, the markdown report and the plot."""

from __future__ import annotations

import math
import pathlib

import numpy as np

from bench.paper_tables.rows import ITEM_METRICS, SELECTION_METRIC
from bench.paper_tables.runner import invalid_reason


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
                if cells[metric] is not None and reference == row_id:
                    cells[metric]["is_reference"] = True
            body[row_id] = {"label": rows[row_id].label, "cells": cells}
        out[name] = {"title": title, "reference": ref, "columns": columns, "rows": body,
                     "has_reference": bool(rows_runs.get(ref))}
    return out


def _fmt_rel(cell):
    if cell is None:
        return "N/A"
    if cell.get("is_reference"):
        return "ref"
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


def _selection(report: dict) -> str:
    seeds = report.get("select_seeds") or report["seeds"][:1]
    return (f"validation NDCG@10 with seed {seeds[0]}" if len(seeds) == 1 else
            f"the mean validation NDCG@10 over seeds {', '.join(map(str, seeds))}")


def markdown(report: dict) -> str:
    lines = [f"# Paper tables on `{report['dataset']}`", ""]
    lines.append(f"Command: `{report['command']}`  ")
    protocol = report["protocol"]
    seen = ("seen items excluded from the ranking: the user's whole known history (training interactions and "
            "earlier held-out targets)" if protocol["seen_filter"] == "history" else
            "seen items excluded from the ranking: the model's input window only") if report["exclude_seen"] else \
        "seen items kept in the ranking (re-consumption is common in this log)"
    lines.append(f"Commit `{report['git']['commit'][:12]}`{' (dirty tree)' if report['git']['dirty'] else ''}, "
                 f"backend {report['backend']} (Keras {report.get('keras_version', '?')}), seeds {report['seeds']}, "
                 f"grid `{report['grid_name']}` ({len(report['grid'])} configs: learning rate × dropout × width), "
                 f"train windows `{protocol['train_windows']}`, max_len {report['max_len']}; {seen}"
                 f"{'; QUICK (smoke test: not a result)' if report['quick'] else ''}.  ")
    if report.get("provenance"):
        lines.append(f"Runs: {report['provenance']}  ")
    runs = [r for info in report["rows"].values() for r in info["runs"]]
    lines.append(f"Wall time of this invocation {report['wall_seconds_total'] / 60:.1f} min; "
                 f"training runs in the tables: {len(runs)}, their summed wall time "
                 f"{sum(r['wall_seconds'] for r in runs) / 60:.1f} min.")
    floor = f" once {protocol['min_steps']:,} optimiser steps are done" if protocol.get("min_steps") else ""
    lines.append(f"Protocol, the same for every row (`model.training.TrainConfig`, as `model.train` and the TFX "
                 f"Trainer): at most {protocol['epochs']} epochs, early stopping on validation NDCG@10 with patience "
                 f"{protocol['patience']}{floor}, batch {protocol['batch_size']}, AdamW (weight decay "
                 f"{protocol['weight_decay']:g}); learning rate, dropout and width from grid `{report['grid_name']}`, "
                 f"chosen on {_selection(report)}.")
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
        kinds = (("relative", _fmt_rel), ("absolute", _fmt_abs)) if table.get("has_reference", True) else \
            (("absolute", _fmt_abs),)  # without its reference row (`--rows`), a relative table says nothing
        for kind, fmt in kinds:
            title = table["title"] if kind == "relative" else table["title"].split(",")[0]
            lines += ["", f"## Table {number} ({kind}): {title}", ""]
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
                co = [f"{ref['cooccurrence'][c]:.4f}" if c in ITEM_METRICS else
                      (f"{ref['markov'][c]:.4f}" if c in ref.get("markov", {}) else "N/A") for c in cols]
                lines.append("| *Item co-occurrence / Markov intents (non-neural)* | " + " | ".join(co) + " |")
    lines += ["", f"## Chosen hyperparameters ({_selection(report)})", "",
              "| Row | learning rate | dropout | width | val NDCG@10 of each grid config (lr/dropout/width) "
              "| best epoch / epochs run, per seed | wall time (all runs) |", "|---|---|---|---|---|---|---|"]
    for row_id, info in report["rows"].items():
        tuning = report["tuning"].get(info["tune_as"], {})
        grid_text = ", ".join(f"{c['hp']['learning_rate']:g}/{c['hp']['dropout']:g}/{c['hp'].get('d_model', 64)}: "
                              f"{c['val_ndcg@10']:.4f}" for c in tuning.get("configs", [])) \
            if info["tune_as"] == row_id else f"as {info['tune_as']}"
        epochs = ", ".join(f"{r['best_epoch']}/{r['epochs_run']}" for r in info["runs"])
        capped = any(r["epochs_run"] >= protocol["epochs"] for r in info["runs"])
        lines.append(f"| {info['label']} | {info['hp']['learning_rate']:g} | {info['hp']['dropout']:g} | "
                     f"{info['hp'].get('d_model', 64)} | {grid_text} | {epochs}{' (CAPPED)' if capped else ''} | "
                     f"{info['wall_seconds'] / 60:.1f} min |")
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
        configs = tuning[row.id]["configs"] if own_tuning else []
        tuning_seconds = float(sum(c["wall_seconds"] for c in configs))
        tuned_seeds = configs[0].get("seeds", seeds[:1]) if configs else []  # their runs count as tuning
        final_seconds = sum(r["wall_seconds"] for r in runs if r["seed"] not in tuned_seeds)
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


