"""Serving latency/throughput: in-process SavedModel call vs our server over gRPC and REST.

    python -m bench.serving                          # fixture model: n=200, 3,706 items
    python -m bench.serving --model_dir serving_root/intentrec   # the pushed model
    python -m bench.serving --quick                  # CI smoke run (few requests)
    python -m bench.serving --soak [SECONDS]         # failed requests and RSS under swaps

One run measures, on the same machine and model:

- ``inprocess``: the floor — ``loaded.signatures["serving_default"](examples=...)`` plus
  ``.numpy()`` of every output, in this process (``inprocess_flat``: the same through the
  flat call path our server uses);
- ``grpc``: Predict through ``python -m serving.server`` (a separate process) at
  concurrency 1, 8 and 32 (client threads sharing one channel);
- ``rest``: the same request over TF Serving's REST API (b64 tf.Example, keep-alive).

At concurrency 1 the three are measured in interleaved rounds so that machine noise hits
them alike. Prints a table, writes JSON (``--out``) and the ratios server p50 / in-process
p50 (targets: gRPC p99 <= 20 ms and ratio <= 1.3 at concurrency 1).
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import platform
import select
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
P99_TARGET_MS = 20.0
RATIO_TARGET = 1.3


def _read_or_none(path: str):
    if not path:
        return None
    with open(path, encoding="utf-8") as f:
        return f.read().strip()


def stats(samples_s, wall_s=None) -> dict:
    a = np.asarray(samples_s) * 1e3
    out = {"n": int(a.size)}
    if a.size:
        out.update(p50_ms=float(np.percentile(a, 50)), p90_ms=float(np.percentile(a, 90)),
                   p99_ms=float(np.percentile(a, 99)), mean_ms=float(a.mean()), min_ms=float(a.min()))
    if wall_s:
        out["throughput_rps"] = float(a.size / wall_s)
    return out


# --- model & requests ----------------------------------------------------------------------
def prepare_model(args, workdir: str) -> tuple[str, str]:
    """(base path to serve, version dir) — building the fixture when no model is given."""
    from serving import contract

    if args.model_dir:
        d = os.path.abspath(args.model_dir)
        if os.path.exists(os.path.join(d, contract.SAVED_MODEL_PB)):  # a version dir
            base = os.path.join(workdir, "model")
            os.makedirs(base)
            os.symlink(d, os.path.join(base, "1"))
            return base, d
        from serving.versions import latest_version

        version = latest_version(d)
        if version is None:
            raise SystemExit(f"{d}: no numeric version directories")
        return d, os.path.join(d, str(version))
    try:  # test scaffolding: present in a checkout, not in an installed package
        from tests.fixtures.serving_model import build_fixture_model
    except ImportError:
        raise SystemExit("the fixture model lives in tests/fixtures/serving_model.py: run from a "
                         "checkout, or pass --model_dir") from None

    version_dir = os.path.join(workdir, "model", "1")
    t = time.perf_counter()
    build_fixture_model(version_dir, num_items=args.num_items, history_length=args.history)
    print(f"built fixture model ({args.num_items} items, n={args.history}) in "
          f"{time.perf_counter() - t:.1f}s", file=sys.stderr)
    return os.path.dirname(version_dir), version_dir


def make_examples(version_dir: str, n_users: int, length: int, seed: int = 0) -> list[bytes]:
    """Random full-length histories over the model's catalogue (from its metadata)."""
    from serving import contract
    from serving.examples import make_example

    meta = contract.read_metadata(version_dir) or {}
    items = list(meta.get(contract.META_ITEM_TITLES) or [])
    vocab = os.path.join(version_dir, "assets", "item")  # the TFT item vocabulary, if exported
    if not items and os.path.isfile(vocab):
        with open(vocab, encoding="utf-8", errors="replace") as f:
            items = [line.strip() for line in f if line.strip()]
    items = items or [str(i) for i in range(1, 3707)]
    features = meta.get(contract.META_EXAMPLE_FEATURES) or {"action_type": "bytes"}
    labels = meta.get(contract.META_INTENT_LABELS) or {}
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_users):
        ids = [items[i] for i in rng.integers(0, len(items), size=length)]
        ts = [978_300_000 + 3600 * j for j in range(length)]
        md = {}
        for name, kind in features.items():
            if name in (contract.EXAMPLE_ITEM_ID, contract.EXAMPLE_TIMESTAMP):
                continue
            if kind == "bytes":
                vocab = [v for v in labels.get(name, []) if not v.startswith("<")] or ["x"]
                md[name] = [vocab[i] for i in rng.integers(0, len(vocab), size=length)]
            elif kind == "int64":
                md[name] = [int(v) for v in rng.integers(0, 10, size=length)]
            else:
                md[name] = [float(v) for v in rng.random(length)]
        out.append(make_example(ids, ts, md, feature_types=features).SerializeToString())
    return out


