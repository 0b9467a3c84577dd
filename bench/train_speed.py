"""Training speed and scale of IntentRec V3 (from `model/`) and SASRec, on synthetic batches.

    python -m bench.train_speed --grid gpu            # the H100 grid (JAX backend, bf16)
    python -m bench.train_speed --grid cpu            # small shapes for a CPU (alias --preset cpu)
    python -m bench.train_speed --grid quick          # smoke run (tests)
    python -m bench.train_speed --models intentrec --modes naive,chunked --n 200 --items 3706

Needs only numpy and Keras 3 on a backend (JAX on the GPU machine, which has no
TensorFlow; TensorFlow works too). Batches are random numpy arrays shaped like an
encoded batch (docs/ARCHITECTURE.md §2), so no dataset code runs. Prints a table
and writes JSON (`--out`, default `results/train_speed_<backend>_<device>.json`),
rewritten after every configuration so a run cut short keeps what it measured.

Each configuration: build the model, `fit` `--warmup` steps (XLA compilation
happens here; its wall time is reported as `compile_s`), then time `fit` over
`--steps` steps (`verbose=0`; `fit` returns only once the last step is done, so
the wall time covers the device work). Reported per configuration:

- `step_ms`, `seq_per_s` (sequences = batch rows);
- `tflops`: achieved model TFLOP/s, counted analytically (`train_flops`), and
  `mfu` = tflops / the matmul peak measured in the same run (bf16 on GPU,
  float32 on CPU);
- `peak_mem_mb`: GPU: the device's `peak_bytes_in_use` (a high-water mark over
  the process, so configurations run in a fixed order; `mem_in_use_mb` is the
  live memory after the configuration); CPU: the process's peak RSS, reset
  before each configuration (Linux `clear_refs`);
- `head_act_mb`: analytic size of the item head's largest activation
  (full: rows × |I| logits; chunked: rows × chunk; sampled: rows × negatives).

Modes, run side by side in the same process (`x_naive`, `x_naive_xla` in the JSON
and table: the naive step time of the same model and shape over this case's). Every
mode computes the same loss except `sampled`, which estimates it:

| mode | item loss | loss rows | precision | XLA |
|---|---|---|---|---|
| `naive` | full softmax | all batch × n positions | float32 | no (eager) |
| `naive_xla` | full softmax | all batch × n positions | the case's | yes |
| `labels` | full softmax | labelled positions only (`max_label_positions`) | case | yes |
| `chunked` | chunked full softmax | labelled positions only | case | yes |
| `sampled` | sampled softmax, 1024 negatives | labelled positions only | case | yes |

`Case.attention="flash"` requests the fused attention kernel (`flash_attention=True`:
cuDNN's on a GPU under JAX), "composite" forbids it. `python -m bench.train_speed accuracy` is the
companion accuracy run (NDCG@10 per item loss on a real dataset).

FLOP formula (`train_flops`), per training step = 3 × forward (each matmul has
one forward and two backward matmuls):
- every Dense layer: 2 · fan_in · fan_out per position (B · n positions; the
  intent-aggregation score layer runs once per intent head);
- every attention block: 4 · n · d_block per position (QKᵀ and AV over all n
  keys, as computed: the mask does not skip work);
- item head: 2 · d · K per labelled position, K = |I| (full, chunked) or
  negatives + 1 (sampled) — useful FLOPs: the naive step's work on padding and
  the chunked backward's recomputation (+1/3 of the head) are not counted;
- embedding look-ups, normalisation, activations, softmax: 0.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import math
import pathlib
import platform
import signal
import sys
import time

import keras
import numpy as np
from keras import ops

from datasets.feature_spec import DEFAULT_MAX_LEN, FeatureSpec, IntentHead
from model import IntentRec, IntentRecConfig
from model.intent_aggregation import IntentAggregation
from model.transformer_encoder import TransformerBlock, attention_info, set_flash_attention

# Synthetic feature spec of the reference shape: 2 intent heads, metadata like
# the synthetic/MovieLens adapters produce.
def feature_spec(num_items: int, max_len: int = DEFAULT_MAX_LEN) -> FeatureSpec:
    """A synthetic-data-like spec with `num_items` items."""
    return FeatureSpec(
        max_len=max_len,
        item_vocab_size=int(num_items),
        categorical=(("action_type", 8), ("item_type", 6), ("hour_of_day", 26), ("day_of_week", 9)),
        multi_hot=(("genre", 22),),
        numeric=("duration",),
        intents=(IntentHead("action_type", "single", 8), IntentHead("genre", "multi", 22)),
        has_timestamps=True,
    )


MODES = ("naive", "naive_xla", "labels", "chunked", "sampled")
# mode: (item_loss, loss on labelled rows only, XLA, forced dtype policy or None = the case's)
MODE_CONFIG = {
    "naive": ("full", False, False, "float32"),  # the straightforward step: fp32, eager
    "naive_xla": ("full", False, True, None),  # the same model compiled (issue 7's 88 ms step)
    "labels": ("full", True, True, None),
    "chunked": ("chunked", True, True, None),
    "sampled": ("sampled", True, True, None),
}


@dataclasses.dataclass
class Case:
    model: str  # "intentrec" | "sasrec"
    mode: str
    n: int
    items: int
    batch: int
    precision: str = "float32"  # Keras dtype policy
    steps_per_execution: int = 1
    attention: str = "default"  # "default" (the backend's), "flash" (fused kernel required) or "composite"

    def __post_init__(self):
        forced = MODE_CONFIG[self.mode][3]
        if forced:
            self.precision = forced

    @property
    def jit(self) -> bool:
        return MODE_CONFIG[self.mode][2]

    @property
    def key(self) -> str:
        return (f"{self.model}/{self.mode}/n{self.n}/I{self.items}/b{self.batch}/{self.precision}"
                f"/spe{self.steps_per_execution}" + ("" if self.attention == "default" else f"/{self.attention}"))


# --------------------------------------------------------------------------------------
# Grids
# --------------------------------------------------------------------------------------
def grid(name: str, batch: int | None = None) -> list[Case]:
    """The configurations of a named grid, most important first (a time budget
    cuts the tail)."""
    def optimized(model, n, items, b, p):
        """The fast exact head up to 100k items, plus the sampled head from 100k."""
        modes = (["chunked"] if items < 100_000 else []) + (["chunked", "sampled"] if items == 100_000 else [])
        modes += ["sampled"] if items > 100_000 else []
        return [Case(model, m, n, items, b, p) for m in modes]

    if name == "gpu":
        b, p = batch or 256, "mixed_bfloat16"
        ref = dict(n=200, items=3706, batch=b, precision=p)
        # The reference shape, naive and optimized side by side, then 1M items.
        cases = [Case("intentrec", m, **ref) for m in ("naive_xla", "chunked", "sampled")]
        cases += [Case("intentrec", "sampled", 200, 1_000_000, b, p), Case("intentrec", "naive", **ref)]
        cases += [Case("sasrec", m, **ref) for m in ("naive_xla", "chunked")]
        cases += [Case("intentrec", "chunked", 200, 100_000, b, p), Case("intentrec", "sampled", 200, 100_000, b, p)]
        cases += [Case("intentrec", "chunked", **ref, steps_per_execution=4),
                  Case("intentrec", "chunked", **ref, attention="flash"), Case("intentrec", "labels", **ref)]
        cases += [Case("sasrec", "sampled", 200, 1_000_000, b, p), Case("sasrec", "naive", **ref)]
        # The rest of the grid n x |I| (optimized heads), then naive references that fit.
        for model in ("intentrec", "sasrec"):
            for n in (50, 100, 400):
                for items in (3706, 1_000_000, 100_000):
                    cases += optimized(model, n, items, b, p)
            cases += optimized(model, 200, 100_000, b, p)
        cases += [Case("intentrec", "naive_xla", 200, 100_000, b, p)]
        cases += [Case("intentrec", "naive_xla", n, 3706, b, p) for n in (50, 100, 400)]
        cases += [Case("intentrec", "naive", 200, 100_000, b, p)]
        seen, unique = set(), []
        for c in cases:
            if c.key not in seen:
                seen.add(c.key)
                unique.append(c)
        return unique
    if name == "cpu":
        b = batch or 32
        cases = [Case("intentrec", m, 50, 3706, b) for m in MODES]
        cases += [Case("sasrec", m, 50, 3706, b) for m in ("naive", "naive_xla", "chunked", "sampled")]
        cases += [Case("intentrec", m, 50, 100_000, b) for m in ("naive_xla", "chunked", "sampled")]
        cases += [Case("intentrec", m, 100, 3706, b) for m in ("naive_xla", "chunked")]
        cases += [Case("intentrec", "sampled", 50, 1_000_000, b), Case("sasrec", "sampled", 50, 1_000_000, b)]
        return cases
    if name == "quick":
        b = batch or 8
        return [Case("intentrec", m, 16, 500, b) for m in MODES] + [Case("sasrec", "chunked", 16, 500, b)]
    raise ValueError(f"unknown grid {name!r}")


# --------------------------------------------------------------------------------------
# Synthetic data
# --------------------------------------------------------------------------------------
def synthetic_batches(spec: dict, n: int, num: int, seed: int = 0):
    """`num` left-padded sequences `(x, y)` with lengths uniform in [2, n]
    (about half the positions labelled, like MovieLens-1M at n = 200)."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(2, n + 1, num)
    valid = np.arange(n)[None, :] >= (n - lengths)[:, None]

    def ids(size):
        return np.where(valid, rng.integers(2, size, valid.shape), 0).astype("int32")

    x = {"item": ids(spec.item_vocab_size)}
    gaps = rng.exponential(0.5, valid.shape)
    time_ = np.cumsum(np.where(valid, gaps, 0.0), axis=1)
    first = time_[np.arange(num), n - lengths]
    x["time"] = np.where(valid, time_ - first[:, None], 0.0).astype("float32")
    for name, size in spec.categorical:
        x[name] = ids(size)
    for name, size in spec.multi_hot:
        x[name] = ((rng.random(valid.shape + (size,)) < 0.15) & valid[..., None]).astype("float32")
        x[name][..., :2] = 0.0
    for name in spec.numeric:
        x[name] = np.where(valid, rng.normal(size=valid.shape), 0.0).astype("float32")
    y = {"item": np.roll(x["item"], -1, axis=1)}
    for head in spec.intents:
        y[head.name] = np.roll(x[head.name], -1, axis=1)
    weight = (valid & np.roll(valid, -1, axis=1)).astype("float32")
    weight[:, -1] = 0.0
    y["weight"] = weight
    return x, y


