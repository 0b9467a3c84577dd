"""`training.runtime` / `compile_model` / `scale_loss_for_distribution` (docs/performance.md):
mixed precision, XLA and steps-per-execution settings, and the data-parallel path on two
virtual CPU devices (in a subprocess: device setup is process-global). TF and JAX."""

import json
import os
import subprocess
import sys
import unittest

import keras
import numpy as np

from model import training
from tests.test_case import TestCase

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class RuntimeTest(TestCase):
    def tearDown(self):
        keras.config.set_dtype_policy("float32")

    def test_mixed_precision_is_set_for_the_block_only(self):
        cfg = training.TrainConfig(mixed_precision="mixed_bfloat16")
        with training.runtime(cfg):
            self.assertEqual(keras.config.dtype_policy().name, "mixed_bfloat16")
            model = self.make_model(variant="v0", item_loss="chunked", item_chunk_size=16)
        self.assertEqual(keras.config.dtype_policy().name, "float32")
        self.assertEqual(model.dtype_policy.name, "mixed_bfloat16")
        # Variables stay float32; the graph computes in bfloat16.
        self.assertTrue(all(v.dtype == "float32" for v in model.trainable_variables))
        x, y = self.random_batch(batch=4)
        out = model(x)
        self.assertEqual(str(keras.ops.convert_to_numpy(out["item_hidden"]).dtype), "bfloat16")
        # compile_model checks that the policy matches, then trains.
        training.compile_model(model, dataclasses_replace(cfg, jit_compile=False, steps_per_execution=2))
        history = model.fit(x, y, batch_size=2, epochs=1, verbose=0).history  # 2 steps, one call
        self.assertTrue(np.isfinite(history["loss"][0]))

    def test_compile_model_rejects_a_model_built_outside_the_policy(self):
        model = self.make_model(variant="v0")
        with self.assertRaises(ValueError):
            training.compile_model(model, training.TrainConfig(mixed_precision="mixed_bfloat16"))

    def test_settings_are_validated(self):
        with self.assertRaises(ValueError):
            with training.runtime(training.TrainConfig(distribution="model_parallel")):
                pass
        if keras.backend.backend() == "tensorflow":
            with self.assertRaises(ValueError):  # TF needs a tf.distribute strategy
                with training.runtime(training.TrainConfig(distribution="data_parallel")):
                    pass
        else:
            with self.assertRaises(ValueError):
                with training.runtime(training.TrainConfig(), strategy=object()):
                    pass

    def test_steps_per_execution_and_jit_train_the_same_weights(self):
        """XLA and several steps per execution change the speed, not the result."""
        x, y = self.random_batch(batch=4)
        losses = []
        for jit, spe in ((False, 1), (True, 2)):
            keras.utils.set_random_seed(2)
            cfg = training.TrainConfig(jit_compile=jit, steps_per_execution=spe, learning_rate=1e-2)
            with training.runtime(cfg):
                model = self.make_model(variant="v0", item_loss="chunked", item_chunk_size=16, max_label_positions=40)
                training.compile_model(model, cfg)
                history = model.fit(x, y, batch_size=2, epochs=2, shuffle=False, verbose=0).history
            losses.append(history["loss"])
        # Epoch 2's loss is a function of the weights epoch 1 trained.
        np.testing.assert_allclose(losses[1], losses[0], rtol=1e-3)

    def test_scale_loss_for_distribution_is_identity_on_one_device(self):
        model = self.make_model(variant="v0")
        loss = keras.ops.convert_to_tensor(2.5)
        self.assertIs(training.scale_loss_for_distribution(model, loss), loss)


def dataclasses_replace(cfg, **changes):
    import dataclasses

    return dataclasses.replace(cfg, **changes)


class DataParallelTest(unittest.TestCase):
    def test_two_virtual_devices_give_the_single_device_step(self):
        """TF: MirroredStrategy over 2 logical CPUs; JAX: keras.distribution.DataParallel
        over 2 host devices. One SGD step equals the single-device step; AdamW + XLA +
        steps_per_execution then train (tests/model/data_parallel_worker.py)."""
        backend = keras.backend.backend()
        env = dict(os.environ, KERAS_BACKEND=backend, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="2")
        if backend == "jax":
            env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=2").strip()
        proc = subprocess.run([sys.executable, "-m", "tests.model.data_parallel_worker"], cwd=REPO, env=env,
                              capture_output=True, text=True, timeout=600)
        lines = [line for line in proc.stdout.splitlines() if line.startswith("OK ")]
        self.assertEqual(proc.returncode, 0, proc.stderr[-3000:])
        self.assertTrue(lines, proc.stdout[-2000:] + proc.stderr[-2000:])
        result = json.loads(lines[-1][3:])
        self.assertEqual(result["replicas"], 2)
        self.assertGreater(result["step_change"], 1e-4)  # the step did something
        self.assertLess(result["max_error"], 1e-5 + 1e-3 * result["step_change"])
        self.assertTrue(all(np.isfinite(result["losses"])))


if __name__ == "__main__":
    unittest.main()
