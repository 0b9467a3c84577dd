"""Local runner: LocalDagRunner + Beam DirectRunner + SQLite MLMD.

    python -m pipeline.local_runner                                 # synthetic data (default)
    python -m pipeline.local_runner --dataset movielens --data-path /work/shared/data/ml-100k
    python -m pipeline.local_runner --dataset movielens --direct-workers 2   # Beam multi-processing
    python -m pipeline.local_runner --train epochs=5 --train batch_size=64  # model.training.TrainConfig overrides

Only paths and orchestrator settings are decided here; the DAG is
`pipeline.pipeline.create_pipeline`. Re-running with nothing changed reuses every
component from the MLMD cache; a run killed mid-way completes when started again.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

# TensorFlow's C++ start-up log is noise unless --verbose; it must be muted before
# TensorFlow is imported, which the training config below does.
if __name__ == "__main__" and "--verbose" not in sys.argv:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from datasets.feature_spec import DEFAULT_MAX_LEN
from model.train import parse_overrides
from model.training import TrainConfig
from pipeline import configs
from pipeline.configs import PipelineConfig, TrainerConfig

DEFAULT_ROOT = "tfx_root"
DEFAULT_MOVIELENS = "/work/shared/data/ml-100k"
MOVIELENS_ALIASES = ("ml-100k", "ml-1m", "ml-10m", "ml-20m", "ml-25m")
DEFAULT_SERVING_ROOT = "serving_root"
NUM_COMPONENTS = 10


def metadata_config(metadata_path: str):
    from tfx.orchestration import metadata

    os.makedirs(os.path.dirname(os.path.abspath(metadata_path)), exist_ok=True)
    return metadata.sqlite_metadata_connection_config(metadata_path)


def run_local(config: PipelineConfig, metadata_path: str, *, quiet: bool = False, demo: bool = True,
              verbose: bool = False) -> dict:
    """Runs the pipeline locally; returns the summary (see pipeline.run_summary).

    quiet: no progress lines / summary printed; verbose: every component's INFO log.
    Raises `components.data_gate.DataAnomaliesError` (the readable report) when the
    data breaks the schema or drifts; nothing after the DataGate runs then.
    """
    from tfx.orchestration.local.local_dag_runner import LocalDagRunner

    from pipeline import run_summary
    from pipeline.pipeline import create_pipeline

    pipe = create_pipeline(config, metadata_connection_config=metadata_config(metadata_path))
    handler = None if quiet else run_summary.install_progress(NUM_COMPONENTS, verbose=verbose)
    t0 = time.time()
    try:
        LocalDagRunner().run(pipe)
    finally:
        if handler is not None:
            run_summary.remove_progress(handler)
    wall = time.time() - t0
    summary = run_summary.summarize(metadata_path, config.pipeline_name,
                                    timings=handler.timings if handler else None)
    summary["wall_seconds"] = round(wall, 1)
    if not quiet:
        print(run_summary.format_summary(summary))
        print(f"wall time: {wall:.1f}s")
    if demo:
        # The model this run pushed (or, when this run blessed nothing, the newest
        # version already being served).
        version_dir = summary["push_path"] if summary.get("pushed") else None
        version_dir = version_dir or run_summary.latest_version_dir(config.serving_root, config.model_name)
        if version_dir and os.path.isdir(version_dir):
            text = run_summary.demo_recommendation(version_dir)
            if not summary.get("pushed"):
                text = "(nothing pushed by this run) " + text
            summary["demo"] = text
            if not quiet:
                print(text)
        elif not quiet:
            print(f"no model under {os.path.join(config.serving_root, config.model_name)}: nothing to recommend from")
    return summary


def _registry():
    from datasets import registry

    return registry


def build_config(args) -> PipelineConfig:
    from pipeline import sources

    root = os.path.abspath(args.root)
    import datasets

    titles = os.path.join(root, "data", f"titles-{args.dataset}.json")
    if args.dataset == "synthetic":
        data = sources.synthetic_source(os.path.join(root, "data", "synthetic"), num_users=args.num_users,
                                        seed=args.seed)
        sources.write_item_titles(datasets.load("synthetic", num_users=args.num_users, seed=args.seed), titles)
    elif args.dataset == "movielens":
        path = os.path.abspath(args.data_path or DEFAULT_MOVIELENS)
        data = sources.movielens_source(path)
        sources.write_item_titles(datasets.load("movielens", path=path), titles)
    elif args.dataset in MOVIELENS_ALIASES:
        path = os.path.abspath(args.data_path or os.path.join(_registry().data_dir(), args.dataset))
        data = sources.movielens_source(path)
        sources.write_item_titles(datasets.load("movielens", path=path), titles)
    elif ":" in args.dataset:
        # <adapter>:<path>, e.g. sequences:/data/seqs.txt or generic:/data/log.parquet
        # (generic needs --adapter-kwargs with its column mapping).
        adapter, path = args.dataset.split(":", 1)
        path = os.path.abspath(path)
        kwargs = {**(json.loads(args.adapter_kwargs) if args.adapter_kwargs else {}), "path": path}
        ds = datasets.load(adapter, **kwargs)
        is_dir = os.path.isdir(path)
        data = configs.DataConfig(input_base=path if is_dir else os.path.dirname(path), adapter=adapter,
                                  adapter_kwargs=kwargs, mode="adapter",
                                  input_pattern="*" if is_dir else os.path.basename(path),
                                  interaction_schema=ds.schema.to_dict())
        titles = os.path.join(root, "data", f"titles-{adapter}.json")
        sources.write_item_titles(ds, titles)
    elif args.dataset == "csv-shards":
        ds = datasets.load("synthetic", num_users=args.num_users, seed=args.seed)
        data = sources.write_sharded_log(ds, os.path.join(root, "data", f"shards-{args.num_users}"),
                                         num_shards=args.shards)
        sources.write_item_titles(ds, titles)
    else:
        raise SystemExit(f"unknown dataset {args.dataset!r} (see --help)")
    validation = configs.ValidationConfig()
    if args.schema_dir:
        validation.schema_path = os.path.join(args.schema_dir, "schema.pbtxt")
        stats = os.path.join(args.schema_dir, "baseline_stats.pb")
        validation.baseline_statistics_path = stats if os.path.exists(stats) else None
    name = args.pipeline_name or "intentrec-" + "".join(
        c if c.isalnum() or c in "-_" else "-" for c in args.dataset.split(":", 1)[0])
    return PipelineConfig(
        pipeline_name=name,
        pipeline_root=os.path.join(root, "pipelines", name),
        serving_root=os.path.abspath(args.serving_root),
        data=data, max_len=args.max_len, top_k=args.top_k, validation=validation,
        hparams=json.loads(args.hparams) if args.hparams else {},
        training=TrainConfig(**parse_overrides(args.train, TrainConfig)),
        trainer=TrainerConfig(**parse_overrides(args.trainer, TrainerConfig)),
        evaluation=configs.EvaluationConfig(floor=args.floor),
        item_titles_path=titles,
        beam_pipeline_args=configs.direct_runner_args(args.direct_workers),
        enable_cache=not args.no_cache)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="synthetic",
                   help="synthetic (generated, --num-users) | movielens (--data-path) | ml-100k, ml-1m, ... "
                        "(MovieLens under $INTENTREC_DATA_DIR) | csv-shards (synthetic log as CSV shards, "
                        "generic adapter) | <adapter>:<path> (any datasets adapter, e.g. "
                        "sequences:/data/seqs.txt; --adapter-kwargs for its other arguments)")
    p.add_argument("--data-path", default=None, help=f"MovieLens directory (default {DEFAULT_MOVIELENS})")
    p.add_argument("--adapter-kwargs", default=None, help="JSON arguments of the adapter (<adapter>:<path>)")
    p.add_argument("--num-users", type=int, default=300)
    p.add_argument("--shards", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--root", default=DEFAULT_ROOT, help="pipeline root + metadata.sqlite live here")
    p.add_argument("--serving-root", default=DEFAULT_SERVING_ROOT)
    p.add_argument("--pipeline-name", default=None)
    p.add_argument("--max-len", type=int, default=DEFAULT_MAX_LEN)
    p.add_argument("--top-k", type=int, default=PipelineConfig.top_k)
    p.add_argument("--hparams", default="{}",
                   help="JSON of model.IntentRecConfig overrides (default: none, the one default configuration "
                        "that model.train and bench.paper_tables use too)")
    p.add_argument("--train", action="append", default=[], metavar="KEY=VALUE",
                   help="model.training.TrainConfig override (the protocol of model.train), e.g. epochs=5")
    p.add_argument("--trainer", action="append", default=[], metavar="KEY=VALUE",
                   help="pipeline.configs.TrainerConfig override (TFX only), e.g. strategy=mirrored")
    p.add_argument("--floor", type=float, default=0.0, help="absolute floor of recall@10 for blessing")
    p.add_argument("--schema-dir", default=None, help="frozen schema.pbtxt (+ baseline_stats.pb) directory")
    p.add_argument("--direct-workers", type=int, default=0,
                   help="Beam DirectRunner multi_processing workers (0: in-memory)")
    p.add_argument("--no-cache", action="store_true")
    p.add_argument("--verbose", action="store_true", help="show every component's INFO log")
    p.add_argument("--config-json", default=None,
                   help="a PipelineConfig as JSON (overrides every data/model flag); --root still "
                        "places metadata.sqlite")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.config_json:
        with open(args.config_json) as f:
            config = PipelineConfig.from_dict(json.load(f))
    else:
        config = build_config(args)
    metadata_path = os.path.join(os.path.abspath(args.root), "metadata.sqlite")
    print(f"pipeline {config.pipeline_name}: root {config.pipeline_root}, metadata {metadata_path}, "
          f"serving {config.serving_root}", flush=True)
    from components.data_gate import DataAnomaliesError

    try:
        run_local(config, metadata_path, verbose=args.verbose)
    except DataAnomaliesError as e:
        print(f"\nThe run stopped at the DataGate:\n{e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
