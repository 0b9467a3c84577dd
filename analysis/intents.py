"""Intent insights: K-means++ clusters of IntentRec's intent embeddings Z, their statistics
and names, quality measures, t-SNE and attention figures, an HTML report, and an export
of every user's intents (paper §4.4, §4.5).

    python -m analysis.intents --model runs/analysis/synthetic-small/v3-seed0 --dataset synthetic-small \
        --baseline-model runs/analysis/synthetic-small/v0-seed0 \
        --stability-model runs/analysis/synthetic-small/v3-seed1 \
        --out runs/analysis/synthetic-small/report
    python -m analysis.intents --model serving_root/intentrec --dataset ml-100k --history full \
        --export-parquet intents.parquet --export-tfrecord intents.tfrecord

Writes under --out: report.html (self-contained), summary.json, clusters.csv (user →
cluster), tsne.png, cluster_alpha.png, attention_<user>.png; prints the cluster and
quality tables. See docs/analysis.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Optional

import numpy as np
import pandas as pd

from analysis import clusters as C
from analysis import plots, quality, report
from analysis.inference import IntentTable, collect_intents
from analysis.sources import IntentModel, load_intent_model

DISPLAY_FACTORS = ("action", "genre", "item_type", "release", "joint")
DISPLAY_PERSONA = ("persona:action", "persona:genre", "persona:item_type", "persona:release")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m analysis.intents", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help=".keras file, model.train run dir, or TF-Serving SavedModel dir")
    p.add_argument("--dataset", required=True, help="dataset name / alias (as for model.train)")
    p.add_argument("--data-arg", action="append", default=[], metavar="KEY=VALUE", help="adapter argument")
    p.add_argument("--preprocessor", default=None, help="preprocessor.json of the training data (Keras models)")
    p.add_argument("--k", type=int, default=C.DEFAULT_K, help="number of clusters (paper: 10)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--n-init", type=int, default=10, help="K-means++ restarts")
    p.add_argument("--representation", default=None, choices=["z", "alpha", "probs", "hidden"],
                   help="what to cluster (default: Z, or item_hidden for non-hierarchical models)")
    p.add_argument("--history", default="test", choices=["test", "full"],
                   help="test: all but each user's last interaction (the held-out next intent is known; "
                        "default); full: every interaction (the intent right now)")
    p.add_argument("--baseline-model", action="append", default=[],
                   help="non-intent baseline (e.g. a V0 run): its item_hidden at the last position is "
                        "clustered the same way and compared")
    p.add_argument("--stability-model", action="append", default=[],
                   help="the same variant trained with another seed: cross-model stability of the clusters")
    p.add_argument("--max-users", type=int, default=None, help="analyse only the first N users")
    p.add_argument("--batch-size", type=int, default=512)
    p.add_argument("--recent", type=int, default=10, help="recent interactions summarised per user")
    p.add_argument("--examples", type=int, default=5, help="users listed nearest each centre")
    p.add_argument("--tsne-sample", type=int, default=2000, help="users drawn in the t-SNE plot")
    p.add_argument("--attention-users", type=int, default=4, help="users with an attention chart (Fig. 7)")
    p.add_argument("--user", action="append", default=[], help="also chart this user's attention")
    p.add_argument("--out", default=None, help="output dir (default: <model dir>/intents)")
    p.add_argument("--export-parquet", default=None, help="stream every user's intents to this Parquet file")
    p.add_argument("--export-tfrecord", default=None, help="... and/or this TFRecord file")
    p.add_argument("--export-history", default="full", choices=["test", "full"])
    p.add_argument("--no-plots", action="store_true")
    p.add_argument("--no-probe", action="store_true", help="skip the linear-probe diagnostic")
    return p


def _name(model: IntentModel) -> str:
    info = model.info
    parts = [info.variant or info.kind]
    if info.seed is not None:
        parts.append(f"seed{info.seed}")
    return "-".join(parts)


def _users_subset(dataset, max_users: Optional[int]):
    if not max_users:
        return None
    users = pd.unique(dataset.interactions["user_id"])
    return list(users[:max_users])


def _display_truth(truth: dict, history: str) -> dict:
    where = "next" if any(k.startswith("next:") for k in truth) else "current"
    keep = [f"{where}:{f}" for f in DISPLAY_FACTORS] + list(DISPLAY_PERSONA)
    return {k: truth[k] for k in keep if k in truth}


def last_event_features(dataset, table: IntentTable) -> Optional[np.ndarray]:
    """Non-learned reference: one-hot of the observed intent labels of the latest input
    interaction (what a trivial 'same as last time' intent would cluster on)."""
    shares = C.observed_shares(dataset, table.last_rows, table.heads, table.labels, table.kinds, window=1)
    parts = [np.nan_to_num(shares[h]) for h in table.heads if h in shares]
    return np.concatenate(parts, axis=1) if parts else None


def run(args) -> dict:
    import datasets

    from datasets.cli import parse_key_values

    started = time.perf_counter()
    dataset = datasets.resolve(args.dataset, **parse_key_values(args.data_arg))
    print(f"[data] {dataset.name}: {len(dataset.interactions):,} interactions, {dataset.num_users:,} users")
    model = load_intent_model(args.model, dataset=dataset, preprocessor=args.preprocessor)
    print(f"[model] {model.describe()}")
    out_dir = args.out or os.path.join(os.path.dirname(os.path.abspath(model.info.path)), "intents")
    os.makedirs(out_dir, exist_ok=True)
    users = _users_subset(dataset, args.max_users)

    table = collect_intents(model, dataset, args.batch_size, args.history, users, progress=True)
    rep = args.representation or ("z" if model.hierarchical else "hidden")
    x = table.representation(rep)
    main_name = f"{_name(model)} {'Z' if rep == 'z' else rep}"
    assignment, centers, _ = C.kmeans(x, args.k, seed=args.seed, n_init=args.n_init)
    assignment, centers = C.relabel_by_size(assignment, centers)
    k = len(centers)
    titles = getattr(model, "item_titles", {}) or {}
    profiles = C.cluster_profiles(table, assignment, x, centers, dataset=dataset, recent_window=args.recent,
                                  examples=args.examples, titles=titles)
    names = [p.name for p in profiles]

    # ---- quality -------------------------------------------------------------------------
    truth_all = quality.synthetic_truth(dataset, table)
    truth = _display_truth(truth_all, args.history)
    probes = [] if args.no_probe else [t for t in truth if not t.endswith(":joint")]
    reps = {main_name: quality.evaluate_representation(x, k, truth_all, seed=args.seed, assignment=assignment,
                                                       probe_truths=probes)}
    refs = []
    if rep != "alpha" and table.alpha is not None:
        refs.append((f"{_name(model)} α", table.alpha))
    if rep != "probs" and table.probs:
        refs.append((f"{_name(model)} intent probabilities", table.representation("probs")))
    if rep != "hidden" and table.hidden is not None:
        refs.append((f"{_name(model)} item_hidden", table.hidden))
    for path in args.baseline_model:
        base = load_intent_model(path, dataset=dataset)
        bt = collect_intents(base, dataset, args.batch_size, args.history, users)
        _check_same_users(table, bt, path)
        if bt.hidden is None:
            raise SystemExit(f"baseline {path}: no item_hidden output (Keras models only)")
        refs.append((f"{_name(base)} item_hidden (baseline)", bt.hidden))
    lf = last_event_features(dataset, table)
    if lf is not None and truth_all:
        refs.append(("last-event labels (no model)", lf))
    for name, arr in refs:
        reps[name] = quality.evaluate_representation(arr, k, truth_all, seed=args.seed, n_init=args.n_init,
                                                     probe_truths=probes)

    cross = None
    if args.stability_model:
        parts = {main_name: assignment}
        for path in args.stability_model:
            other = load_intent_model(path, dataset=dataset)
            ot = collect_intents(other, dataset, args.batch_size, args.history, users)
            _check_same_users(table, ot, path)
            key = f"{_name(other)} {'Z' if rep == 'z' else rep}"
            while key in parts:  # e.g. two runs with the same variant/seed from different dirs
                key += "'"
            parts[key] = C.kmeans(
                ot.representation(rep), k, seed=args.seed, n_init=args.n_init)[0]
        cross = quality.cross_model_stability(parts)

    notes = _diagnostics(table, reps, main_name, truth)
    notes += _session_diagnostics(dataset, table, reps, truth)
    qual = {"main": main_name, "representations": {n: _display(r, truth) for n, r in reps.items()},
            "cross_model": cross, "notes": notes}
    report.print_console(profiles, table.heads, table.kinds, qual)

    # ---- figures ---------------------------------------------------------------------------
    figures, attention_figs = {}, []
    if not args.no_plots:
        highlight = np.array([int(np.flatnonzero(table.user_ids == ex["user_id"])[0])
                              for p in profiles for ex in p.examples], dtype=np.int64)
        tkey = _tsne_truth_key(reps[main_name], truth)
        figures["tsne"] = os.path.join(out_dir, "tsne.png")
        plots.tsne_scatter(x, assignment, names, figures["tsne"], sample=args.tsne_sample, seed=args.seed,
                           highlight=highlight, truth=truth_all.get(tkey) if tkey else None,
                           truth_title=f"same points coloured by the generator's true {tkey}" if tkey else "",
                           title=f"{main_name}: K-means++ (K={k}) clusters, t-SNE")
        if table.alpha is not None:
            figures["alpha"] = os.path.join(out_dir, "cluster_alpha.png")
            plots.alpha_heatmap(figures["alpha"], names, table.heads,
                                np.array([[p.mean_alpha.get(h, 0.0) for h in table.heads] for p in profiles]),
                                sizes=[p.size for p in profiles])
            attention_figs = _attention_figures(model, dataset, table, assignment, names, out_dir,
                                                args.attention_users, args.user, titles)

    # ---- outputs -----------------------------------------------------------------------------
    pd.DataFrame({"user_id": table.user_ids, "cluster": assignment,
                  "cluster_name": np.asarray(names, dtype=object)[assignment],
                  "primary_intent": table.primary_intent()}).to_csv(os.path.join(out_dir, "clusters.csv"), index=False)
    summary = {
        "model": model.info.path, "dataset": args.dataset, "users": int(len(table)), "history": args.history,
        "representation": main_name, "k": k, "seed": args.seed, "heads": table.heads,
        "clusters": [p.to_dict() for p in profiles],
        "quality": {"main": main_name, "cross_model": cross, "notes": notes,
                    "representations": {n: {kk: vv for kk, vv in r.items() if kk != "assignment"}
                                        for n, r in reps.items()}},
        "figures": {**figures, "attention": [f for _, f in attention_figs]},
    }
    with open(os.path.join(out_dir, "summary.json"), "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=2, default=_json_default)
    info = {"model": model.describe(), "dataset": f"{args.dataset} ({dataset.num_users:,} users)",
            "users analysed": f"{len(table):,} (history: {args.history})", "clustered": main_name,
            "K / seed / restarts": f"{k} / {args.seed} / {args.n_init}",
            "generated": time.strftime("%Y-%m-%d %H:%M:%S")}
    html_path = report.write_html(os.path.join(out_dir, "report.html"), title="IntentRec intent clusters",
                                  summary=info, profiles=profiles, heads=table.heads, kinds=table.kinds,
                                  quality=qual, figures=figures, attention_figures=attention_figs)
    if args.export_parquet or args.export_tfrecord:
        from analysis.export import export_intents

        n = export_intents(model, dataset, args.export_parquet, args.export_tfrecord, batch_size=args.batch_size,
                           history=args.export_history, users=users)
        print(f"[export] {n:,} users → {args.export_parquet or ''} {args.export_tfrecord or ''}")
    print(f"[out] {html_path} ({time.perf_counter() - started:.0f} s)")
    return summary


def _check_same_users(a: IntentTable, b: IntentTable, path: str) -> None:
    if len(a) != len(b) or not np.array_equal(a.user_ids, b.user_ids):
        raise SystemExit(f"{path}: analysed a different set of users than the main model")


def _display(r: dict, truth: dict) -> dict:
    return {**{k: v for k, v in r.items() if k not in ("assignment", "agreement")},
            "agreement": {t: r["agreement"][t] for t in truth if t in r["agreement"]}}


def _tsne_truth_key(main: dict, truth: dict) -> Optional[str]:
    cands = {t: a["nmi"] for t, a in main["agreement"].items()
             if t in truth and not t.endswith(":joint") and not t.startswith("persona:") and a["nmi"] == a["nmi"]}
    return max(cands, key=cands.get) if cands else None


def _diagnostics(table: IntentTable, reps: dict, main: str, truth: dict) -> list[str]:
    """Plain-language findings that qualify the numbers."""
    notes = []
    factors = [t for t in truth if not t.endswith(":joint") and not t.startswith("persona:")]
    if factors:
        def mean_nmi(name):
            return float(np.mean([reps[name]["agreement"][t]["nmi"] for t in factors]))

        m = mean_nmi(main)
        for name in reps:
            if "baseline" not in name:
                continue
            b = mean_nmi(name)
            verdict = ("clearly better" if m >= 1.2 * b and m - b >= 0.02 else
                       "not clearly better" if m >= b else "WORSE")
            notes.append(f"{main} vs {name}: mean NMI over the true latent intent factors "
                         f"{m:.3f} vs {b:.3f} → {verdict}.")
            pm = [reps[main].get("probe", {}).get(t, {}).get("accuracy") for t in factors]
            pb = [reps[name].get("probe", {}).get(t, {}).get("accuracy") for t in factors]
            if all(v is not None for v in pm + pb):
                notes.append(f"linear probe, mean accuracy over the same factors: {main} {np.mean(pm):.3f} vs "
                             f"{name} {np.mean(pb):.3f}.")
    if table.alpha is not None and len(table):
        spread = float(table.alpha.std(axis=0).mean())
        mean = table.alpha.mean(axis=0)
        notes.append("α per head, mean over users: " + ", ".join(f"{h} {v:.2f}" for h, v in zip(table.heads, mean))
                     + f"; mean per-head std across users {spread:.3f}"
                     + (" (α is nearly constant across users: primary intents reflect the global weighting "
                        "more than the user)" if spread < 0.02 else ""))
        prim = pd.Series(table.primary_intent()).value_counts(normalize=True)
        notes.append("primary intent (largest α) shares: " + ", ".join(f"{k} {v:.0%}" for k, v in prim.items()))
    return notes


def _session_diagnostics(dataset, table: IntentTable, reps: dict, truth: dict) -> list[str]:
    """Synthetic data: how much of the next latent intent is knowable at all. A held-out
    next interaction in the same session as the latest input keeps its intent; one that
    starts a new session gets an intent re-drawn from the persona and the (unseen) time
    of that session. Agreement is reported on both parts."""
    latent = getattr(dataset, "latent", None)
    if latent is None or "session_id" not in latent.columns or not (table.next_rows >= 0).all():
        return []
    sess = latent["session_id"].to_numpy()
    same = sess[table.next_rows] == sess[table.last_rows]
    notes = [f"{same.mean():.0%} of the held-out next interactions continue the latest input session (their "
             "latent intent is the current one); the other "
             f"{1 - same.mean():.0%} start a new session whose intent is re-drawn from the persona and the "
             "time of that session, which the history cannot reveal."]
    for t in ("next:action", "next:genre"):
        if t not in truth:
            continue
        parts = []
        for name, r in reps.items():
            a = r["assignment"]
            s_ = quality.agreement(a[same], truth[t][same])["nmi"]
            n_ = quality.agreement(a[~same], truth[t][~same])["nmi"]
            parts.append(f"{name} {s_:.3f} / {n_:.3f}")
        notes.append(f"NMI vs {t}, same-session / new-session users: " + "; ".join(parts) + ".")
    return notes


def _attention_figures(model, dataset, table, assignment, names, out_dir, count, extra_users, titles):
    """Fig. 7: for each head, the user with the largest α on it (distinct users), plus --user ones."""
    chosen = []
    for u in extra_users:
        hit = np.flatnonzero(table.user_ids.astype(str) == str(u))
        if len(hit):
            chosen.append(int(hit[0]))
    order = np.argsort(-table.alpha, axis=0)  # [U, M]
    j = 0
    while len(chosen) < len(extra_users) + count and j < len(table):
        for m in range(len(table.heads)):
            u = int(order[j, m])
            if u not in chosen and len(chosen) < len(extra_users) + count:
                chosen.append(u)
        j += 1
    if not chosen:
        return []
    users = [str(table.user_ids[i]) for i in chosen]
    histories = _histories(dataset, table, chosen, model.max_len)
    rec = model.recommend(histories, k=5)
    detail_heads = [h for h in table.heads if table.kinds.get(h) == "multi"] + \
                   [h for h in table.heads if table.kinds.get(h) != "multi"]
    item_info = _item_info(dataset)
    figs = []
    for b, i in enumerate(chosen):
        pred = {}
        for h in table.heads:
            labs = C.label_list(table.labels[h])
            p = C.predicted_distribution(table.probs[h][i:i + 1], table.kinds.get(h, "single"))[0]
            top = np.argsort(-p, kind="stable")[:2 if table.kinds.get(h) == "multi" else 1]
            pred[h] = ", ".join(f"{labs[t]} ({p[t]:.2f})" for t in top)
        recs = [_item_label(str(it), titles, item_info) for it in rec["top_k_ids"][b]]
        path = os.path.join(out_dir, f"attention_{_safe(users[b])}.png")
        plots.attention_bars(path, users[b], table.heads, table.alpha[i],
                             recent=C.recent_titles(dataset, int(table.last_rows[i]), 6, titles, detail_heads),
                             predicted=pred, recommendations=recs,
                             cluster_name=f"{assignment[i]}: {names[assignment[i]]}")
        figs.append((users[b], path))
    return figs


def _item_info(dataset) -> dict:
    """item id → "genre, type" from the dataset's item table (where it has them)."""
    items = getattr(dataset, "items", None)
    if items is None or "item_id" not in getattr(items, "columns", []):
        return {}
    cols = [c for c in ("genre", "category", "item_type") if c in items.columns]
    if not cols:
        return {}
    text = items[cols].astype(str).agg(", ".join, axis=1)
    return dict(zip(items["item_id"].astype(str), text))


def _item_label(item: str, titles: dict, info: dict) -> str:
    name = titles.get(item) or item
    return f"{name} ({info[item]})" if item in info else name


def _histories(dataset, table, idx, max_len):
    df = dataset.interactions
    out = []
    for i in idx:
        last = int(table.last_rows[i])
        user = df["user_id"].iat[last]
        part = df.iloc[max(0, last - max_len + 1):last + 1]
        out.append(part[part["user_id"] == user])
    return out


def _safe(s: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in s)[:64]


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
