"""The printed table of a grid run: one row per case, with the speed-up over the
naive steps of the same model and shape measured in the same run."""

from __future__ import annotations

import json

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


def write_final(report: dict, out, table_text: str, tag: str) -> dict:
    """Stores the printed table in the report, writes it as JSON to `out` and prints the table."""
    report["table"] = table_text
    out.write_text(json.dumps(report, indent=1))
    print(table_text)
    print(f"[{tag}] wrote {out}")
    return report