# --------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------
def build(case: Case, label_budget: float):
    """The model of `case` (built under its dtype policy) and its label budget."""
    item_loss, restrict = MODE_CONFIG[case.mode][:2]
    budget = math.ceil(label_budget * case.batch * case.n) if restrict else 0
    spec = feature_spec(case.items, case.n)
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(case.precision)
    try:
        if case.model == "intentrec":
            config = IntentRecConfig.from_feature_spec(
                spec, variant="v3", item_loss=item_loss, max_label_positions=budget,
            )
            model = IntentRec(config)
        elif case.model == "sasrec":
            from model.baselines import build_baseline

            model = build_baseline("sasrec", spec, item_loss=item_loss, max_label_positions=budget)
        else:
            raise ValueError(f"unknown model {case.model!r}")
    finally:
        keras.config.set_dtype_policy(previous)
    return model, spec, budget


def train_flops(model, batch: int, n: int, labelled_rows: float) -> float:
    """Model FLOPs of one training step (module docstring)."""
    per_position = 0.0
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if isinstance(layer, keras.layers.Dense):
            fan_in, fan_out = layer.kernel.shape
            per_position += 2.0 * fan_in * fan_out
        elif isinstance(layer, TransformerBlock):
            per_position += 4.0 * n * layer.d_model
        elif isinstance(layer, IntentAggregation):  # its score layer runs once per head
            per_position += 2.0 * layer.d_proj * (layer.num_heads - 1)
    head = model.item_head
    scored = head.num_sampled_negatives + 1 if head.loss_mode == "sampled" else head.item_vocab_size
    d = int(ops.shape(head.kernel)[0])
    forward = per_position * batch * n + 2.0 * d * scored * labelled_rows
    return 3.0 * forward


