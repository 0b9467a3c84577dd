"""The Kubeflow V2 runner compiles Vertex AI Pipelines JSON offline."""

import json

import pytest

from pipeline import configs, kubeflow_v2_runner
from pipeline.configs import PipelineConfig

pytestmark = pytest.mark.timeout(900)


def test_vertex_json_compiles_with_gpu_trainer_and_dataflow(tmp_path):
    config = PipelineConfig(
        pipeline_name="intentrec-vertex",
        pipeline_root="gs://bucket/tfx_root/intentrec-vertex",
        serving_root="gs://bucket/serving",
        data=configs.DataConfig(input_base="gs://bucket/data/ml-100k", adapter="movielens",
                                adapter_kwargs={"path": "gs://bucket/data/ml-100k"}),
        beam_pipeline_args=configs.dataflow_args("proj", "us-central1", "gs://bucket/tmp",
                                                 sdk_container_image="gcr.io/proj/intentrec:1"),
        code_version="v1",
    )
    out = tmp_path / "vertex.json"
    kubeflow_v2_runner.compile_pipeline(config, "gcr.io/proj/intentrec:1", str(out), gpu_type="NVIDIA_TESLA_T4",
                                        gpu_count=1)
    doc = json.loads(out.read_text())
    spec = doc.get("pipelineSpec", doc)
    executors = spec["deploymentSpec"]["executors"]
    tasks = spec["root"]["dag"]["tasks"]
    assert {"SequenceExampleGen", "StatisticsGen", "DataGate", "Transform", "Trainer", "Evaluator",
            "Pusher"} <= set(tasks)
    trainer = next(v for k, v in executors.items() if "Trainer" in k)
    res = trainer["container"]["resources"]
    assert res["accelerator"]["type"] == "NVIDIA_TESLA_T4" and int(res["accelerator"]["count"]) == 1
    assert trainer["container"]["image"] == "gcr.io/proj/intentrec:1"
    transform = next(v for k, v in executors.items() if "Transform" in k)
    assert "--runner=DataflowRunner" in transform["container"]["args"]
    example_gen = next(v for k, v in executors.items() if "SequenceExampleGen" in k)
    assert "sequence_example_gen.Executor" in json.dumps(example_gen)
