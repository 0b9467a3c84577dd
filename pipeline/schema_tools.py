"""Freeze a run's inferred schema (+ train statistics) for later runs' validation and drift checks.

    python -m pipeline.schema_tools freeze --metadata tfx_root/metadata.sqlite \\
        --pipeline intentrec-movielens --out schemas/movielens
    python -m pipeline.local_runner --dataset movielens --schema-dir schemas/movielens

The frozen schema is curated (`components.data_gate.curate_schema`): ids and slices
get no closed domain, categorical domains tolerate 1% unseen values. Later runs
validate every split against it and compare their train statistics with the frozen
ones (drift), and the DataGate stops the run on any finding.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Dict, Optional


def latest_outputs(metadata_path: str, pipeline_name: str) -> Dict[str, str]:
    """URIs of the latest run's schema and train statistics (and the interaction schema)."""
    from pipeline.run_summary import _prop, latest_run

    run = latest_run(metadata_path, pipeline_name)
    out = {}
    for node, info in run.items():
        outs = info["outputs"]
        if node in ("SchemaGen", "ImportSchemaGen") and outs.get("schema"):
            out["schema_dir"] = outs["schema"][0]["uri"]
        if node == "StatisticsGen" and outs.get("statistics"):
            out["statistics_dir"] = outs["statistics"][0]["uri"]
        if node == "SequenceExampleGen" and outs.get("examples"):
            out["interaction_schema"] = _prop(outs["examples"][0]["artifact"], "interaction_schema", "")
    return out


def freeze(metadata_path: str, pipeline_name: str, out_dir: str) -> Dict[str, str]:
    import tensorflow as tf

    from components.data_gate import freeze_schema

    found = latest_outputs(metadata_path, pipeline_name)
    if "schema_dir" not in found:
        raise SystemExit(f"no schema in the latest run of {pipeline_name!r} ({metadata_path})")
    schema_file = os.path.join(found["schema_dir"], "schema.pbtxt")
    stats_file = None
    if "statistics_dir" in found:
        cand = os.path.join(found["statistics_dir"], "Split-train", "FeatureStats.pb")
        stats_file = cand if tf.io.gfile.exists(cand) else None
    interaction = json.loads(found["interaction_schema"]) if found.get("interaction_schema") else None
    return freeze_schema(schema_file, stats_file, out_dir, interaction)


def main(argv: Optional[list] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("freeze")
    f.add_argument("--metadata", required=True)
    f.add_argument("--pipeline", required=True)
    f.add_argument("--out", required=True)
    args = p.parse_args(argv)
    paths = freeze(args.metadata, args.pipeline, args.out)
    print(json.dumps(paths, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