def head_activation_bytes(model, rows: int) -> float:
    head = model.item_head
    if head.loss_mode == "sampled":
        width = head.num_sampled_negatives + 1
    elif head.loss_mode == "chunked":
        width = min(head.chunk_size, head.item_vocab_size)
    else:
        width = head.item_vocab_size
    return 4.0 * rows * width


# --------------------------------------------------------------------------------------
# Measurements
# --------------------------------------------------------------------------------------
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


# --------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------
COLUMNS = [("model", "{}"), ("mode", "{}"), ("precision", "{}"), ("jit", "{}"), ("attention", "{}"), ("n", "{}"), ("items", "{:,}"),
           ("batch", "{}"), ("steps_per_execution", "{}"), ("step_ms", "{:.1f}"), ("seq_per_s", "{:,.0f}"),
           ("tflops", "{:.3f}"), ("mfu", "{:.1%}"), ("peak_mem_mb", "{:,.0f}"), ("head_act_mb", "{:,.0f}"),
           ("compile_s", "{:.0f}")]
BASELINES = ("naive", "naive_xla")


def speedups(results: list[dict]) -> None:
    """Adds `x_naive` / `x_naive_xla`: the naive step time of the same model and
    shape over this case's (measured in the same run)."""
    base = {}
    for r in results:
        if r.get("mode") in BASELINES and "step_ms" in r:
            base.setdefault((r["mode"], r["model"], r["n"], r["items"], r["batch"]), r["step_ms"])
    for r in results:
        for mode in BASELINES:
            ms = base.get((mode, r["model"], r["n"], r["items"], r["batch"]))
            if ms and "step_ms" in r:
                r[f"x_{mode}"] = ms / r["step_ms"]


