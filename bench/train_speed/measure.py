"""Measuring one case: device and memory probes, the matmul peak (the MFU
denominator), and `run_case` (compile, then time `fit` over a number of steps)."""

from __future__ import annotations

import dataclasses
import gc
import platform
import sys
import time

import keras
import numpy as np
from keras import ops

from bench.train_speed.cases import Case
from bench.train_speed.models import build, head_activation_bytes, synthetic_batches, train_flops
from model.transformer_encoder import attention_info


def device_kind() -> str:
    if keras.backend.backend() == "jax":
        import jax

        return jax.devices()[0].platform  # "gpu" | "cpu" | "tpu"
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return "gpu" if tf.config.list_physical_devices("GPU") else "cpu"
    return "cpu"


def device_memory() -> dict | None:
    """JAX accelerator memory stats (bytes), or None on CPU / other backends."""
    if keras.backend.backend() != "jax":
        return None
    import jax

    stats = jax.devices()[0].memory_stats()
    if not stats:
        return None
    return {"peak": stats.get("peak_bytes_in_use", 0), "in_use": stats.get("bytes_in_use", 0)}


def _rss_mb(field: str) -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field)) / 1024.0


def reset_peak_rss():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def matmul_peak(dtype: str, size: int, reps: int) -> float:
    """Measured TFLOP/s of a square matmul in `dtype` (the MFU denominator)."""
    rng = np.random.default_rng(0)
    a = ops.cast(ops.convert_to_tensor(rng.normal(size=(size, size)).astype("float32")), dtype)
    b = ops.cast(ops.convert_to_tensor(rng.normal(size=(size, size)).astype("float32")), dtype)
    float(ops.convert_to_numpy(ops.sum(ops.cast(ops.matmul(a, b)[:1], "float32"))))  # warm-up
    started = time.perf_counter()
    out = None
    for _ in range(reps):
        out = ops.matmul(a, b)
    float(ops.convert_to_numpy(ops.sum(ops.cast(out[:1], "float32"))))
    seconds = time.perf_counter() - started
    return 2.0 * size**3 * reps / seconds / 1e12


class CommitState(keras.callbacks.Callback):
    """JAX: places every variable on the device (committed) before each epoch.

    Keras 3.6's JAX `fit` hands the jitted step freshly created, uncommitted
    arrays on its first step (initial values; metrics just reset) and committed
    ones afterwards; XLA compiles the step once per placement pattern, i.e. three
    times per training run. Committed state from the start: one compilation.
    """

    def on_epoch_begin(self, epoch, logs=None):
        import jax

        device = jax.devices()[0]
        for v in self.model.variables + self.model.optimizer.variables + self.model.metrics_variables:
            v.assign(jax.device_put(v.value, device))


def run_case(case: Case, steps: int, warmup: int, label_budget: float, chunk_size: int) -> dict:
    keras.utils.set_random_seed(0)
    model, spec, budget = build(case, label_budget)
    if chunk_size:
        model.item_head.chunk_size = chunk_size
    spe = case.steps_per_execution
    if not case.jit:  # eager steps: slow, and no compilation to amortise
        steps, warmup = max(2, steps // 8), 1
    warmup_steps = max(warmup, 1) * spe
    timed_steps = max(steps // spe, 1) * spe
    num = case.batch * max(warmup_steps, timed_steps)
    x, y = synthetic_batches(spec, case.n, num)
    x = {name: x[name] for name in model.input_names}
    labelled = (y["weight"] > 0).reshape(-1, case.batch * case.n).sum(axis=1)  # per batch
    model.item_head.set_prior(np.bincount(y["item"][y["weight"] > 0], minlength=case.items)[: case.items])
    model.compile(optimizer=keras.optimizers.AdamW(1e-3, weight_decay=1e-4, clipnorm=1.0),
                  jit_compile=case.jit, steps_per_execution=spe)
    rss_reset = device_kind() == "cpu" and reset_peak_rss()
    peak_before = (device_memory() or {}).get("peak", 0)

    callbacks = [CommitState()] if keras.backend.backend() == "jax" else []
    started = time.perf_counter()
    model.fit(x, y, batch_size=case.batch, epochs=1, steps_per_epoch=warmup_steps, shuffle=False, verbose=0,
              callbacks=callbacks)
    compile_s = time.perf_counter() - started
    started = time.perf_counter()
    history = model.fit(x, y, batch_size=case.batch, epochs=1, steps_per_epoch=timed_steps, shuffle=False,
                        verbose=0, callbacks=callbacks).history
    seconds = time.perf_counter() - started

    step_s = seconds / timed_steps
    rows = float(labelled.mean())
    flops = train_flops(model, case.batch, case.n, rows)
    result = {
        **dataclasses.asdict(case),
        "key": case.key,
        "jit": case.jit,
        "item_loss": model.item_head.loss_mode,
        "max_label_positions": budget,
        "labelled_fraction": rows / (case.batch * case.n),
        "fallback_batches": int((labelled > budget).sum()) if budget else 0,
        "params": int(model.count_params()),
        "compile_s": round(compile_s, 2),
        "step_ms": step_s * 1e3,
        "seq_per_s": case.batch / step_s,
        "gflop_per_step": flops / 1e9,
        "tflops": flops / step_s / 1e12,
        "head_act_mb": head_activation_bytes(model, budget or case.batch * case.n) / 2**20,
        "loss": float(history["loss"][-1]),
    }
    memory = device_memory()
    if memory:
        # JAX keeps one high-water mark per process: exact for this case when the
        # case raised it, otherwise only an upper bound (the earlier peak).
        result["peak_mem_mb"] = memory["peak"] / 2**20
        result["mem_in_use_mb"] = memory["in_use"] / 2**20
        result["peak_mem_is_process_high_water"] = memory["peak"] <= peak_before
    else:
        result["peak_mem_mb"] = _rss_mb("VmHWM")
        result["peak_mem_is_process_high_water"] = not rss_reset
    del model, x, y
    keras.backend.clear_session()
    gc.collect()
    return result


def environment() -> dict:
    env = {"backend": keras.backend.backend(), "keras": keras.__version__, "numpy": np.__version__,
           "python": platform.python_version(), "device": device_kind(), "attention": attention_info()}
    if env["backend"] == "jax":
        import jax

        env["jax"] = jax.__version__
        env["devices"] = [str(d) for d in jax.devices()]
        env["device_name"] = getattr(jax.devices()[0], "device_kind", "")
    env["tensorflow_imported"] = "tensorflow" in sys.modules
    env["pandas_imported"] = "pandas" in sys.modules
    return env
