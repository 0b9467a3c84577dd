"""Wall time of the local TFX pipeline, per component.

    python -m bench.pipeline                       # ml-100k, then a ~1M-interaction synthetic log
    python -m bench.pipeline --only ml100k
    python -m bench.pipeline --only synthetic --synthetic-users 25000 --workers 2

Each case runs the whole pipeline from scratch (fresh pipeline root and MLMD under
--root, nothing cached) with LocalDagRunner + Beam DirectRunner, and reports the wall
time of every component (ExampleGen -> Pusher), rows in / rejected, the evaluation
metrics and whether the model was blessed. ml-100k is read in place from
/work/shared/data/ml-100k (never copied). The synthetic log is written as sharded
canonical CSV files and read by the generic adapter, one Beam element per file, with
DirectRunner in multi-processing mode (`--workers`).

Results go to --out (JSON) and a table on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time

ML100K = "/work/shared/data/ml-100k"


def _config(name, root, data, args, *, epochs, batch_size, workers, titles=None):
    from model.training import TrainConfig
    from pipeline import configs

    hparams = json.loads(args.hparams)
    return configs.PipelineConfig(
        pipeline_name=name,
        pipeline_root=os.path.join(root, "pipelines", name),
        serving_root=os.path.join(root, "serving"),
        data=data,
        max_len=args.max_len,
        top_k=10,
        hparams=hparams,
        training=TrainConfig(epochs=epochs, batch_size=batch_size, learning_rate=args.learning_rate),
        evaluation=configs.EvaluationConfig(floor=0.0),
        beam_pipeline_args=configs.direct_runner_args(workers),
        item_titles_path=titles,
        enable_cache=False,
    )


def run_case(config, root):
    from pipeline.local_runner import run_local

    t0 = time.time()
    summary = run_local(config, os.path.join(root, "metadata.sqlite"), quiet=False, demo=True)
    summary["pipeline_seconds"] = summary.get("wall_seconds")  # LocalDagRunner.run only
    summary["wall_seconds"] = round(time.time() - t0, 1)  # + building the pipeline and the demo
    return summary


def bench_ml100k(args, root):
    import datasets
    from pipeline import sources

    data = sources.movielens_source(args.data_path)
    titles = sources.write_item_titles(datasets.load("movielens", path=args.data_path),
                                       os.path.join(root, "titles.json"))
    config = _config("bench-ml100k", root, data, args, epochs=args.ml_epochs, batch_size=128, workers=0,
                     titles=titles)
    return run_case(config, root)


def bench_synthetic(args, root):
    import datasets
    from pipeline import sources

    t0 = time.time()
    ds = datasets.load("synthetic", num_users=args.synthetic_users, seed=0,
                       interactions_per_user=args.interactions_per_user)
    data = sources.write_sharded_log(ds, os.path.join(root, "shards"), num_shards=args.shards)
    titles = sources.write_item_titles(ds, os.path.join(root, "titles.json"))
    prep = time.time() - t0
    print(f"synthetic log: {len(ds):,} interactions, {ds.num_users:,} users, {ds.num_items:,} items, "
          f"{args.shards} CSV shards ({prep:.1f}s to generate and write)", flush=True)
    config = _config("bench-synthetic", root, data, args, epochs=args.synthetic_epochs, batch_size=256,
                     workers=args.workers, titles=titles)
    summary = run_case(config, root)
    summary["interactions"] = len(ds)
    summary["data_prep_seconds"] = round(prep, 1)
    return summary


def table(results) -> str:
    nodes = ["SequenceExampleGen", "StatisticsGen", "SchemaGen", "ExampleValidator", "DataGate", "Transform",
             "Trainer", "latest_blessed_model_resolver", "Evaluator", "Pusher"]
    names = list(results)
    lines = [f"{'component':<32}" + "".join(f"{n:>14}" for n in names)]
    for node in nodes:
        row = f"{node:<32}"
        for n in names:
            c = results[n].get("components", {}).get(node, {})
            row += f"{c.get('seconds', float('nan')):>13.1f}s"
        lines.append(row)
    lines.append(f"{'wall (whole run)':<32}" + "".join(f"{results[n].get('wall_seconds', 0):>13.1f}s"
                                                        for n in names))
    for n in names:
        r = results[n]
        overall = r.get("metrics", {}).get("overall", {})
        lines.append(f"{n}: rows {r.get('rows', {}).get('rows_read', 0):,} read / "
                     f"{r.get('rows', {}).get('rows_rejected', 0):,} rejected; "
                     f"recall@10 {overall.get('recall@10', float('nan')):.4f}, "
                     f"ndcg@10 {overall.get('ndcg@10', float('nan')):.4f}; blessed {r.get('blessed')}; "
                     f"pushed {r.get('push_path')}")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", choices=["ml100k", "synthetic"], default=None)
    p.add_argument("--root", default="runs/bench/pipeline")
    p.add_argument("--out", default="results/pipeline_bench.json")
    p.add_argument("--data-path", default=ML100K)
    p.add_argument("--max-len", type=int, default=50)
    p.add_argument("--hparams", default='{"variant": "v3"}', help="model.IntentRecConfig overrides (JSON)")
    p.add_argument("--learning-rate", type=float, default=1e-3)
    p.add_argument("--ml-epochs", type=int, default=8)
    p.add_argument("--synthetic-users", type=int, default=25000)
    p.add_argument("--interactions-per-user", type=float, default=40.0)
    p.add_argument("--synthetic-epochs", type=int, default=1)
    p.add_argument("--shards", type=int, default=8)
    p.add_argument("--workers", type=int, default=2, help="DirectRunner multi-processing workers (synthetic)")
    args = p.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow is imported

    results = {}
    cases = [("ml100k", bench_ml100k), ("synthetic", bench_synthetic)]
    for name, fn in cases:
        if args.only and args.only != name:
            continue
        root = os.path.abspath(os.path.join(args.root, name))
        shutil.rmtree(root, ignore_errors=True)
        os.makedirs(root)
        print(f"=== {name} (root {root}) ===", flush=True)
        summary = fn(args, root)
        results[name] = {k: v for k, v in summary.items() if k != "demo"}
        results[name]["demo"] = summary.get("demo")
    env = {"cpus": os.cpu_count(), "platform": platform.platform(), "python": sys.version.split()[0],
           "load_average_at_end": os.getloadavg()}
    for r in results.values():
        r["env"], r["args"] = env, vars(args)
    doc = {"results": {}}
    if args.only and os.path.exists(args.out):  # keep the other case's last results
        with open(args.out) as f:
            doc = json.load(f)
        old_env, old_args = doc.pop("env", None), doc.pop("args", None)
        for r in doc.get("results", {}).values():
            r.setdefault("env", old_env)
            r.setdefault("args", old_args)
    doc["results"].update(results)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(doc, f, indent=1, default=str)
    print(table(results))
    print(f"load average at the end: {env['load_average_at_end']} on {env['cpus']} CPUs; written {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