# --- server subprocess -------------------------------------------------------------------------
class Server:
    def __init__(self, base: str, extra_args=(), timeout: float = 300.0):
        cmd = [sys.executable, "-m", "serving.server", f"--model_base_path={base}",
               "--model_name=intentrec", "--port=0", "--rest_api_port=-1",
               "--log_level=WARNING", *extra_args]
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1")
        self.log = tempfile.NamedTemporaryFile("w+", suffix=".log", delete=False)
        self.proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=self.log, env=env)
        deadline = time.monotonic() + timeout
        buf = b""
        self.grpc = self.rest = None
        while self.grpc is None:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.log.seek(0)
                raise SystemExit(f"server did not start:\n{self.log.read()[-3000:]}")
            r, _, _ = select.select([self.proc.stdout], [], [], 1.0)
            if r:
                buf += os.read(self.proc.stdout.fileno(), 4096)
                for line in buf.decode(errors="replace").splitlines():
                    if line.startswith("READY "):
                        parts = dict(p.split("=", 1) for p in line.split()[1:])
                        self.grpc = parts["grpc"]
                        self.rest = parts["rest"] if parts["rest"] != "disabled" else None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()
        self.log.close()
        os.unlink(self.log.name)


# --- clients -----------------------------------------------------------------------------------
class GrpcClient:
    def __init__(self, address: str):
        import grpc
        from tensorflow_serving.apis import prediction_service_pb2_grpc

        self.channel = grpc.insecure_channel(address, options=[
            ("grpc.max_receive_message_length", 64 << 20)])
        self.stub = prediction_service_pb2_grpc.PredictionServiceStub(self.channel)

    def request(self, example: bytes):
        from tensorflow_serving.apis import predict_pb2

        req = predict_pb2.PredictRequest()
        req.model_spec.name = "intentrec"
        req.model_spec.signature_name = "serving_default"
        t = req.inputs["examples"]
        t.dtype = 7  # DT_STRING
        t.tensor_shape.dim.add(size=1)
        t.string_val.append(example)
        return req

    def call(self, req):
        return self.stub.Predict(req, timeout=60)


class RestClient:
    """One keep-alive HTTP connection per thread."""

    def __init__(self, address: str):
        self.host, port = address.rsplit(":", 1)
        self.port = int(port)
        self._local = threading.local()

    def request(self, example: bytes) -> bytes:
        return json.dumps({"instances": [{"b64": base64.b64encode(example).decode()}]}).encode()

    def call(self, body: bytes):
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
        conn.request("POST", "/v1/models/intentrec:predict", body,
                     {"Content-Type": "application/json"})
        resp = conn.getresponse()
        data = resp.read()
        if resp.status != 200:
            raise RuntimeError(f"REST {resp.status}: {data[:200]!r}")
        return data


def timed_calls(fn, reqs, n: int) -> list[float]:
    out = []
    for i in range(n):
        r = reqs[i % len(reqs)]
        t = time.perf_counter()
        fn(r)
        out.append(time.perf_counter() - t)
    return out


def run_concurrent(fn, reqs, concurrency: int, total: int) -> tuple[list[float], float, int]:
    per = max(1, total // concurrency)
    lat = [[] for _ in range(concurrency)]
    errors = [0]
    barrier = threading.Barrier(concurrency + 1)

    def worker(i):
        barrier.wait()
        for j in range(per):
            r = reqs[(i * per + j) % len(reqs)]
            t = time.perf_counter()
            try:
                fn(r)
            except Exception:  # noqa: BLE001 - counted
                errors[0] += 1
                continue
            lat[i].append(time.perf_counter() - t)

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(concurrency)]
    for t in threads:
        t.start()
    barrier.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    return [x for l in lat for x in l], wall, errors[0]


