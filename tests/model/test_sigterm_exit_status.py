"""A training run killed with SIGTERM must not report success (issue 15).

`python -m model.train` on synthetic-tiny, on JAX, gets SIGTERM once it has built its
model (Keras, JAX, and TensorFlow where installed, are loaded by then: any of them
could install a handler that swallows the signal); the exit status must be the
signal's, never 0.
"""

import os
import pathlib
import signal
import subprocess
import sys
import time

REPO = pathlib.Path(__file__).resolve().parents[2]


def test_sigterm_during_training_is_not_exit_0(tmp_path):
    log = tmp_path / "train.log"
    env = {**os.environ, "KERAS_BACKEND": "jax", "PYTHONUNBUFFERED": "1"}
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "model.train", "--dataset", "synthetic-tiny", "--out", str(tmp_path / "run")],
            cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 180
        while "[model]" not in log.read_text() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert proc.poll() is None, f"the run ended before SIGTERM:\n{log.read_text()[-2000:]}"
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert code != 0, "a run killed with SIGTERM exited 0"
    assert code in (-signal.SIGTERM, 128 + signal.SIGTERM), code
