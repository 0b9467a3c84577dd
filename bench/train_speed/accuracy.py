"""`python -m bench.train_speed accuracy`: what each item loss costs in NDCG@10."""

from __future__ import annotations

import argparse
import json
import pathlib

import keras

from datasets.feature_spec import DEFAULT_MAX_LEN
from model import IntentRec, IntentRecConfig


def accuracy_main(argv=None) -> dict:
    """Companion CPU run: NDCG@10 of IntentRec V3 trained with each item loss, side
    by side (same data, seed, epochs). "chunked" must equal "full" (same gradients);
    "sampled" shows what the estimate costs in accuracy.

        python -m bench.train_speed accuracy --dataset synthetic-small --out results/train_speed_accuracy.json
    """
    import datasets

    from model import training

    p = argparse.ArgumentParser(prog="python -m bench.train_speed accuracy")
    p.add_argument("--dataset", default="synthetic-small", help="datasets.resolve alias (synthetic-small, ml-100k)")
    p.add_argument("--modes", default="full,chunked,sampled")
    p.add_argument("--max-len", type=int, default=DEFAULT_MAX_LEN)
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--patience", type=int, default=3)
    p.add_argument("--negatives", type=int, default=256, help="num_sampled_negatives for sampled")
    p.add_argument("--chunk-size", type=int, default=512, help="item_chunk_size for chunked")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="results/train_speed_accuracy.json")
    args = p.parse_args(argv)

    dataset = datasets.resolve(args.dataset)
    encoded = datasets.encode(dataset, max_len=args.max_len)
    out = pathlib.Path(args.out)
    entry = {"command": "python -m bench.train_speed accuracy " + " ".join(argv or []),
             "backend": keras.backend.backend(), "keras": keras.__version__,
             "items": int(encoded.feature_spec.item_vocab_size), "train_users": len(encoded.train),
             "max_len": args.max_len, "epochs": args.epochs, "seed": args.seed, "results": []}
    # One JSON for all datasets: keep the others' entries.
    report = json.loads(out.read_text()) if out.exists() else {}
    previous = report.get("runs", {}).get(args.dataset, {})
    if {k: previous.get(k) for k in ("items", "max_len", "epochs", "seed")} == \
            {k: entry[k] for k in ("items", "max_len", "epochs", "seed")}:
        # Same setting: keep the other losses' rows (a run of some modes only).
        entry["results"] = [r for r in previous.get("results", []) if r["item_loss"] not in args.modes.split(",")]
    report.setdefault("runs", {})[args.dataset] = entry
    for mode in args.modes.split(","):
        config = IntentRecConfig.from_feature_spec(
            encoded.feature_spec, variant="v3", item_loss=mode,
            num_sampled_negatives=args.negatives, item_chunk_size=args.chunk_size,
        )
        cfg = training.TrainConfig(epochs=args.epochs, patience=args.patience, seed=args.seed, verbose=0)
        with training.runtime(cfg):
            keras.utils.set_random_seed(args.seed)
            model = IntentRec(config)
            result = training.fit_and_evaluate(model, encoded, cfg)
        row = {"item_loss": mode, "negatives": args.negatives if mode == "sampled" else None,
               "test_ndcg@10": result["test"]["ndcg@10"], "test_recall@10": result["test"]["recall@10"],
               "val_ndcg@10": result["val"]["ndcg@10"], "best_epoch": result["best_epoch"],
               "epochs_run": result["epochs_run"], "train_seconds": round(result["train_seconds"], 1),
               "val_curve": [h.get("val_ndcg@10") for h in result["history"]]}
        print(f"  {args.dataset} {mode}: test NDCG@10 {row['test_ndcg@10']:.4f} recall@10 {row['test_recall@10']:.4f} "
              f"(best epoch {row['best_epoch']}/{row['epochs_run']}, {row['train_seconds']:.0f} s)", flush=True)
        entry["results"].append(row)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=1))
        keras.backend.clear_session()
    return report