def table(results: list[dict]) -> str:
    speedups(results)
    header = "| " + " | ".join(name for name, _ in COLUMNS) + " | x naive | x naive_xla |"
    lines = [header, "|" + "---|" * (len(COLUMNS) + 2)]
    for r in results:
        if "error" in r or "skipped" in r:
            cells = [fmt.format(r[name]) if r.get(name) is not None else "" for name, fmt in COLUMNS[:9]]
            note = (r.get("error") or r.get("skipped")).replace("|", "/").replace("\n", " ")[:80]
            lines.append("| " + " | ".join(cells) + f" | {note} |" + " |" * (len(COLUMNS) - 8))
            continue
        cells = [fmt.format(r[name]) if r.get(name) is not None else "" for name, fmt in COLUMNS]
        ratios = [f"{r[f'x_{m}']:.2f}x" if f"x_{m}" in r else "" for m in BASELINES]
        lines.append("| " + " | ".join(cells + ratios) + " |")
    return "\n".join(lines)


class CaseTimeout(Exception):
    pass


def _on_alarm(signum, frame):
    raise CaseTimeout("per-case time cap")


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


def estimated_full_bytes(case: Case) -> float:
    """Memory the naive full-softmax head needs for its logits (+ their gradient)."""
    return 2 * 4.0 * case.batch * case.n * case.items


