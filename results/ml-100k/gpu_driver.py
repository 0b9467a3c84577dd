"""Device driver: runs bench.paper_tables jobs (one row each) in parallel, merging runs.jsonl into $OUT."""
import glob, json, os, subprocess, sys, time

OUT = os.environ["OUT"]
WORK = "/tmp/devwork"
os.makedirs(WORK, exist_ok=True)
PARALLEL = int(os.environ.get("PARALLEL", "8"))
DEADLINE = float(os.environ.get("DEADLINE", "520"))  # seconds from start: kill everything
STOP_LAUNCH = float(os.environ.get("STOP_LAUNCH", "430"))
SEEDS = os.environ.get("SEEDS", "3")
ROWS = ["v3", "v3_month", "v3_only_action_type", "v3_only_genre", "v3_only_release_bucket", "v3_only_item_type",
        "v2", "v1", "v0", "transact", "bert4rec", "transformer", "sasrec", "gru", "lstm"]
DATASETS = os.environ.get("DATASETS", "ml-100k,synthetic-small").split(",")
ROWS_OF = {"ml-100k": [r for r in ROWS if r != "v3_only_item_type"], "synthetic-small": ROWS}
jobs = [(d, r) for d in DATASETS for r in ROWS_OF[d]]
t0 = time.time()
env = dict(os.environ, KERAS_BACKEND="jax", XLA_PYTHON_CLIENT_PREALLOCATE="false", PYTHONUNBUFFERED="1",
           INTENTREC_DATA_DIR=os.path.abspath(".devrun/data"))
running = {}

def merge():
    for d in DATASETS:
        lines = {}
        for f in glob.glob(f"{WORK}/{d}__*/{d}/runs.jsonl"):
            for line in open(f):
                if line.strip():
                    rec = json.loads(line)
                    lines[rec["key"]] = line.strip()
        with open(f"{OUT}/{d}.runs.jsonl", "w") as fh:
            fh.write("\n".join(lines.values()) + ("\n" if lines else ""))

log = open(f"{OUT}/drive.log", "w")
def say(msg):
    log.write(f"[{time.time() - t0:6.0f}s] {msg}\n"); log.flush(); print(msg, flush=True)

last_merge = 0
while jobs or running:
    now = time.time() - t0
    for key, (p, fh) in list(running.items()):
        if p.poll() is not None:
            say(f"done {key} rc={p.returncode}")
            del running[key]
    while jobs and len(running) < PARALLEL and now < STOP_LAUNCH:
        d, r = jobs.pop(0)
        out = f"{WORK}/{d}__{r}"
        fh = open(f"{WORK}/{d}__{r}.log", "w")
        cmd = [sys.executable, "-c", "import sys; from bench import paper_tables; paper_tables.main(sys.argv[1:])",
               "--dataset", d, "--rows", r, "--seeds", SEEDS, "--grid", "none", "--out", out]
        running[(d, r)] = (subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env), fh)
        say(f"start {d} {r}")
    if now >= STOP_LAUNCH and jobs:
        say(f"not started: {jobs}"); jobs = []
    if now > DEADLINE:
        for key, (p, fh) in running.items():
            p.kill(); say(f"killed {key}")
        running = {}
    if time.time() - last_merge > 15:
        merge(); last_merge = time.time()
    time.sleep(2)
merge()
# Compact logs: the per-epoch lines of every job.
with open(f"{OUT}/jobs.log", "w") as fh:
    for f in sorted(glob.glob(f"{WORK}/*.log")):
        fh.write(f"===== {os.path.basename(f)}\n")
        for line in open(f, errors="replace"):
            if not line.startswith("20") and "Warning" not in line and "warn" not in line:
                fh.write(line)
say("all done")
