"""`python -m bench.train_speed`: the grid run (a case at a time, with a time budget and
a per-case cap, JSON rewritten after every case), and the dispatch to the companion
runs (`accuracy`, `short-history`)."""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import pathlib
import signal
import sys
import time

import keras

from bench.train_speed.accuracy import accuracy_main
from bench.train_speed.cases import MODES, Case, grid
from bench.train_speed.measure import device_kind, environment, matmul_peak, run_case
from bench.train_speed.report import BASELINES, table, write_final
from bench.train_speed.short_history import short_history_main
from model.transformer_encoder import set_flash_attention


class CaseTimeout(Exception):
    pass


def _on_alarm(signum, frame):
    raise CaseTimeout("per-case time cap")


def estimated_full_bytes(case: Case) -> float:
    """Memory the naive full-softmax head needs for its logits (+ their gradient)."""
    return 2 * 4.0 * case.batch * case.n * case.items


def main(argv=None) -> dict:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["accuracy"]:
        return accuracy_main(argv[1:])
    if argv[:1] == ["short-history"]:
        return short_history_main(argv[1:])
    p = argparse.ArgumentParser(prog="python -m bench.train_speed", description=sys.modules[__package__].__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
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
    return write_final(report, out, table(report["results"]), "train_speed")