def accuracy_main(argv=None) -> dict:
    """Companion CPU run: NDCG@10 of IntentRec V3 trained with each item loss, side
    by side (same data, seed, epochs). "chunked" must equal "full" (same gradients);
    "sampled" shows what the estimate costs in accuracy.

        python -m bench.train_speed accuracy --dataset synthetic-small --out results/train_speed_accuracy.json
    """
    import datasets

    from model import training

    p = argparse.ArgumentParser(prog="python -m bench.train_speed accuracy")
    p.add_argument("--dataset", default="synthetic-small", help="datasets.resolve alias (synthetic-small, ml-100k)")
    p.add_argument("--modes", default="full,chunked,sampled")
    p.add_argument("--max-len", type=int, default=DEFAULT_MAX_LEN)
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--patience", type=int, default=3)
    p.add_argument("--negatives", type=int, default=256, help="num_sampled_negatives for sampled")
    p.add_argument("--chunk-size", type=int, default=512, help="item_chunk_size for chunked")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="results/train_speed_accuracy.json")
    args = p.parse_args(argv)

    dataset = datasets.resolve(args.dataset)
    encoded = datasets.encode(dataset, max_len=args.max_len)
    out = pathlib.Path(args.out)
    entry = {"command": "python -m bench.train_speed accuracy " + " ".join(argv or []),
             "backend": keras.backend.backend(), "keras": keras.__version__,
             "items": int(encoded.feature_spec.item_vocab_size), "train_users": len(encoded.train),
             "max_len": args.max_len, "epochs": args.epochs, "seed": args.seed, "results": []}
    # One JSON for all datasets: keep the others' entries.
    report = json.loads(out.read_text()) if out.exists() else {}
    previous = report.get("runs", {}).get(args.dataset, {})
    if {k: previous.get(k) for k in ("items", "max_len", "epochs", "seed")} == \
            {k: entry[k] for k in ("items", "max_len", "epochs", "seed")}:
        # Same setting: keep the other losses' rows (a run of some modes only).
        entry["results"] = [r for r in previous.get("results", []) if r["item_loss"] not in args.modes.split(",")]
    report.setdefault("runs", {})[args.dataset] = entry
    for mode in args.modes.split(","):
        config = IntentRecConfig.from_feature_spec(
            encoded.feature_spec, variant="v3", item_loss=mode,
            num_sampled_negatives=args.negatives, item_chunk_size=args.chunk_size,
        )
        cfg = training.TrainConfig(epochs=args.epochs, patience=args.patience, seed=args.seed, verbose=0)
        with training.runtime(cfg):
            keras.utils.set_random_seed(args.seed)
            model = IntentRec(config)
            result = training.fit_and_evaluate(model, encoded, cfg)
        row = {"item_loss": mode, "negatives": args.negatives if mode == "sampled" else None,
               "test_ndcg@10": result["test"]["ndcg@10"], "test_recall@10": result["test"]["recall@10"],
               "val_ndcg@10": result["val"]["ndcg@10"], "best_epoch": result["best_epoch"],
               "epochs_run": result["epochs_run"], "train_seconds": round(result["train_seconds"], 1),
               "val_curve": [h.get("val_ndcg@10") for h in result["history"]]}
        print(f"  {args.dataset} {mode}: test NDCG@10 {row['test_ndcg@10']:.4f} recall@10 {row['test_recall@10']:.4f} "
              f"(best epoch {row['best_epoch']}/{row['epochs_run']}, {row['train_seconds']:.0f} s)", flush=True)
        entry["results"].append(row)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=1))
        keras.backend.clear_session()
    return report


