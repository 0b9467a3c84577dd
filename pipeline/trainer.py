"""TFX Trainer `run_fn`: trains the Keras 3 IntentRec on Transform's output and exports it.

The model comes from ONE function, `build_model(feature_spec, hparams)`; everything
else (data, distribution, mixed precision, XLA, TensorBoard, export) is independent
of the architecture. Hyperparameters arrive in the Trainer's `custom_config`
(see `pipeline.configs.TrainingConfig`):

    {"preprocessing": {...}, "hparams": {IntentRecConfig overrides},
     "training": {"epochs", "batch_size", "learning_rate", "distribution",
                  "mixed_precision", "xla", "early_stopping_patience", "top_k",
                  "exclude_seen", "model_name", "shuffle_buffer", "seed"}}

Distribution: Keras 3 on the TensorFlow backend trains under a `tf.distribute`
strategy scope (`keras.distribution` is the JAX-only API): "auto" picks
MirroredStrategy with several GPUs, OneDeviceStrategy with one, the default
strategy on CPU.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from typing import Any, Dict, List

import tensorflow as tf

from pipeline import configs

log = logging.getLogger(__name__)

_PIPELINE_DEFAULTS = {f.name: f.default for f in dataclasses.fields(configs.PipelineConfig)}
# For custom_config keys left out: the defaults of the pipeline config itself.
DEFAULT_TRAINING = configs.TrainingConfig().to_custom(
    top_k=_PIPELINE_DEFAULTS["top_k"], exclude_seen=_PIPELINE_DEFAULTS["exclude_seen"],
    model_name=_PIPELINE_DEFAULTS["model_name"],
)


def build_model(feature_spec, hparams: Dict[str, Any]):
    """The model. Swapping architectures is this one function.

    feature_spec: the `datasets.FeatureSpec` of Transform's output
    (`pipeline.preprocessing.feature_spec`); hparams: `model.IntentRecConfig` overrides.
    """
    from model import IntentRec, IntentRecConfig

    hparams = dict(hparams)
    intents = hparams.pop("intents", None)
    return IntentRec(IntentRecConfig.from_feature_spec(feature_spec, intents=intents, **hparams))


# --------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------
def _files(patterns) -> List[str]:
    files = []
    for p in patterns if isinstance(patterns, (list, tuple)) else [patterns]:
        if tf.io.gfile.isdir(p):
            p = os.path.join(p, "*")
        files += tf.io.gfile.glob(p)
    return sorted(files)


def make_dataset(patterns, tf_transform_output, cfg, batch_size: int, *, shuffle: bool, seed: int = 0,
                 shuffle_buffer: int = 4096) -> tf.data.Dataset:
    """(inputs, targets) batches from Transform's materialized output."""
    from pipeline import preprocessing as pp

    spec = tf_transform_output.transformed_feature_spec()
    files = _files(patterns)
    if not files:
        raise ValueError(f"no transformed examples under {patterns}")
    ds = tf.data.TFRecordDataset(files, compression_type="GZIP", num_parallel_reads=tf.data.AUTOTUNE)
    if shuffle:
        ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(1024)

    def parse(serialized):
        t = tf.io.parse_example(serialized, spec)
        t = {k: tf.sparse.to_dense(v) if isinstance(v, tf.SparseTensor) else v for k, v in t.items()}
        return pp.to_model_inputs(t, cfg), pp.to_model_targets(t, cfg)

    # Rows without any target (1-interaction training sequences, kept only so that the
    # Transform statistics see the whole training portion) are dropped.
    ds = (ds.map(parse, num_parallel_calls=tf.data.AUTOTUNE).unbatch()
          .filter(lambda x, y: tf.reduce_sum(y["weight"]) > 0))
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


# --------------------------------------------------------------------------------------
# Devices
# --------------------------------------------------------------------------------------
def _flag(value, default_if_auto: bool) -> bool:
    if isinstance(value, str):
        if value.lower() == "auto":
            return default_if_auto
        return value.lower() in ("1", "true", "yes", "on")
    return bool(value)


def dtype_policy(value, gpus) -> str:
    """The Keras dtype policy for `mixed_precision`: bf16 on Ampere and newer GPUs (no
    loss scaling needed, same exponent range as float32), float16 on older ones."""
    if isinstance(value, str) and value.startswith(("mixed_", "float", "bfloat")):
        return value
    if not _flag(value, bool(gpus)):
        return "float32"
    capabilities = [tf.config.experimental.get_device_details(g).get("compute_capability", (0, 0)) for g in gpus]
    return "mixed_bfloat16" if capabilities and min(capabilities) >= (8, 0) else "mixed_float16"


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
    raise ValueError(f"unknown distribution {name!r}")


def make_optimizer(training: Dict[str, Any]):
    """AdamW with gradient clipping (model.training's choice); Adam when weight_decay is 0."""
    import keras

    lr = float(training["learning_rate"])
    clip = float(training.get("clipnorm") or 0) or None
    wd = float(training.get("weight_decay") or 0)
    if wd > 0:
        return keras.optimizers.AdamW(learning_rate=lr, weight_decay=wd, clipnorm=clip)
    return keras.optimizers.Adam(learning_rate=lr, clipnorm=clip)