def server_tensorflow_settings(server_args) -> tuple[int, int, str]:
    """(intra, inter, session config file): the TensorFlow runtime settings the server gets
    from `server_args` (the server's own parser)."""
    from serving.flags import build_parser

    known, _ = build_parser().parse_known_args(list(server_args))
    return (known.tensorflow_intra_op_parallelism, known.tensorflow_inter_op_parallelism,
            known.tensorflow_session_config_file)


# --- main ----------------------------------------------------------------------------------------
def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model_dir", default=None, help="a model base path or version dir (default: "
                   "build the fixture)")
    p.add_argument("--num_items", type=int, default=3706)
    p.add_argument("--history", type=int, default=200)
    p.add_argument("--requests", type=int, default=600, help="requests per concurrency-1 measurement")
    p.add_argument("--load_requests", type=int, default=1600, help="requests per concurrency > 1 run")
    p.add_argument("--rounds", type=int, default=4, help="interleaved rounds at concurrency 1")
    p.add_argument("--warmup", type=int, default=300,
                   help="untimed calls per mode first (with 30, the server's handler time, logged per "
                        "call, was 15-50%% higher in the first measured round than in later ones, which "
                        "biased its p50 upwards)")
    p.add_argument("--concurrency", default="1,8,32")
    p.add_argument("--no_rest", action="store_true")
    p.add_argument("--batching", action="store_true",
                   help="also run the concurrency > 1 gRPC loads against a server with --enable_batching")
    p.add_argument("--server_arg", action="append", default=[], help="extra server flag (repeatable)")
    p.add_argument("--quick", action="store_true", help="few requests (CI smoke run)")
    p.add_argument("--soak", type=float, nargs="?", const=600.0, default=None, metavar="SECONDS",
                   help="instead: a soak under steady load with hot swaps (bench/serving_soak.py)")
    p.add_argument("--soak_clients", type=int, default=4)
    p.add_argument("--soak_swap_every", type=float, default=30.0)
    p.add_argument("--soak_sample_every", type=float, default=10.0)
    p.add_argument("--out", default="results/serving_bench.json")
    args = p.parse_args(argv)
    if args.quick:
        args.requests, args.load_requests, args.rounds, args.warmup = 60, 96, 2, 30
        if not args.model_dir:
            args.num_items = min(args.num_items, 500)
    conc = sorted({int(c) for c in args.concurrency.split(",") if c.strip()})

    import tensorflow as tf

    # The floor runs the model under the server's TensorFlow thread pools, so the ratio
    # measures what the server adds, not a thread setting (at batch 1 one intra-op thread
    # is faster than two on this model: docs/serving.md).
    tf_settings = server_tensorflow_settings(args.server_arg)
    from serving.server import configure_tensorflow

    configure_tensorflow(*tf_settings)
    workdir = tempfile.mkdtemp(prefix="serving_bench_")
    server = batch_server = None
    try:
        base, version_dir = prepare_model(args, workdir)
        examples = make_examples(version_dir, 64, args.history)
        if args.soak:
            from bench.serving_soak import soak

            return soak(args, Server, GrpcClient, RestClient, version_dir, examples, workdir)
        server = Server(base, args.server_arg)
        loaded = tf.saved_model.load(version_dir)
        fn = loaded.signatures["serving_default"]

        def inprocess(ex):
            out = fn(examples=tf.constant([ex]))
            return {k: v.numpy() for k, v in out.items()}

        from serving.model_manager import ServableVersion

        sv = ServableVersion("intentrec", 1, version_dir)
        sv.load()
        sig = sv.signatures["serving_default"]

        def inprocess_flat(ex):
            return sig.run({"examples": np.array([ex], dtype=object)}, sig.output_names)

        g = GrpcClient(server.grpc)
        greqs = [g.request(e) for e in examples]
        rest = RestClient(server.rest) if (server.rest and not args.no_rest) else None
        rreqs = [rest.request(e) for e in examples] if rest else []

        modes = {"inprocess": (inprocess, examples), "inprocess_flat": (inprocess_flat, examples),
                 "grpc": (g.call, greqs)}
        if rest:
            modes["rest"] = (rest.call, rreqs)
        for name, (f, reqs) in modes.items():
            timed_calls(f, reqs, args.warmup)
        samples = {m: [] for m in modes}
        per_round = max(1, args.requests // args.rounds)
        for _ in range(args.rounds):
            for m, (f, reqs) in modes.items():
                samples[m] += timed_calls(f, reqs, per_round)
        results = {"config": {
            "model_dir": args.model_dir or "fixture", "num_items": args.num_items if not args.model_dir else None,
            "history": args.history, "requests_c1": per_round * args.rounds, "rounds": args.rounds,
            "load_requests": args.load_requests, "server_args": args.server_arg,
            "tensorflow_threads_intra_inter": list(tf_settings[:2]),
            "tensorflow_session_config": _read_or_none(tf_settings[2]), "quick": args.quick,
            "cpu_count": os.cpu_count(), "machine": platform.machine(), "python": platform.python_version(),
            "tensorflow": tf.__version__, "loadavg_start": os.getloadavg()}, "runs": []}
        for m in modes:
            results["runs"].append({"mode": m, "concurrency": 1, **stats(samples[m])})

        def loads(label, client, reqs):
            for c in conc:
                if c == 1:
                    continue
                lat, wall, errs = run_concurrent(client.call, reqs, c, args.load_requests)
                results["runs"].append({"mode": label, "concurrency": c, "errors": errs,
                                        **stats(lat, wall)})

        # Throughput at concurrency 1 too (sequential: 1 / mean latency).
        for run in results["runs"]:
            run.setdefault("throughput_rps", 1e3 / run["mean_ms"] if run.get("mean_ms") else None)
        loads("grpc", g, greqs)
        if rest:
            loads("rest", rest, rreqs)
        g.channel.close()
        if args.batching:
            server.stop()
            server = None
            batch_server = Server(base, ["--enable_batching", "--max_batch_size=32", *args.server_arg])
            gb = GrpcClient(batch_server.grpc)
            timed_calls(gb.call, greqs, args.warmup)
            loads("grpc_batching", gb, [gb.request(e) for e in examples])
            gb.channel.close()

        c1 = {r["mode"]: r for r in results["runs"] if r["concurrency"] == 1}
        floor = c1["inprocess"]["p50_ms"]
        ratios = {f"{m}_p50_over_inprocess_p50": c1[m]["p50_ms"] / floor for m in c1 if m != "inprocess"}
        ratios["grpc_p50_over_inprocess_flat_p50"] = c1["grpc"]["p50_ms"] / c1["inprocess_flat"]["p50_ms"]
        results["ratios"] = ratios
        results["targets"] = {
            "grpc_c1_p99_ms": c1["grpc"]["p99_ms"], "grpc_c1_p99_target_ms": P99_TARGET_MS,
            "grpc_c1_p99_ok": c1["grpc"]["p99_ms"] <= P99_TARGET_MS,
            "grpc_ratio": ratios["grpc_p50_over_inprocess_p50"], "ratio_target": RATIO_TARGET,
            "grpc_ratio_ok": ratios["grpc_p50_over_inprocess_p50"] <= RATIO_TARGET,
        }
        results["config"]["loadavg_end"] = os.getloadavg()
        print_table(results)
        if args.out:
            os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
            with open(args.out, "w") as f:
                json.dump(results, f, indent=2)
            print(f"wrote {args.out}")
        return 0
    finally:
        for s in (server, batch_server):
            if s is not None:
                s.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def print_table(results: dict) -> None:
    cfg = results["config"]
    print(f"\nserving benchmark — model {cfg['model_dir']}, history n={cfg['history']}, "
          f"{cfg['cpu_count']} cores, load avg {cfg['loadavg_start'][0]:.1f}")
    print(f"{'mode':<16}{'conc':>5}{'n':>7}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}{'req/s':>9}{'err':>5}")
    for r in results["runs"]:
        print(f"{r['mode']:<16}{r['concurrency']:>5}{r['n']:>7}{r.get('p50_ms', float('nan')):>9.2f}"
              f"{r.get('p90_ms', float('nan')):>9.2f}{r.get('p99_ms', float('nan')):>9.2f}"
              f"{(r.get('throughput_rps') or float('nan')):>9.0f}{r.get('errors', 0):>5}")
    for k, v in results["ratios"].items():
        print(f"{k}: {v:.2f}")
    t = results["targets"]
    print(f"gRPC c=1 p99 {t['grpc_c1_p99_ms']:.2f} ms (target <= {t['grpc_c1_p99_target_ms']:.0f}: "
          f"{'ok' if t['grpc_c1_p99_ok'] else 'MISSED'}); p50 ratio {t['grpc_ratio']:.2f} "
          f"(target <= {t['ratio_target']}: {'ok' if t['grpc_ratio_ok'] else 'MISSED'})")


if __name__ == "__main__":
    sys.exit(main())
