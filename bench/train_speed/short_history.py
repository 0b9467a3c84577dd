"""`python -m bench.train_speed short-history`: what length buckets buy on a short-history log.

Training cuts every batch to its longest history, rounded up to a length bucket
(`model.batching.SequenceBatches`, `TrainConfig.length_buckets`). On a log shaped
like Amazon Beauty (5-core: 22,363 users, 12,101 items, median 6 interactions per
user) at n = 50, most batches then run over 8 or 16 positions instead of 50. This
run measures seconds per epoch of `model.fit` on `SequenceBatches` for IntentRec
V3 and SASRec with the full softmax, with `length_buckets=1` (every batch keeps n
positions: the behaviour before buckets) and with the default buckets, side by side
in one process; each after a warm-up epoch that compiles every bucket's step.

    python -m bench.train_speed short-history                              # Beauty's shape
    python -m bench.train_speed short-history --rows 2000 --models sasrec  # a quick check

Rows are random left-padded sequences (`synthetic_batches`), one per user, their
lengths log-normal with median 6 and sigma 0.9 (Beauty's mean of ~8.9 per user),
clipped to [2, n]. Reported per model and setting: the median and every timed
epoch's seconds; `positions_per_row`, the positions an epoch computes (batch rows x
bucket length, fill rows included) over the training rows; and the 1/5/15-minute
load average after the timed epochs, since an epoch ratio taken on a busy machine
says little. `x_one_bucket` is the `length_buckets=1` epoch over this one. Writes
JSON (`--out`, default `results/train_speed_short_history_<backend>_<device>.json`)
and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import time

import keras
import numpy as np

from bench.train_speed.cases import Case, feature_spec
from bench.train_speed.measure import device_kind, environment
from bench.train_speed.models import build, synthetic_batches
from bench.train_speed.report import write_final
from model import training
from model.batching import SequenceBatches

# Amazon Beauty, 5-core (the split of S3-Rec and most sequential-recommendation papers).
BEAUTY_USERS = 22_363
BEAUTY_ITEMS = 12_101
MEDIAN_LENGTH = 6
LENGTH_SIGMA = 0.9

COLUMNS = [("model", "{}"), ("length_buckets", "{}"), ("boundaries", "{}"), ("rows", "{:,}"), ("n", "{}"),
           ("items", "{:,}"), ("batch", "{}"), ("steps", "{}"), ("positions_per_row", "{:.1f}"),
           ("epoch_s", "{:.2f}"), ("compile_epoch_s", "{:.1f}"), ("x_one_bucket", "{:.2f}x"), ("load_avg", "{}")]


def history_lengths(rows: int, n: int, seed: int = 0) -> np.ndarray:
    """Log-normal lengths with median `MEDIAN_LENGTH`, clipped to [2, n]."""
    rng = np.random.default_rng(seed)
    lengths = np.round(np.exp(rng.normal(np.log(MEDIAN_LENGTH), LENGTH_SIGMA, rows)))
    return np.clip(lengths, 2, n).astype(np.int64)


class EpochTimer(keras.callbacks.Callback):
    """Wall seconds of every epoch, up to its last step's loss on the host (so the
    device work of the epoch is done)."""

    def __init__(self):
        super().__init__()
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        float((logs or {}).get("loss", 0.0))
        self.seconds.append(time.perf_counter() - self.started)


def measure(model_name: str, length_buckets: int, x: dict, y: dict, *, items: int, n: int, batch: int,
            epochs: int, precision: str, seed: int) -> dict:
    """Builds a fresh model, fits one warm-up epoch and `epochs` timed ones on `SequenceBatches`."""
    cfg = training.TrainConfig(batch_size=batch, length_buckets=length_buckets, seed=seed,
                               mixed_precision=precision, verbose=0)
    keras.utils.set_random_seed(seed)
    with training.runtime(cfg):
        # The grid's naive_xla model (full softmax over every position), compiled as training compiles it.
        model, _, _ = build(Case(model_name, "naive_xla", n, items, batch, precision), label_budget=0.0)
        model.item_head.set_prior(np.bincount(y["item"][y["weight"] > 0], minlength=items)[:items])
        training.compile_model(model, cfg)
        batches = SequenceBatches(x, y, batch, num_buckets=length_buckets, shuffle=True, seed=seed,
                                  input_names=model.input_names)
        positions = sum(batch * length for length, _ in batches.batches)
        timer = EpochTimer()
        model.fit(batches, epochs=1 + epochs, verbose=0, callbacks=[timer])
    load = os.getloadavg()
    result = {
        "model": model_name, "length_buckets": length_buckets, "boundaries": list(batches.boundaries),
        "rows": len(x["item"]), "n": n, "items": items, "batch": batch, "precision": precision,
        "steps": batches.num_batches, "positions_per_row": positions / len(x["item"]),
        "compile_epoch_s": timer.seconds[0], "epochs_s": timer.seconds[1:],
        "epoch_s": float(np.median(timer.seconds[1:])), "load_avg": [round(v, 2) for v in load],
    }
    del model
    keras.backend.clear_session()
    return result


def table(results: list[dict]) -> str:
    lines = ["| " + " | ".join(name for name, _ in COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for r in results:
        cells = [fmt.format(r[name]) if r.get(name) is not None else "" for name, fmt in COLUMNS[:-1]]
        cells.append("/".join(f"{v:.2f}" for v in r["load_avg"]))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def short_history_main(argv=None) -> dict:
    default_buckets = training.TrainConfig.length_buckets
    p = argparse.ArgumentParser(prog="python -m bench.train_speed short-history", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default="intentrec,sasrec",
                   help="comma list: intentrec (today's default V3), intentrec_paper (the default before issue 12), "
                        "intentrec_no_prior (today's default without the intent history prior), sasrec")
    p.add_argument("--rows", type=int, default=BEAUTY_USERS, help="training rows (one per user)")
    p.add_argument("--items", type=int, default=BEAUTY_ITEMS)
    p.add_argument("--n", type=int, default=50, help="max_len")
    p.add_argument("--batch", type=int, default=training.TrainConfig.batch_size)
    p.add_argument("--buckets", type=int, default=default_buckets,
                   help=f"length buckets measured against 1 (default: TrainConfig's, {default_buckets})")
    p.add_argument("--epochs", type=int, default=2, help="timed epochs per setting (after one warm-up epoch)")
    p.add_argument("--precision", default="float32", help="dtype policy (mixed_bfloat16 on a GPU)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="JSON path")
    args = p.parse_args(argv)

    device = device_kind()
    out = pathlib.Path(args.out or f"results/train_speed_short_history_{keras.backend.backend()}_{device}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    lengths = history_lengths(args.rows, args.n, args.seed)
    x, y = synthetic_batches(feature_spec(args.items, args.n), args.n, args.rows, seed=args.seed, lengths=lengths)
    report = {"command": "python -m bench.train_speed short-history " + " ".join(argv or []),
              "environment": {**environment(), "cpus": os.cpu_count()},
              "lengths": {"median": float(np.median(lengths)), "mean": float(lengths.mean()),
                          "p90": float(np.percentile(lengths, 90)), "max": int(lengths.max())},
              "load_avg_start": [round(v, 2) for v in os.getloadavg()], "results": []}
    print(f"[short-history] {report['environment']['backend']} on {device}: {args.rows:,} rows, history median "
          f"{report['lengths']['median']:.0f} (mean {report['lengths']['mean']:.1f}), n {args.n}, "
          f"{args.items:,} items; load average {report['load_avg_start']}", flush=True)
    for model_name in args.models.split(","):
        one = None
        for buckets in (1, args.buckets):
            result = measure(model_name, buckets, x, y, items=args.items, n=args.n, batch=args.batch,
                             epochs=args.epochs, precision=args.precision, seed=args.seed)
            one = one or result
            result["x_one_bucket"] = one["epoch_s"] / result["epoch_s"]
            print(f"  {model_name} length_buckets={buckets} {result['boundaries']}: {result['epoch_s']:.2f} s/epoch "
                  f"({result['x_one_bucket']:.2f}x), {result['positions_per_row']:.1f} positions/row, "
                  f"load {result['load_avg']}", flush=True)
            report["results"].append(result)
            out.write_text(json.dumps(report, indent=1))
    return write_final(report, out, table(report["results"]), "short-history")
