"""Kubeflow V2 runner: compiles the pipeline to Vertex AI Pipelines JSON.

    python -m pipeline.kubeflow_v2_runner --project my-proj --region us-central1 \\
        --bucket gs://my-bucket --image us-docker.pkg.dev/my-proj/intentrec/pipeline:latest \\
        --output intentrec_vertex.json

Only paths and orchestrator settings are decided here:
- every component runs in the image built from `Dockerfile` (TFX 1.16 + this repo);
- the Beam components (ExampleGen, StatisticsGen, Transform, Evaluator) run on
  Dataflow (`pipeline.configs.dataflow_args`);
- the Trainer asks for a GPU (`--gpu-type`, `--gpu-count`) through a Vertex ResourceSpec.

Compiling is offline. Submitting (docs/pipeline.md)::

    from google.cloud import aiplatform
    aiplatform.init(project=PROJECT, location=REGION)
    aiplatform.PipelineJob(display_name="intentrec", template_path="intentrec_vertex.json",
                           pipeline_root=f"{BUCKET}/tfx_root", enable_caching=True).submit()
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Optional

from datasets.feature_spec import DEFAULT_MAX_LEN
from model.train import parse_overrides
from model.training import TrainConfig
from pipeline import configs
from pipeline.configs import PipelineConfig


def trainer_resources(gpu_type: str = "NVIDIA_TESLA_T4", gpu_count: int = 1, cpu: float = 8.0,
                      memory_gb: float = 32.0):
    """Vertex ResourceSpec for the Trainer container."""
    from kfp.pipeline_spec import pipeline_spec_pb2

    spec = pipeline_spec_pb2.PipelineDeploymentConfig.PipelineContainerSpec.ResourceSpec(
        cpu_limit=cpu, memory_limit=memory_gb)
    if gpu_count:
        spec.accelerator.type = gpu_type
        spec.accelerator.count = gpu_count
    return spec


def compile_pipeline(config: PipelineConfig, image: str, output_path: str, *,
                     beam_pipeline_args: Optional[list] = None, gpu_type: str = "NVIDIA_TESLA_T4",
                     gpu_count: int = 1) -> str:
    """Writes the Vertex AI Pipelines JSON; returns its path."""
    from tfx.orchestration.kubeflow.v2 import kubeflow_v2_dag_runner

    from pipeline.pipeline import create_pipeline

    pipe = create_pipeline(config, metadata_connection_config=None, beam_pipeline_args=beam_pipeline_args,
                           trainer_platform_config=trainer_resources(gpu_type, gpu_count),
                           baseline="latest_blessed")
    runner = kubeflow_v2_dag_runner.KubeflowV2DagRunner(
        config=kubeflow_v2_dag_runner.KubeflowV2DagRunnerConfig(default_image=image),
        output_dir=os.path.dirname(os.path.abspath(output_path)),
        output_filename=os.path.basename(output_path))
    runner.run(pipe, write_out=True)
    return output_path


def build_config(args) -> PipelineConfig:
    from pipeline import sources

    bucket = args.bucket.rstrip("/")
    if args.dataset == "movielens":
        data = sources.movielens_source(args.data_path)
    else:
        kwargs = json.loads(args.adapter_kwargs) if args.adapter_kwargs else {}
        if not kwargs.get("columns"):
            raise SystemExit("--dataset shards needs --adapter-kwargs with the generic adapter's column "
                             "mapping, e.g. '{\"columns\": {\"user\": \"uid\", \"item\": \"sku\", "
                             "\"timestamp\": \"ts\"}, \"categorical\": [...], \"intents\": [...]}'")
        data = configs.DataConfig(input_base=args.data_path, adapter=args.adapter, adapter_kwargs=kwargs,
                                  mode="shards", input_pattern=args.input_pattern)
    name = args.pipeline_name
    return PipelineConfig(
        pipeline_name=name,
        pipeline_root=f"{bucket}/tfx_root/{name}",
        serving_root=f"{bucket}/serving",
        data=data,
        max_len=args.max_len,
        training=TrainConfig(**parse_overrides(args.train, TrainConfig)),
        trainer=configs.TrainerConfig(**parse_overrides(args.trainer, configs.TrainerConfig)),
        evaluation=configs.EvaluationConfig(floor=args.floor),
        beam_pipeline_args=configs.dataflow_args(args.project, args.region, f"{bucket}/tmp",
                                                 sdk_container_image=args.image),
        # On Vertex the code version is the image's; pin it so that compiling needs no checkout.
        code_version=args.code_version)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--project", required=True)
    p.add_argument("--region", default="us-central1")
    p.add_argument("--bucket", required=True, help="gs://bucket (pipeline root, serving root, temp)")
    p.add_argument("--image", required=True, help="container image built from ./Dockerfile")
    p.add_argument("--dataset", default="movielens", choices=["movielens", "shards"])
    p.add_argument("--data-path", default="gs://my-bucket/data/ml-100k")
    p.add_argument("--adapter", default="generic")
    p.add_argument("--input-pattern", default="*.csv")
    p.add_argument("--adapter-kwargs", default=None, help="JSON arguments of the adapter (shards mode)")
    p.add_argument("--pipeline-name", default="intentrec-vertex")
    p.add_argument("--max-len", type=int, default=DEFAULT_MAX_LEN)
    p.add_argument("--train", action="append", default=[], metavar="KEY=VALUE",
                   help="model.training.TrainConfig override (the protocol of model.train), e.g. epochs=30")
    p.add_argument("--trainer", action="append", default=[], metavar="KEY=VALUE",
                   help="pipeline.configs.TrainerConfig override (TFX only), e.g. max_in_memory_mb=16384")
    p.add_argument("--floor", type=float, default=0.0)
    p.add_argument("--gpu-type", default="NVIDIA_TESLA_T4")
    p.add_argument("--gpu-count", type=int, default=1)
    p.add_argument("--code-version", default=None)
    p.add_argument("--output", default="intentrec_vertex.json")
    args = p.parse_args(argv)
    config = build_config(args)
    path = compile_pipeline(config, args.image, args.output, gpu_type=args.gpu_type, gpu_count=args.gpu_count)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
