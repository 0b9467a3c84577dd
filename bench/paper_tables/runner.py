"""Training runs of the paper tables: one per (row, hyperparameters, seed), cached in `runs.jsonl`."""

from __future__ import annotations

import datetime
import hashlib
import json
import math
import os
import pathlib
import socket
import subprocess
import time

from bench.paper_tables.rows import SELECTION_METRIC, Row, build_model

REPO = pathlib.Path(__file__).resolve().parents[2]


def run_key(context: dict, row: Row, hp: dict, seed: int) -> str:
    blob = json.dumps({"context": context, "kind": row.kind, "params": row.params, "hp": hp, "seed": seed},
                      sort_keys=True, default=str)
    return hashlib.sha1(blob.encode()).hexdigest()[:16]


def load_cache(path: pathlib.Path) -> dict:
    """The runs of `runs.jsonl` by key (a later line wins)."""
    return _read_from(path, 0)[0]


def _read_from(path: pathlib.Path, offset: int) -> tuple[dict, int]:
    """(runs by key, the offset after the last complete line): a line another process is
    still writing is left for the next read."""
    cache = {}
    if not path.exists():
        return cache, offset
    with open(path, "rb") as f:
        f.seek(offset)
        data = f.read()
    end = data.rfind(b"\n") + 1
    for line in data[:end].decode().splitlines():
        if line.strip():
            record = json.loads(line)
            cache[record["key"]] = record
    return cache, offset + end


def _alive(pid) -> bool:
    """Whether process `pid` of this host runs (signal 0 only checks)."""
    try:
        pid = int(pid)
    except (TypeError, ValueError):
        return False
    if pid <= 0:  # os.kill(0 or -1, ...) would address process groups
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Claims:
    """One file per run being trained (`<cache>.claims/<key>`), so several processes on one
    results directory (one per core, or per machine on a shared disk) train each run once.

    A claim names its host and pid. A claim of a process on this host that has died is
    taken over; a claim from another host is respected until someone deletes the file.
    """

    def __init__(self, cache_path: pathlib.Path):
        self.dir = cache_path.with_name(cache_path.stem + ".claims")
        self.me = {"host": socket.gethostname(), "pid": os.getpid()}

    def take(self, key: str):
        """The claim's path if this process now holds it, else the holder's record."""
        self.dir.mkdir(parents=True, exist_ok=True)
        path = self.dir / key
        for _ in range(2):
            try:
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                try:
                    holder = json.loads(path.read_text() or "{}")
                except (OSError, ValueError):
                    holder = {}
                if holder.get("host") == self.me["host"] and not _alive(holder.get("pid")):
                    path.unlink(missing_ok=True)  # its process died: the run is free again
                    continue
                return holder or {"host": "?", "pid": "?"}
            with os.fdopen(fd, "w") as f:
                json.dump({**self.me, "since": datetime.datetime.now(datetime.timezone.utc).isoformat(
                    timespec="seconds")}, f)
            return path
        return {"host": "?", "pid": "?"}


def train_one(row, hp, seed, encoded, settings, verbose=0) -> dict:
    """One run: `row`'s model with `hp` and `seed`, trained under the `TrainConfig`
    of `settings["train"]` (the protocol shared with `model.train` and the Trainer)."""
    import keras

    from model import training

    keras.utils.clear_session()
    keras.utils.set_random_seed(seed)  # before building: the seed also fixes the initial weights
    started = time.perf_counter()
    model = build_model(row, encoded.feature_spec, hp, quick=settings.get("quick", False))
    train_cfg = training.TrainConfig(
        **{**settings["train"], "learning_rate": hp["learning_rate"], "seed": seed, "verbose": verbose}
    )
    result = training.fit_and_evaluate(model, encoded, train_cfg)
    return {
        "row": row.id, "seed": seed, "hp": hp,
        "val": result["val"], "test": result["test"],
        "best_epoch": result["best_epoch"], "epochs_run": result["epochs_run"],
        "train_seconds": result["train_seconds"], "wall_seconds": time.perf_counter() - started,
        "params": int(model.count_params()),
        "val_curve": [h.get(f"val_{SELECTION_METRIC}") for h in result["history"]],
    }


