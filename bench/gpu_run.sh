#!/usr/bin/env bash
# The GPU run of issue 7 in ONE device call (docs/performance.md):
#
#   run(command="bash bench/gpu_run.sh", carry=[".whl"], timeout_s=480)
#
# The device machine has JAX (0.11, CUDA) but no TensorFlow and no Keras: Keras
# 3.12.4 (the version requirements.txt pins), namex and optree travel as cp312 wheels in .whl/ (ignored by git via
# .git/info/exclude; fetch them with the `pip download` line in
# docs/performance.md). Installs them with --no-deps, checks that the bench's
# import path pulls in no TensorFlow, runs `bench.train_speed --grid gpu` with a
# time budget (no new case after BUDGET s, one case capped at CASE_S s) and writes
# the JSON and the log under $OUT. Finishes in about BUDGET + 90 s.
# If the pinned Keras cannot run on the machine's JAX at all (no case measured), it
# retries the first cases with another Keras wheel in .whl/alt/, if present.
#
# Locally (JAX CPU, tiny shapes) the same logic runs with
#   OUT=/tmp/gpu_out GRID=quick STEPS=2 BUDGET=60 PY=/path/to/python3.12 bash bench/gpu_run.sh
set -u
# A bench killed by a signal or a timeout must not look like a success behind `| tee`.
set -o pipefail
status=0
OUT=${OUT:-/tmp/gpu_run_out}
GRID=${GRID:-gpu}
STEPS=${STEPS:-20}
BUDGET=${BUDGET:-250}
CASE_S=${CASE_S:-100}
PY=${PY:-python3}
mkdir -p "$OUT"
t0=$(date +%s)
log() { echo "[gpu_run +$(( $(date +%s) - t0 ))s] $*"; }

(nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.max.sm,temperature.gpu,power.draw \
  --format=csv 2>&1 || echo "no nvidia-smi") | tee "$OUT/gpu.txt"

install() {  # $1: folder of wheels
  rm -rf /tmp/site && "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site "$1"/*.whl
}
install .whl || { log "wheel install failed"; exit 3; }
export PYTHONPATH=/tmp/site:$PWD
export KERAS_BACKEND=jax PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_MEM_FRACTION=0.92 TF_CPP_MIN_LOG_LEVEL=2

"$PY" - <<'EOF' 2>&1 | tee "$OUT/env.txt"
import sys
import jax, keras
import bench.train_speed  # noqa: F401  (model/ and the bench: no TensorFlow)
print("python", sys.version.split()[0], "keras", keras.__version__, "jax", jax.__version__, jax.devices())
print("imported: tensorflow", "tensorflow" in sys.modules, "pandas", "pandas" in sys.modules,
      "torch", "torch" in sys.modules)
EOF

bench() {  # $1: JSON name, $2: time budget
  timeout $(( $2 + CASE_S + 60 )) "$PY" -m bench.train_speed --grid "$GRID" --steps "$STEPS" \
    --time-budget "$2" --case-timeout "$CASE_S" --out "$OUT/$1" 2>&1 | { grep -v "^WARNING: All log messages" || true; } \
    | tee -a "$OUT/log.txt"
  local rc=$?
  [ "$rc" -eq 0 ] || { log "bench exited with status $rc"; status=$rc; }
}
log "bench start"
bench train_speed_h100.json "$BUDGET"
measured=$("$PY" -c "import json,sys; r=json.load(open(sys.argv[1]))['results']; print(sum('step_ms' in x for x in r))" \
  "$OUT/train_speed_h100.json" 2>/dev/null || echo 0)
log "cases measured: $measured"
if [ "$measured" = "0" ] && ls .whl/alt/*.whl >/dev/null 2>&1; then
  log "nothing measured with $(ls .whl/keras-*.whl 2>/dev/null): retrying with .whl/alt"
  mkdir -p /tmp/whl_alt && cp .whl/*.whl /tmp/whl_alt/ && rm -f /tmp/whl_alt/keras-*.whl && cp .whl/alt/*.whl /tmp/whl_alt/
  install /tmp/whl_alt && export PYTHONPATH=/tmp/site:$PWD
  left=$(( BUDGET - ($(date +%s) - t0) ))
  bench train_speed_h100_alt.json $(( left > 60 ? left : 60 ))
fi
log "done (exit status $status)"
exit "$status"
