"""The IntentRec TFX pipeline: one typed `create_pipeline(...)` for every orchestrator.

DAG::

    SequenceExampleGen ─▶ StatisticsGen ─▶ SchemaGen | ImportSchemaGen ─▶ ExampleValidator
            │                   │                      │                      │
            │                   └──────────────┬───────┴──────────────────────┘
            │                                  ▼
            │                              DataGate  (raises on anomalies / drift)
            │                                  │ gated_schema
            ├──────────────────────────▶ Transform ─▶ Trainer ─▶ Evaluator ◀─ latest blessed model
            └──────────────────────────────────────────────────────▲  │
                                                   (test split, raw)  ▼
                                                                    Pusher ─▶ <serving_root>/<model>/<version>/
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import List, Optional

import tensorflow_model_analysis as tfma
from tfx.components.evaluator.component import Evaluator
from tfx.components.example_validator.component import ExampleValidator
from tfx.components.pusher.component import Pusher
from tfx.components.schema_gen.component import SchemaGen
from tfx.components.schema_gen.import_schema_gen.component import ImportSchemaGen
from tfx.components.statistics_gen.component import StatisticsGen
from tfx.components.trainer.component import Trainer
from tfx.components.transform.component import Transform
from tfx.dsl.components.common.resolver import Resolver
from tfx.dsl.input_resolution.strategies.latest_blessed_model_strategy import LatestBlessedModelStrategy
from tfx.orchestration import pipeline as tfx_pipeline
from tfx.proto import pusher_pb2, trainer_pb2, transform_pb2
from tfx.types import Channel, standard_artifacts

from components import metrics as intentrec_metrics
from components.data_gate import DataGate
from components.resolvers import LatestBlessedOtherModelStrategy
from components.sequence_example_gen import SequenceExampleGen
from pipeline import configs
from pipeline.configs import PipelineConfig
from pipeline.preprocessing import PreprocessingConfig
from pipeline.sources import resolve_interaction_schema

TRANSFORM_SPLITS = ["train", "eval"]


def _drift_thresholds(cfg: PipelineConfig, schema: dict) -> dict:
    if cfg.validation.drift_thresholds is not None:
        return dict(cfg.validation.drift_thresholds)
    out = {c: 0.2 for c in (*schema.get("categorical", ()), *schema.get("multi_label", ()))}
    out.update({c: 0.2 for c in schema.get("numeric", ())})
    return out


def model_intent_heads(schema: dict, cfg: PipelineConfig):
    """The intent heads the Trainer's model will have: the model config decides (a V0 has
    none, `hparams["intents"]` keeps a subset), read before Transform has counted the
    vocabularies, whose sizes do not matter here."""
    from collections import defaultdict

    from datasets.feature_spec import FeatureSpec, derived_time_features
    from datasets.schema import NUM_RESERVED_IDS, InteractionSchema
    from model.config import IntentRecConfig

    interaction_schema = InteractionSchema.from_dict(schema)
    spec = FeatureSpec.build(interaction_schema, cfg.max_len, defaultdict(lambda: NUM_RESERVED_IDS),
                             derived_time_features(interaction_schema, cfg.derive_time_features))
    hparams = dict(cfg.hparams)
    model_cfg = IntentRecConfig.from_feature_spec(spec, intents=hparams.pop("intents", None), **hparams)
    return model_cfg.intents if model_cfg.use_intents else ()


def eval_config(cfg: PipelineConfig, schema: dict, code_version: str = "") -> tfma.EvalConfig:
    """TFMA: IntentRec metrics overall and per history-length bucket; blessing on one metric."""
    heads = {h.name: h.kind for h in model_intent_heads(schema, cfg)}
    ev = cfg.evaluation
    ks = sorted({int(k) for k in ev.ks if int(k) <= cfg.top_k} | {cfg.top_k})
    threshold = tfma.MetricThreshold(
        value_threshold=tfma.GenericValueThreshold(lower_bound={"value": float(ev.floor)}),
        change_threshold=tfma.GenericChangeThreshold(
            direction=tfma.MetricDirection.HIGHER_IS_BETTER,
            absolute={"value": -float(ev.max_drop) - 1e-9}))
    return tfma.EvalConfig(
        model_specs=[tfma.ModelSpec(signature_name="serving_default",
                                    preprocessing_function_names=["transform_features"])],
        slicing_specs=[tfma.SlicingSpec()] + [tfma.SlicingSpec(feature_keys=[f]) for f in ev.slice_features],
        metrics_specs=[tfma.MetricsSpec(
            metrics=[intentrec_metrics.metric_config(ks, heads, code_version=code_version)],
            # Blessing looks at the overall slice only (small slices are reported, not gated).
            per_slice_thresholds={ev.metric: tfma.PerSliceMetricThresholds(thresholds=[
                tfma.PerSliceMetricThreshold(slicing_specs=[tfma.SlicingSpec()], threshold=threshold)])})])


def create_pipeline(
    config: PipelineConfig,
    *,
    metadata_connection_config=None,
    beam_pipeline_args: Optional[List[str]] = None,
    trainer_platform_config=None,
    baseline: str = "latest_blessed_other",
) -> tfx_pipeline.Pipeline:
    """The IntentRec TFX pipeline.

    Args:
        config: everything about data, model, evaluation (pipeline.configs).
        metadata_connection_config: MLMD connection (local: SQLite; Vertex: None).
        beam_pipeline_args: overrides `config.beam_pipeline_args` (DirectRunner /
            multi-processing / Dataflow) for the Beam components.
        trainer_platform_config: orchestrator-specific resources for the Trainer
            (e.g. a Vertex ResourceSpec with a GPU).
        baseline: "latest_blessed_other" (the latest blessed model that is not the
            candidate; an unchanged re-run is then fully cached) or "latest_blessed"
            (TFX's stock strategy; the only one Kubeflow V2 compiles).
    """
    schema = resolve_interaction_schema(config.data)
    pp_cfg = PreprocessingConfig(schema=schema, max_len=config.max_len,
                                 derive_time_features=config.derive_time_features)
    def code_version(part: str) -> str:
        return config.code_version or configs.code_version(part)

    source = {"mode": config.data.mode, "adapter": config.data.adapter,
              "adapter_kwargs": config.data.adapter_kwargs, "schema": schema, "max_len": config.max_len,
              "max_train_history": config.data.max_train_history, "path_key": config.data.path_key,
              "train_windows": config.training.train_windows,
              # The ExampleGen's own code (and the adapters') is part of its cache key.
              "code_version": code_version("example_gen")}

    # Interaction logs -> one leave-one-out tf.Example per user and split (+ rejected rows).
    example_gen = SequenceExampleGen(input_base=config.data.input_base, source=source,
                                     input_pattern=config.data.input_pattern)

    # Per-split feature statistics of the raw examples.
    statistics_gen = StatisticsGen(examples=example_gen.outputs["examples"])

    # The raw-example schema: frozen (curated) when given, else inferred from this run.
    if config.validation.schema_path:
        schema_gen = ImportSchemaGen(schema_file=config.validation.schema_path)
        validate_splits_excluded = []
    else:
        schema_gen = SchemaGen(statistics=statistics_gen.outputs["statistics"], infer_feature_shape=False,
                               exclude_splits=["eval", "test"])
        validate_splits_excluded = ["eval", "test"]  # they hold rows the inferred schema never saw

    # Statistics vs schema -> anomalies (recorded, not enforced).
    example_validator = ExampleValidator(statistics=statistics_gen.outputs["statistics"],
                                         schema=schema_gen.outputs["schema"],
                                         exclude_splits=validate_splits_excluded)

    # Enforces: anomalies or drift raise a readable report; passes the schema on otherwise.
    data_gate = DataGate(
        statistics=statistics_gen.outputs["statistics"], schema=schema_gen.outputs["schema"],
        anomalies=example_validator.outputs["anomalies"],
        baseline_statistics_path=config.validation.baseline_statistics_path or "",
        drift_thresholds_json=json.dumps(_drift_thresholds(config, schema), sort_keys=True))

    # Vocabularies, z-scores, time features, windows, targets, weights (same graph at serving).
    transform = Transform(
        examples=example_gen.outputs["examples"], schema=data_gate.outputs["gated_schema"],
        preprocessing_fn="pipeline.preprocessing.preprocessing_fn",
        custom_config={**pp_cfg.to_custom_config(), "code_version": code_version("transform")},
        splits_config=transform_pb2.SplitsConfig(analyze=["train"], transform=TRANSFORM_SPLITS),
        # StatisticsGen already describes the raw data; post-transform statistics over
        # [n, G] multi-hots cost more than the whole transform on a laptop.
        disable_statistics=True,
        # One span per run here: the analyzer cache only adds Beam stages.
        disable_analyzer_cache=True)

    # Keras 3 IntentRec trained by model.training on the transformed data (early stopping on
    # the eval split); exports ONE serving SavedModel.
    trainer = Trainer(
        run_fn="pipeline.trainer.run_fn",
        examples=transform.outputs["transformed_examples"],
        transform_graph=transform.outputs["transform_graph"],
        schema=data_gate.outputs["gated_schema"],
        train_args=trainer_pb2.TrainArgs(splits=["train"]),
        eval_args=trainer_pb2.EvalArgs(splits=["eval"]),
        custom_config={**pp_cfg.to_custom_config(), "hparams": config.hparams,
                       "training": dataclasses.asdict(config.training),
                       "trainer": dataclasses.asdict(config.trainer), "top_k": config.top_k,
                       "model_name": config.model_name, "item_titles_path": config.item_titles_path or "",
                       "code_version": code_version("trainer")})
    if trainer_platform_config is not None:
        trainer.with_platform_config(trainer_platform_config)

    # The last blessed model (baseline for the change threshold); none on the first run.
    if baseline == "latest_blessed_other":
        model_resolver = Resolver(
            strategy_class=LatestBlessedOtherModelStrategy,
            model=Channel(type=standard_artifacts.Model),
            model_blessing=Channel(type=standard_artifacts.ModelBlessing),
            candidate=trainer.outputs["model"]).with_id("latest_blessed_model_resolver")
    else:
        model_resolver = Resolver(
            strategy_class=LatestBlessedModelStrategy,
            model=Channel(type=standard_artifacts.Model),
            model_blessing=Channel(type=standard_artifacts.ModelBlessing)).with_id("latest_blessed_model_resolver")

    # TFMA on the held-out test split: metrics overall + per slice; blesses or not.
    evaluator = Evaluator(
        examples=example_gen.outputs["examples"], model=trainer.outputs["model"],
        baseline_model=model_resolver.outputs["model"], schema=data_gate.outputs["gated_schema"],
        eval_config=eval_config(config, schema, code_version("evaluator")),
        example_splits=[config.evaluation.split])

    # Blessed models only: copies the SavedModel to <serving_root>/<model_name>/<version>/.
    pusher = Pusher(
        model=trainer.outputs["model"], model_blessing=evaluator.outputs["blessing"],
        push_destination=pusher_pb2.PushDestination(filesystem=pusher_pb2.PushDestination.Filesystem(
            base_directory=os.path.join(config.serving_root, config.model_name))))

    components = [example_gen, statistics_gen, schema_gen, example_validator, data_gate, transform, trainer,
                  model_resolver, evaluator, pusher]
    return tfx_pipeline.Pipeline(
        pipeline_name=config.pipeline_name,
        pipeline_root=config.pipeline_root,
        components=components,
        enable_cache=config.enable_cache,
        metadata_connection_config=metadata_connection_config,
        beam_pipeline_args=list(beam_pipeline_args if beam_pipeline_args is not None
                                else config.beam_pipeline_args))