class Runner:
    """Runs (or takes from the cache) one training run per (row, hp, seed)."""

    def __init__(self, encoded, settings, context, cache_path, fresh, log, verbose=0, report_only=False,
                 aliases=()):
        """``aliases``: older spellings of ``context`` whose cached runs are the same runs
        (looked up after ``context``; new runs are stored under ``context``)."""
        self.encoded, self.settings, self.context = encoded, settings, context
        self.aliases = [a for a in aliases if a != context]
        self.cache_path = cache_path
        # --fresh ignores the runs already in the file, not those other processes add from now on.
        self._offset = cache_path.stat().st_size if fresh and cache_path.exists() else 0
        self.cache = {}
        self.refresh()
        self.claims = Claims(cache_path)
        self.log = log
        self.verbose = verbose
        self.report_only = report_only
        self.git = git_state()
        self._first_stop_epoch = None
        self._left = set()  # runs left to another process (logged once each)

    def refresh(self):
        """Take in the runs that other processes appended to the cache since the last read."""
        new, self._offset = _read_from(self.cache_path, self._offset)
        self.cache.update(new)

    def lookup(self, row: Row, hp: dict, seed: int):
        for context in (self.context, *self.aliases):
            record = self.cache.get(run_key(context, row, hp, seed))
            if record is not None:
                return record
        return None

    def stale(self, record: dict):
        """Why today's stopping rules would not have ended `record` where it ended (None if
        they would): such a cached run is trained again."""
        from model import training

        cfg = training.TrainConfig(**self.settings["train"])
        if self._first_stop_epoch is None:
            self._first_stop_epoch = training.first_stop_epoch(self.encoded.train, cfg)
        return training.stale_stop(record, cfg, self._first_stop_epoch)

    def __call__(self, row: Row, hp: dict, seed: int):
        key = run_key(self.context, row, hp, seed)
        self.refresh()
        cached = self.lookup(row, hp, seed)
        if self.report_only:
            return cached  # an invalid or stale run is reported as such
        if cached is not None and not invalid_reason(cached):  # an invalid run is trained again
            stale = self.stale(cached)
            if not stale:
                return cached
            self.log(f"  [{row.id}] seed={seed}: the cached run {stale}: trained again")
        claim = self.claims.take(key)
        if not isinstance(claim, pathlib.Path):
            if key in self._left:
                return None  # already said; a caller may poll the run
            self._left.add(key)
            self.log(f"  [{row.id}] seed={seed}: being trained by pid {claim.get('pid')} on {claim.get('host')} "
                     f"(claim in {self.claims.dir}): left to it")
            return None
        try:
            return self._train(row, hp, seed, key)
        finally:
            claim.unlink(missing_ok=True)

    def _train(self, row: Row, hp: dict, seed: int, key: str):
        self.log(f"  [{row.id}] lr={hp['learning_rate']:g} dropout={hp['dropout']:g} width={hp.get('d_model', 64)} "
                 f"seed={seed} ...")
        record = train_one(row, hp, seed, self.encoded, self.settings, self.verbose)
        record.update(key=key, commit=self.git["commit"], dirty=self.git["dirty"],
                      finished=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"))
        self.log(f"    val ndcg@10={record['val']['ndcg@10']:.4f} test ndcg@10={record['test']['ndcg@10']:.4f} "
                 f"(best epoch {record['best_epoch']}/{record['epochs_run']}, {record['wall_seconds']:.0f}s)")
        if invalid_reason(record):
            self.log(f"    INVALID run, excluded from the tables: {invalid_reason(record)}")
        self.cache[key] = record
        # One write of one line in append mode: lines of several processes do not interleave.
        with open(self.cache_path, "ab") as f:
            f.write((json.dumps(record, default=float) + "\n").encode())
        return record


def invalid_reason(record: dict):
    """Why a finished run cannot be used (None if it can).

    A validation metric outside [0, 1] means the evaluation produced a negative
    rank (model/evaluation.py subtracts the history items that score above the
    target, scored by a second matmul; where the two disagree in the last bits,
    e.g. TF32 on a GPU, a top-ranked target gets rank -1 and NDCG = inf). Early
    stopping then keeps that epoch as the best one, so the run's selection is void.
    """
    for epoch, value in enumerate(record.get("val_curve") or [], start=1):
        if value is None or not math.isfinite(value) or not 0.0 <= value <= 1.0:
            return f"validation NDCG@10 = {value} at epoch {epoch}"
    for split in ("val", "test"):
        for metric, value in record.get(split, {}).items():
            if metric != "num_users" and (value is None or not math.isfinite(value) or value < 0.0 or value > 1.0):
                return f"{split} {metric} = {value}"
    return None




def git_state() -> dict:
    def git(*args):
        try:
            return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=30).stdout
        except (OSError, subprocess.SubprocessError):
            return ""

    # The runner's own outputs (results/) are not code: they must not mark a run dirty.
    # Porcelain lines are "XY path"; X is a space for a change not staged, so the output
    # must not be stripped before the path is cut out.
    changed = [line for line in git("status", "--porcelain").splitlines() if line[3:] and not line[3:].startswith("results/")]
    return {"commit": git("rev-parse", "HEAD").strip() or "unknown", "dirty": bool(changed)}


