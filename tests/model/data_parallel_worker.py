"""Data-parallel training on two virtual CPU devices, in a fresh process.

    python -m tests.model.data_parallel_worker            # KERAS_BACKEND picks the backend

Device configuration is process-global, so `test_training_runtime.py` runs this
module in a subprocess. TensorFlow: two logical CPUs + `MirroredStrategy`;
JAX: `XLA_FLAGS=--xla_force_host_platform_device_count=2` (set by the caller) +
`keras.distribution.DataParallel` via `training.runtime`. Checks that one SGD
step on two replicas gives the single-device weights (the same gradient), then
trains a few steps with `training.compile_model`. Prints `OK <json>`.
"""

import json
import os
import sys

import numpy as np


def main():
    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    strategy = None
    if backend == "tensorflow":
        import tensorflow as tf

        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
        replicas = strategy.num_replicas_in_sync
    import keras

    if backend == "jax":
        import jax

        replicas = len(jax.devices())
    assert replicas == 2, f"expected 2 devices, got {replicas}"

    from model import IntentRec
    from model import training
    from tests.test_case import TestCase

    helper = TestCase()
    helper.setUp()
    x, y = helper.random_batch(batch=8, lengths=[helper.seq_len] * 8)
    # Equal total weight per replica: then the data-parallel gradient is exactly
    # the single-device one (see training.scale_loss_for_distribution).
    y["weight"] = (y["weight"] > 0).astype("float32")
    config = helper.make_config(variant="v0", item_loss="chunked", item_chunk_size=16)

    def one_sgd_step(model):
        model.compile(optimizer=keras.optimizers.SGD(0.05), jit_compile=False)
        model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
        return [np.asarray(w) for w in model.get_weights()]

    # Every model is built from the same seed as well as given the same weights:
    # state outside `weights` (seed generators) then matches too.
    keras.utils.set_random_seed(0)
    single = IntentRec(config)
    initial = single.get_weights()
    expected = one_sgd_step(single)

    cfg = training.TrainConfig(distribution="data_parallel", steps_per_execution=2, jit_compile=backend == "jax")
    with training.runtime(cfg, strategy=strategy):
        keras.utils.set_random_seed(0)
        model = IntentRec(config)
        model.set_weights(initial)
        got = one_sgd_step(model)
        changed = max(float(np.abs(a - b).max()) for a, b in zip(expected, initial))
        error = max(float(np.abs(a - b).max()) for a, b in zip(got, expected))

        # The training path: AdamW, XLA (JAX), several steps per execution.
        model = IntentRec(config)
        training.compile_model(model, cfg)
        history = model.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0).history
    result = {"backend": backend, "replicas": replicas, "step_change": changed, "max_error": error,
              "losses": [float(v) for v in history["loss"]]}
    print("OK " + json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
