"""Training speed and scale of IntentRec V3 (from `model/`) and SASRec, on synthetic batches.

    python -m bench.train_speed --grid gpu            # the H100 grid (JAX backend, bf16)
    python -m bench.train_speed --grid cpu            # small shapes for a CPU (alias --preset cpu)
    python -m bench.train_speed --grid quick          # smoke run (tests)
    python -m bench.train_speed --models intentrec --modes naive,chunked --n 200 --items 3706
    python -m bench.train_speed short-history         # epoch time with and without length buckets

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

Modules: `cases` (the configurations and grids), `models` (synthetic batches, the
models, FLOP counts), `measure` (devices, memory, `run_case`), `report` (the table),
`cli` (the grid run), `accuracy` and `short_history` (the companion runs: NDCG@10
per item loss; seconds per epoch with and without length buckets on a Beauty-like
short-history shape).
"""

from bench.train_speed.accuracy import accuracy_main
from bench.train_speed.cases import MODE_CONFIG, MODES, Case, feature_spec, grid
from bench.train_speed.cli import CaseTimeout, estimated_full_bytes, main
from bench.train_speed.measure import (
    CommitState,
    device_kind,
    device_memory,
    environment,
    matmul_peak,
    reset_peak_rss,
    run_case,
)
from bench.train_speed.models import build, head_activation_bytes, synthetic_batches, train_flops
from bench.train_speed.report import BASELINES, COLUMNS, speedups, table
from bench.train_speed.short_history import short_history_main

__all__ = [
    "BASELINES", "COLUMNS", "MODES", "MODE_CONFIG", "Case", "CaseTimeout", "CommitState", "accuracy_main", "build",
    "device_kind", "device_memory", "environment", "estimated_full_bytes", "feature_spec", "grid",
    "head_activation_bytes", "main", "matmul_peak", "reset_peak_rss", "run_case", "short_history_main",
    "speedups", "synthetic_batches", "table", "train_flops",
]
