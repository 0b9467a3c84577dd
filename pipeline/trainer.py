"""TFX Trainer `run_fn`: trains IntentRec on Transform's output with `model.training`, exports it.

How the model trains is `model.training`'s, with `model.train`'s defaults: the protocol
(`TrainConfig`, `PipelineConfig.training`), runtime, compile, length-bucketed batches,
the exclude-seen decision, early stopping on validation NDCG@10 under the same
seen-item filter, the `[protocol]` line, the item attribute tables and the popularity
prior (`training.fit_and_evaluate`). What is left here is TFX's: reading Transform's
output (`pipeline.transformed_data`), the tf.distribute strategy and the GPU-dependent
mixed-precision choice (`pipeline.configs.TrainerConfig`), TensorBoard, the export
(`pipeline.export`) and `training_summary.json`.

The model comes from ONE function, `build_model(feature_spec, hparams)`. The Trainer's
`custom_config` (`pipeline.pipeline.create_pipeline`)::

    {"preprocessing": PreprocessingConfig, "hparams": IntentRecConfig overrides,
     "training": TrainConfig, "trainer": TrainerConfig, "top_k", "model_name",
     "item_titles_path", "code_version"}
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from typing import Any, Dict

import tensorflow as tf

from pipeline import configs

log = logging.getLogger(__name__)


def build_model(feature_spec, hparams: Dict[str, Any]):
    """The model. Swapping architectures is this one function.

    feature_spec: the `datasets.FeatureSpec` of Transform's output
    (`pipeline.preprocessing.feature_spec`); hparams: `model.IntentRecConfig` overrides.
    """
    from model import IntentRec, IntentRecConfig

    hparams = dict(hparams)
    intents = hparams.pop("intents", None)
    return IntentRec(IntentRecConfig.from_feature_spec(feature_spec, intents=intents, **hparams))


def gpu_dtype_policy(gpus) -> str:
    """Mixed precision for these GPUs: bf16 from Ampere on (float32's exponent range, no
    loss scaling), float16 before."""
    capabilities = [tf.config.experimental.get_device_details(g).get("compute_capability", (0, 0)) for g in gpus]
    return "mixed_bfloat16" if min(capabilities) >= (8, 0) else "mixed_float16"


def make_strategy(name: str = "auto") -> tf.distribute.Strategy:
    gpus = tf.config.list_logical_devices("GPU")
    if name == "auto":
        name = "mirrored" if len(gpus) > 1 else ("one_device" if gpus else "default")
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "one_device":
        return tf.distribute.OneDeviceStrategy("/gpu:0" if gpus else "/cpu:0")
    if name == "default":
        return tf.distribute.get_strategy()
    raise ValueError(f"unknown strategy {name!r}")


def train_config(custom: dict, trainer: configs.TrainerConfig, gpus):
    """The run's `TrainConfig`: the pipeline's, with the GPU's mixed precision when asked."""
    from model.training import TrainConfig

    cfg = TrainConfig(**custom.get("training", {}))
    if gpus and trainer.gpu_mixed_precision and cfg.mixed_precision == "float32":
        cfg = dataclasses.replace(cfg, mixed_precision=gpu_dtype_policy(gpus))
    return cfg


def run_fn(fn_args) -> None:
    """TFX Trainer entry point (GenericExecutor)."""
    import keras
    import tensorflow_transform as tft

    from model import training
    from pipeline import preprocessing as pp
    from pipeline import transformed_data
    from pipeline.export import export_serving_model

    custom = dict(fn_args.custom_config or {})
    pp_cfg = pp.PreprocessingConfig.from_custom_config(custom)
    hparams = dict(custom.get("hparams") or {})
    trainer = configs.TrainerConfig(**custom.get("trainer", {}))
    gpus = tf.config.list_physical_devices("GPU")
    cfg = train_config(custom, trainer, gpus)
    tft_output = tft.TFTransformOutput(fn_args.transform_output)

    data = transformed_data.load(fn_args.train_files, fn_args.eval_files, tft_output, pp_cfg,
                                 trainer.max_in_memory_mb)
    strategy = make_strategy(trainer.strategy)
    print(f"[trainer] data {data.source}; strategy {type(strategy).__name__} "
          f"({strategy.num_replicas_in_sync} replica(s)), dtype policy {cfg.mixed_precision}", flush=True)
    log.info("feature spec: %s", json.dumps(data.feature_spec.to_dict()))
    with training.runtime(cfg, strategy=strategy):
        keras.utils.set_random_seed(cfg.seed)  # before building, as model.train: the initial weights
        model = build_model(data.feature_spec, hparams)
        batches = None
        if data.streamed:
            batches = transformed_data.StreamingBatches(
                fn_args.train_files, tft_output, pp_cfg, cfg.batch_size, num_buckets=cfg.length_buckets,
                seed=cfg.seed, shuffle_buffer=trainer.shuffle_buffer, input_names=model.input_names)
        result = training.fit_and_evaluate(
            model, data, cfg, evaluate_splits=("val",), batches=batches,
            callbacks=[keras.callbacks.TensorBoard(log_dir=fn_args.model_run_dir, update_freq="epoch")])

    protocol = training.Protocol(**result["protocol"])
    export_serving_model(model, tft_output, pp_cfg, fn_args.serving_model_dir, k=int(custom["top_k"]),
                         exclude_seen=result["exclude_seen"], exclude_history=cfg.seen_filter == "history",
                         model_name=custom["model_name"], item_titles=_item_titles(custom),
                         warmup_examples=_warmup_examples(tft_output))
    summary = {**{k: result[k] for k in ("val", "best_epoch", "epochs_run", "train_seconds", "exclude_seen",
                                         "protocol", "history", "item_attributes")},
               "protocol_line": protocol.line(), "data": data.source, "feature_spec": data.feature_spec.to_dict(),
               "hparams": hparams, "training": dataclasses.asdict(cfg), "trainer": dataclasses.asdict(trainer),
               "strategy": type(strategy).__name__, "replicas": strategy.num_replicas_in_sync}
    tf.io.gfile.makedirs(fn_args.model_run_dir)
    with tf.io.gfile.GFile(os.path.join(fn_args.model_run_dir, "training_summary.json"), "w") as f:
        f.write(json.dumps(summary, indent=1, default=float))
    print(f"[trainer] best epoch {result['best_epoch']} of {result['epochs_run']} in {result['train_seconds']:.1f} s: "
          f"val ndcg@10 {result['val']['ndcg@10']:.4f}, recall@10 {result['val']['recall@10']:.4f}", flush=True)


def _item_titles(custom) -> Dict[str, str]:
    path = custom.get("item_titles_path")
    if not path or not tf.io.gfile.exists(path):
        return {}
    with tf.io.gfile.GFile(path) as f:
        return json.load(f)


def _warmup_examples(tft_output, count: int = 3):
    """A few serving requests (popular items, daily timestamps; one empty history)."""
    from pipeline import preprocessing as pp
    from serving.examples import make_example

    tokens = pp.read_vocabulary(tft_output, pp.ITEM_VOCAB)[2:]
    examples = [make_example([], [])]
    for i in range(1, count):
        items = tokens[: 3 * i]
        examples.append(make_example(items, [1_600_000_000 + 86400 * j for j in range(len(items))]))
    return examples