def main(argv=None) -> dict:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["accuracy"]:
        return accuracy_main(argv[1:])
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--grid", "--preset", dest="grid", default=None, choices=["gpu", "cpu", "quick"],
                   help="named grid (default: gpu on a GPU, else cpu)")
    p.add_argument("--models", default=None, help="comma list: intentrec,sasrec (filters the grid)")
    p.add_argument("--modes", default=None, help=f"comma list of {','.join(MODES)} (filters the grid)")
    p.add_argument("--n", default=None, help="comma list of sequence lengths (replaces the grid's)")
    p.add_argument("--items", default=None, help="comma list of catalogue sizes (replaces the grid's)")
    p.add_argument("--batch", type=int, default=None)
    p.add_argument("--precision", default=None, help="dtype policy for every case (float32, mixed_bfloat16)")
    p.add_argument("--steps", type=int, default=None, help="timed steps per case (gpu 30, cpu 5)")
    p.add_argument("--warmup", type=int, default=1, help="untimed steps (compilation) per case")
    p.add_argument("--label-budget", type=float, default=0.6,
                   help="max_label_positions as a fraction of batch × n (labels about 0.5)")
    p.add_argument("--chunk-size", type=int, default=0, help="item chunk for chunked mode (0: model default)")
    p.add_argument("--memory-limit-gb", type=float, default=None,
                   help="skip naive cases whose logits alone exceed this (default: 60 GPU, 8 CPU)")
    p.add_argument("--time-budget", type=float, default=None, help="seconds; no new case starts after it")
    p.add_argument("--case-timeout", type=int, default=0,
                   help="seconds per case (SIGALRM; checked between Python steps, so a long XLA "
                        "compilation finishes first); 0: none")
    p.add_argument("--out", default=None, help="JSON path")
    args = p.parse_args(argv)

    device = device_kind()
    cases = grid(args.grid or ("gpu" if device == "gpu" else "cpu"), args.batch)
    if args.models:
        cases = [c for c in cases if c.model in args.models.split(",")]
    if args.modes:
        cases = [c for c in cases if c.mode in args.modes.split(",")]
    if args.n or args.items:
        ns = [int(v) for v in args.n.split(",")] if args.n else sorted({c.n for c in cases})
        items = [int(float(v)) for v in args.items.split(",")] if args.items else sorted({c.items for c in cases})
        seen, expanded = set(), []
        for c in cases:
            for n in ns:
                for i in items:
                    new = dataclasses.replace(c, n=n, items=i)
                    if new.key not in seen:
                        seen.add(new.key)
                        expanded.append(new)
        cases = expanded
    if args.precision:
        cases = [dataclasses.replace(c, precision=args.precision) for c in cases]
    steps = args.steps or (30 if device == "gpu" else 5)
    limit = (args.memory_limit_gb or (60.0 if device == "gpu" else 8.0)) * 2**30
    out = pathlib.Path(args.out or f"results/train_speed_{keras.backend.backend()}_{device}.json")
    out.parent.mkdir(parents=True, exist_ok=True)

    report = {"command": "python -m bench.train_speed " + " ".join(argv),
              "environment": environment(), "steps": steps, "warmup": args.warmup,
              "label_budget": args.label_budget, "results": []}
    peak_dtype, size, reps = ("bfloat16", 8192, 20) if device == "gpu" else ("float32", 1024, 5)
    report["matmul_peak"] = {"dtype": peak_dtype, "size": size, "tflops": matmul_peak(peak_dtype, size, reps)}
    peak = report["matmul_peak"]["tflops"]
    print(f"[train_speed] {report['environment']['backend']} on {device}: {len(cases)} cases; "
          f"{peak_dtype} matmul peak {peak:.2f} TFLOP/s", flush=True)
    started = time.perf_counter()
    for case in cases:
        if args.time_budget and time.perf_counter() - started > args.time_budget:
            report["results"].append({**dataclasses.asdict(case), "key": case.key, "jit": case.jit, "skipped": "time budget"})
            continue
        if case.mode in BASELINES and estimated_full_bytes(case) > limit:
            need = estimated_full_bytes(case) / 2**30
            report["results"].append({**dataclasses.asdict(case), "key": case.key, "jit": case.jit,
                                      "skipped": f"full logits need ~{need:,.0f} GiB"})
            print(f"  {case.key}: skipped (full logits need ~{need:,.0f} GiB)", flush=True)
            continue
        if args.case_timeout:
            signal.signal(signal.SIGALRM, _on_alarm)
            signal.alarm(args.case_timeout)
        try:
            set_flash_attention({"default": None, "flash": True, "composite": False}[case.attention])
            result = run_case(case, steps, args.warmup, args.label_budget, args.chunk_size)
            signal.alarm(0)
            result["mfu"] = result["tflops"] / peak if peak else None
            print(f"  {case.key}: {result['step_ms']:.1f} ms/step, {result['seq_per_s']:,.0f} seq/s, "
                  f"{result['tflops']:.3f} TFLOP/s (MFU {result['mfu']:.1%}), peak {result['peak_mem_mb']:,.0f} MB, "
                  f"compile {result['compile_s']:.0f} s", flush=True)
        except Exception as error:  # an OOM must not lose the rest of the grid
            signal.alarm(0)
            gc.collect()
            result = {**dataclasses.asdict(case), "key": case.key, "jit": case.jit, "error": f"{type(error).__name__}: {error}"[:500]}
            print(f"  {case.key}: ERROR {result['error'][:200]}", flush=True)
            keras.backend.clear_session()
        report["results"].append(result)
        report["wall_s"] = time.perf_counter() - started
        out.write_text(json.dumps(report, indent=1))
    report["table"] = table(report["results"])
    out.write_text(json.dumps(report, indent=1))
    print(report["table"])
    print(f"[train_speed] wrote {out}")
    return report


if __name__ == "__main__":
    main()