# --------------------------------------------------------------------------------------
# run_fn
# --------------------------------------------------------------------------------------
def run_fn(fn_args) -> None:
    """TFX Trainer entry point (GenericExecutor)."""
    import keras
    import tensorflow_transform as tft

    from pipeline import preprocessing as pp
    from pipeline.export import export_serving_model

    custom = dict(fn_args.custom_config or {})
    cfg = pp.PreprocessingConfig.from_custom_config(custom)
    hparams = dict(custom.get("hparams") or {})
    training = {**DEFAULT_TRAINING, **(custom.get("training") or {})}
    tft_output = tft.TFTransformOutput(fn_args.transform_output)
    spec = pp.feature_spec(tft_output, cfg)
    log.info("feature spec: %s", json.dumps(spec.to_dict()))

    gpus = tf.config.list_physical_devices("GPU")
    mixed = dtype_policy(training["mixed_precision"], gpus)
    xla = _flag(training["xla"], bool(gpus))
    keras.mixed_precision.set_global_policy(mixed)
    keras.utils.set_random_seed(int(training["seed"]))
    strategy = make_strategy(training["distribution"])
    replicas = strategy.num_replicas_in_sync
    global_batch = int(training["batch_size"]) * replicas
    print(f"[trainer] strategy={type(strategy).__name__} replicas={replicas} mixed_precision={mixed} "
          f"xla={xla} global_batch={global_batch}", flush=True)

    train_ds = make_dataset(fn_args.train_files, tft_output, cfg, global_batch, shuffle=True,
                            seed=int(training["seed"]), shuffle_buffer=int(training["shuffle_buffer"]))
    eval_ds = make_dataset(fn_args.eval_files, tft_output, cfg, global_batch, shuffle=False)
    if fn_args.train_steps:
        train_ds = train_ds.repeat()

    with strategy.scope():
        model = build_model(spec, hparams)
        counts = pp.read_item_counts(tft_output)
        if hasattr(model, "item_head") and hasattr(model.item_head, "set_prior"):
            model.item_head.set_prior(counts)
        model.compile(optimizer=make_optimizer(training), jit_compile=xla,
                      steps_per_execution=int(training["steps_per_execution"]))

    callbacks = [keras.callbacks.TensorBoard(log_dir=fn_args.model_run_dir, update_freq="epoch")]
    if int(training["early_stopping_patience"]) > 0:
        callbacks.append(keras.callbacks.EarlyStopping(monitor="val_loss", patience=int(
            training["early_stopping_patience"]), restore_best_weights=True))
    steps = None
    epochs = int(training["epochs"])
    if fn_args.train_steps:
        steps = max(1, int(fn_args.train_steps) // max(epochs, 1))
    t0 = time.time()
    history = model.fit(train_ds, validation_data=eval_ds, epochs=epochs, steps_per_epoch=steps,
                        callbacks=callbacks, verbose=2)
    train_seconds = time.time() - t0

    titles = _item_titles(custom)
    warmup = _warmup_examples(tft_output)
    exclude_seen, rate = resolve_exclude_seen(training["exclude_seen"], train_ds)
    print(f"[trainer] exclude_seen={exclude_seen} (setting {training['exclude_seen']!r}, "
          f"training repeat rate {rate if rate is not None else 'n/a'})", flush=True)
    export_serving_model(model, tft_output, cfg, fn_args.serving_model_dir, k=int(training["top_k"]),
                         exclude_seen=exclude_seen, model_name=training["model_name"],
                         item_titles=titles, warmup_examples=warmup)
    summary = {"train_seconds": round(train_seconds, 2), "epochs_run": len(history.history.get("loss", [])),
               "history": {k: [float(x) for x in v] for k, v in history.history.items()},
               "feature_spec": spec.to_dict(), "hparams": hparams, "training": training,
               "strategy": type(strategy).__name__, "replicas": replicas, "mixed_precision": mixed, "xla": xla,
               "exclude_seen": exclude_seen, "repeat_rate": rate}
    tf.io.gfile.makedirs(fn_args.model_run_dir)
    with tf.io.gfile.GFile(os.path.join(fn_args.model_run_dir, "training_summary.json"), "w") as f:
        f.write(json.dumps(summary, indent=1))
    print(f"[trainer] trained {summary['epochs_run']} epoch(s) in {train_seconds:.1f}s; "
          f"final loss {summary['history'].get('loss', [float('nan')])[-1]:.4f}, "
          f"val_loss {summary['history'].get('val_loss', [float('nan')])[-1]:.4f}", flush=True)


def repeat_rate(ds: tf.data.Dataset, max_rows: int = 2000) -> float:
    """`model.training.repeat_rate` over the first `max_rows` rows of the batched dataset."""
    import types

    import numpy as np

    from model import training

    items, targets, weights = [], [], []
    for x, y in ds:
        items.append(x["item"].numpy())
        targets.append(y["item"].numpy())
        weights.append(y["weight"].numpy())
        if sum(len(b) for b in items) >= max_rows:
            break
    if not items:
        return 0.0
    split = types.SimpleNamespace(x={"item": np.concatenate(items)}, y={"item": np.concatenate(targets)},
                                  w=np.concatenate(weights))
    return training.repeat_rate(split)


def resolve_exclude_seen(setting, train_ds):
    """-> (exclude_seen, repeat rate or None). "auto": exclude when < 5% of targets repeat."""
    if isinstance(setting, bool):
        return setting, None
    if str(setting).lower() in ("true", "false"):
        return str(setting).lower() == "true", None
    if setting != "auto":
        raise ValueError(f"exclude_seen must be auto, true or false, got {setting!r}")
    rate = repeat_rate(train_ds)
    return rate < 0.05, round(rate, 4)


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
