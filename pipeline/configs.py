"""Pipeline configuration: one typed object that `create_pipeline` turns into a TFX DAG.

Runner files (`pipeline/local_runner.py`, `pipeline/kubeflow_v2_runner.py`) only fill
in paths and orchestrator settings; everything about data, model and evaluation
lives here.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from typing import Any, Dict, List, Optional

from datasets.feature_spec import DEFAULT_MAX_LEN
from model.training import TrainConfig
from serving import contract

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Source files whose content decides Transform/Trainer outputs: their hash is part of
# those components' configuration, so editing the code invalidates the TFX cache
# (the components reference the code by module path, which the cache cannot see).
CODE_FILES = {
    "example_gen": ("components/sequence_example_gen.py", "components/sequence_examples.py", "datasets"),
    "transform": ("pipeline/preprocessing.py", "datasets/schema.py", "datasets/feature_spec.py"),
    "trainer": ("pipeline/trainer.py", "pipeline/transformed_data.py", "pipeline/preprocessing.py", "model",
                "datasets/encoder.py", "pipeline/export.py", "serving/contract.py", "serving/examples.py",
                "serving/warmup.py"),
    "evaluator": ("components/metrics.py",),
}


def code_version(files=None, root: str = REPO_ROOT) -> str:
    """Hash of source files (a CODE_FILES key, a tuple of paths, or None = all)."""
    if files is None:
        files = tuple(p for group in CODE_FILES.values() for p in group)
    elif isinstance(files, str):
        files = CODE_FILES[files]
    h = hashlib.sha256()
    for rel in files:
        path = os.path.join(root, rel)
        paths = []
        if os.path.isdir(path):
            for dirpath, _, names in sorted(os.walk(path)):
                paths += [os.path.join(dirpath, n) for n in sorted(names) if n.endswith(".py")]
        elif os.path.exists(path):
            paths = [path]
        for p in paths:
            h.update(os.path.relpath(p, root).encode())
            with open(p, "rb") as f:
                h.update(f.read())
    return h.hexdigest()[:16]


@dataclasses.dataclass
class DataConfig:
    """Where the interactions come from (see `components.sequence_example_gen`)."""

    input_base: str  # raw files (fingerprinted; read in "shards" mode)
    adapter: str = "synthetic"  # datasets.load name
    adapter_kwargs: Dict[str, Any] = dataclasses.field(default_factory=dict)
    mode: str = "adapter"  # "adapter" (one load) | "shards" (one adapter call per file)
    input_pattern: str = "*"
    path_key: str = "path"  # adapter argument that receives each file in "shards" mode
    # InteractionSchema.to_dict(); None: resolved from the adapter (pipeline.sources).
    interaction_schema: Optional[Dict[str, Any]] = None
    max_train_history: Optional[int] = None  # cap the train sequence (None = whole, as datasets.encoder)


@dataclasses.dataclass
class ValidationConfig:
    """StatisticsGen / SchemaGen / ExampleValidator / DataGate."""

    # A frozen schema (schema.pbtxt). None: SchemaGen infers one from this run's data
    # (then only the train split is validated: eval/test hold the held-out rows).
    schema_path: Optional[str] = None
    # Baseline train statistics (FeatureStats.pb / baseline_stats.pb) for drift checks.
    baseline_statistics_path: Optional[str] = None
    # feature -> threshold (L-infinity for strings, Jensen-Shannon for numbers).
    # None: every categorical column at 0.2 and every numeric column at 0.2.
    drift_thresholds: Optional[Dict[str, float]] = None


@dataclasses.dataclass
class TrainerConfig:
    """What only the TFX Trainer decides. How the model trains is `PipelineConfig.training`,
    `model.training.TrainConfig`: the protocol of `model.train` and `bench.paper_tables`."""

    # tf.distribute strategy: "auto" (MirroredStrategy with several GPUs, OneDeviceStrategy
    # with one, the default strategy on CPU), "mirrored", "one_device" or "default".
    strategy: str = "auto"
    # On a GPU, train under mixed_bfloat16 (compute capability >= 8.0) or mixed_float16
    # when `TrainConfig.mixed_precision` is float32. A CPU trains as model.train does.
    gpu_mixed_precision: bool = True
    # Training data whose dense arrays would take more memory than this streams from
    # Transform's files (tf.data) instead of being loaded and put in the numpy
    # encoder's row order; the validation split is always loaded.
    max_in_memory_mb: int = 4096
    shuffle_buffer: int = 16384  # rows shuffled at a time when streaming


@dataclasses.dataclass
class EvaluationConfig:
    """Evaluator (TFMA) + blessing."""

    metric: str = "recall@10"  # the blessing metric
    # Absolute floor: the candidate must reach it (in addition to not being worse
    # than the last blessed model).
    floor: float = 0.0
    # Allowed drop vs the baseline (absolute); 0 = at least as good.
    max_drop: float = 0.0
    ks: List[int] = dataclasses.field(default_factory=lambda: [1, 10])
    split: str = "test"
    slice_features: List[str] = dataclasses.field(default_factory=lambda: ["history_bucket"])


@dataclasses.dataclass
class PipelineConfig:
    pipeline_name: str
    pipeline_root: str
    serving_root: str
    data: DataConfig
    max_len: int = DEFAULT_MAX_LEN
    top_k: int = 10
    model_name: str = contract.DEFAULT_MODEL_NAME
    derive_time_features: bool = True
    validation: ValidationConfig = dataclasses.field(default_factory=ValidationConfig)
    # `model.IntentRecConfig` overrides (e.g. "variant", "d_model"; "intents": heads to keep).
    hparams: Dict[str, Any] = dataclasses.field(default_factory=dict)
    # The training protocol, model.train's defaults: windows, optimiser, early stopping,
    # and whether (`exclude_seen`) and how (`seen_filter`) rankings skip seen items,
    # which the served ranking and the Evaluator follow too.
    training: TrainConfig = dataclasses.field(default_factory=TrainConfig)
    trainer: TrainerConfig = dataclasses.field(default_factory=TrainerConfig)
    evaluation: EvaluationConfig = dataclasses.field(default_factory=EvaluationConfig)
    item_titles_path: Optional[str] = None
    beam_pipeline_args: List[str] = dataclasses.field(default_factory=lambda: ["--direct_running_mode=in_memory"])
    enable_cache: bool = True
    # None: computed from the code (CODE_FILES); a fixed string pins it.
    code_version: Optional[str] = None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1, sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict) -> "PipelineConfig":
        d = dict(d)
        d["data"] = DataConfig(**d["data"])
        d["validation"] = ValidationConfig(**d.get("validation", {}))
        d["training"] = TrainConfig(**d.get("training", {}))
        d["trainer"] = TrainerConfig(**d.get("trainer", {}))
        d["evaluation"] = EvaluationConfig(**d.get("evaluation", {}))
        return cls(**d)


def direct_runner_args(workers: int = 0) -> List[str]:
    """Beam DirectRunner args: in-memory (workers 0/1) or multi-processing with N workers."""
    if workers and workers > 1:
        return ["--direct_running_mode=multi_processing", f"--direct_num_workers={int(workers)}"]
    return ["--direct_running_mode=in_memory", "--direct_num_workers=1"]


def dataflow_args(project: str, region: str, temp_location: str, *, machine_type: str = "n1-standard-4",
                  max_num_workers: int = 8, sdk_container_image: Optional[str] = None) -> List[str]:
    """Beam args for ExampleGen / StatisticsGen / Transform / Evaluator on Dataflow."""
    args = ["--runner=DataflowRunner", f"--project={project}", f"--region={region}",
            f"--temp_location={temp_location}", f"--machine_type={machine_type}",
            f"--max_num_workers={max_num_workers}", "--experiments=use_runner_v2",
            "--save_main_session=False"]
    if sdk_container_image:
        args.append(f"--sdk_container_image={sdk_container_image}")
    return args
