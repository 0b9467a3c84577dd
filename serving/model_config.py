"""The models to serve: TF Serving's ModelServerConfig, from --model_config_file or flags.

    model_config_list {
      config {
        name: "intentrec"
        base_path: "/models/intentrec"
        model_platform: "tensorflow"
        model_version_policy { specific { versions: 3 versions: 4 } }
        version_labels { key: "stable" value: 3 }
        version_labels { key: "canary" value: 4 }
      }
      config { name: "intentrec_v1" base_path: "/models/intentrec_v1" model_platform: "tensorflow" }
    }

The file is read with protobuf's text_format into
``tensorflow_serving.config.model_server_config_pb2.ModelServerConfig`` and validated as
TF Serving's ServerCore::ReloadConfig validates it. Without a file, --model_name and
--model_base_path make a one-model config (TF Serving's BuildSingleModelConfig), with
our --model_version_policy flag as its policy.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tensorflow_serving.config import model_server_config_pb2

from serving.config_protos import read_text_proto
from serving.versions import VersionPolicy

TENSORFLOW_PLATFORM = "tensorflow"


@dataclass(frozen=True)
class ModelSpec:
    """One model of the config: where its versions are and which of them to serve."""

    name: str
    base_path: str
    policy: VersionPolicy = VersionPolicy()
    labels: dict = field(default_factory=dict, compare=True)  # label -> version


def read_config_file(path: str) -> model_server_config_pb2.ModelServerConfig:
    return read_text_proto(path, model_server_config_pb2.ModelServerConfig)


def single_model_config(name: str, base_path: str) -> model_server_config_pb2.ModelServerConfig:
    config = model_server_config_pb2.ModelServerConfig()
    model = config.model_config_list.config.add()
    model.name, model.base_path, model.model_platform = name, base_path, TENSORFLOW_PLATFORM
    return config


def model_specs(config: model_server_config_pb2.ModelServerConfig,
                policy_override: VersionPolicy | None = None) -> list[ModelSpec]:
    """The config's models; ValueError (with TF Serving's message where it has one) when
    the config cannot be served."""
    which = config.WhichOneof("config")
    if which == "custom_model_config":
        raise ValueError("ModelServer does not yet support custom model config.")
    specs, seen = [], set()
    for model in config.model_config_list.config:
        if not model.name:
            raise ValueError("a model in model_config_list has no name")
        if model.name in seen:
            raise ValueError(f"Illegal to list model {model.name} multiple times in config list")
        seen.add(model.name)
        if not model.base_path:
            raise ValueError(f"model {model.name} has no base_path")
        platform = model.model_platform or TENSORFLOW_PLATFORM
        if platform != TENSORFLOW_PLATFORM:
            raise ValueError(f"Model {model.name} requests unsupported platform {platform}")
        policy = policy_override or VersionPolicy.from_proto(model.model_version_policy)
        specs.append(ModelSpec(model.name, model.base_path, policy, dict(model.version_labels)))
    return specs
