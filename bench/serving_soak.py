"""Serving soak: steady gRPC + REST load with hot swaps, reporting failed requests and RSS.

    python -m bench.serving --soak                  # 10 minutes on the fixture model
    python -m bench.serving --soak 3600 --model_dir serving_root/intentrec

The server (`python -m serving.server`, a separate process) serves a private copy of the
model's base path. ``--soak_clients`` gRPC threads and half as many REST threads send
one-user requests without pause; every ``--soak_swap_every`` seconds a new version is
pushed the way the Pusher does (copy to a temporary name, rename), every third one
corrupt, and versions older than the last two are deleted. Every ``--soak_sample_every``
seconds a line reports requests, failures, latency of the window and the server's RSS;
the summary (and ``--out`` JSON) has the RSS series and its growth. A healthy server has 0
failed requests and an RSS that levels off after the first swaps.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time

import numpy as np


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def push(base: str, version: int, src: str, corrupt: bool = False) -> None:
    tmp = os.path.join(base, f".tmp-{version}")
    shutil.copytree(src, tmp)
    if corrupt:
        with open(os.path.join(tmp, "saved_model.pb"), "wb") as f:
            f.write(b"\x08\x01 not a SavedModel \xff" * 64)
    os.rename(tmp, os.path.join(base, str(version)))


def run_soak(args, server_cls, grpc_cls, rest_cls, version_dir: str, examples, workdir: str) -> dict:
    """Runs the soak for args.soak seconds; returns the results document."""
    base = os.path.join(workdir, "soak", "intentrec")
    os.makedirs(base)
    push(base, 1, version_dir)
    server = server_cls(base, ["--file_system_poll_wait_seconds=1", "--load_retry_interval_micros=200000",
                               *args.server_arg])
    counts = {"ok": 0, "failed": 0}
    failures: list[str] = []
    window: list[float] = []
    lock = threading.Lock()
    stop = threading.Event()

    def client_loop(client, reqs):
        i = 0
        while not stop.is_set():
            t0 = time.perf_counter()
            try:
                client.call(reqs[i % len(reqs)])
                with lock:
                    counts["ok"] += 1
                    window.append(time.perf_counter() - t0)
            except Exception as e:  # noqa: BLE001 - counted and reported
                with lock:
                    counts["failed"] += 1
                    if len(failures) < 20:
                        failures.append(f"{type(e).__name__}: {str(e)[:200]}")
            i += 1

    g = grpc_cls(server.grpc)
    clients = [(g, [g.request(e) for e in examples]) for _ in range(args.soak_clients)]
    if server.rest and not args.no_rest:
        r = rest_cls(server.rest)
        clients += [(r, [r.request(e) for e in examples]) for _ in range(max(1, args.soak_clients // 2))]
    threads = [threading.Thread(target=client_loop, args=c, daemon=True) for c in clients]
    samples, pushed = [], [1]
    t_start = time.monotonic()
    next_swap = t_start + args.soak_swap_every
    try:
        for t in threads:
            t.start()
        while time.monotonic() - t_start < args.soak:
            time.sleep(min(args.soak_sample_every, max(0.0, args.soak - (time.monotonic() - t_start))))
            now = time.monotonic()
            if now >= next_swap:
                version = pushed[-1] + 1
                push(base, version, version_dir, corrupt=version % 3 == 0)
                pushed.append(version)
                for old in pushed[:-3]:
                    shutil.rmtree(os.path.join(base, str(old)), ignore_errors=True)
                next_swap = now + args.soak_swap_every
            with lock:
                lat, window[:] = np.asarray(window) * 1e3, []
                ok, failed = counts["ok"], counts["failed"]
            sample = {"t_s": round(now - t_start, 1), "requests_ok": ok, "requests_failed": failed,
                      "rss_mib": round(rss_mib(server.proc.pid), 1), "versions_pushed": len(pushed),
                      "p50_ms": float(np.percentile(lat, 50)) if lat.size else None,
                      "p99_ms": float(np.percentile(lat, 99)) if lat.size else None,
                      "loadavg": os.getloadavg()[0]}
            samples.append(sample)
            print(f"t={sample['t_s']:7.1f}s ok={ok:8d} failed={failed:4d} rss={sample['rss_mib']:8.1f} MiB "
                  f"p50={sample['p50_ms'] or float('nan'):6.2f} ms p99={sample['p99_ms'] or float('nan'):7.2f} ms "
                  f"versions={len(pushed)} load={sample['loadavg']:.1f}", flush=True)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
        server.stop()
    rss = [s["rss_mib"] for s in samples]
    return {"config": {"seconds": args.soak, "clients": len(clients), "swap_every_s": args.soak_swap_every,
                       "server_args": args.server_arg},
            "requests_ok": counts["ok"], "requests_failed": counts["failed"], "failures": failures,
            "versions_pushed": len(pushed), "samples": samples,
            "rss_mib": {"first": rss[0] if rss else None, "last": rss[-1] if rss else None,
                        "max": max(rss) if rss else None}}


def soak(args, server_cls, grpc_cls, rest_cls, version_dir, examples, workdir) -> int:
    """`python -m bench.serving --soak`: runs, prints the summary, writes the JSON; 1 on failures."""
    results = run_soak(args, server_cls, grpc_cls, rest_cls, version_dir, examples, workdir)
    r = results["rss_mib"]
    print(f"soak: {results['requests_ok']} requests OK, {results['requests_failed']} failed, "
          f"{results['versions_pushed']} versions pushed; server RSS {r['first']} -> {r['last']} MiB "
          f"(max {r['max']})")
    for f in results["failures"][:5]:
        print(f"  failure: {f}")
    if args.out:
        out = args.out.replace(".json", "_soak.json")
        os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
        with open(out, "w") as f:
            json.dump(results, f, indent=2)
        print(f"wrote {out}")
    return 1 if results["requests_failed"] else 0
