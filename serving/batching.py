"""Server-side micro-batching of concurrent Predict calls (TF Serving's batching knobs).

Concurrent requests for the same version, signature, output set and per-example input
shape (dims 1..) are concatenated along dimension 0, run once, and the outputs split
back. A batch closes when it reaches ``max_batch_size`` or when its oldest request has
waited ``batch_timeout_micros``; with a 0 timeout (TF Serving's default) a batch is
whatever queued while the batch threads were busy, so a lone request never waits.
``num_batch_threads`` batches run at once. A request larger than ``max_batch_size`` runs
alone (as with TF Serving's large-batch splitting, without splitting). If a merged batch
fails, its requests are re-run one by one so that one bad request (e.g. a corrupt
tf.Example) fails alone.
"""

from __future__ import annotations

import collections
import logging
import os
import threading
import time
from typing import Callable, Hashable, Mapping

import grpc
import numpy as np

from serving.errors import ServingError

log = logging.getLogger(__name__)


class _Task:
    __slots__ = ("inputs", "size", "runner", "deadline", "t", "done", "result", "error")

    def __init__(self, inputs, size, runner, deadline=None):
        self.inputs = inputs
        self.size = size
        self.runner = runner
        self.deadline = deadline
        self.t = time.monotonic()
        self.done = threading.Event()
        self.result = None
        self.error = None


class Batcher:
    def __init__(
        self,
        *,
        max_batch_size: int = 1000,
        batch_timeout_micros: int = 0,
        num_batch_threads: int | None = None,
        max_enqueued_batches: int = 10,
    ):
        if max_batch_size < 1:
            raise ValueError("max_batch_size must be >= 1")
        self.max_batch_size = int(max_batch_size)
        self.timeout = max(0, int(batch_timeout_micros)) / 1e6
        self.num_batch_threads = int(num_batch_threads or os.cpu_count() or 1)
        self.max_enqueued = int(max_enqueued_batches) * self.max_batch_size
        self._cv = threading.Condition()
        self._queues: dict[Hashable, collections.deque] = {}
        self._sizes: dict[Hashable, int] = {}
        self._closed = False
        self.batches_run = 0
        self.tasks_run = 0
        self._threads = [
            threading.Thread(target=self._worker, name=f"batch-{i}", daemon=True)
            for i in range(self.num_batch_threads)
        ]
        for t in self._threads:
            t.start()

    def run(self, key: Hashable, inputs: Mapping[str, np.ndarray], size: int,
            runner: Callable[[Mapping[str, np.ndarray]], dict], deadline: float | None = None) -> dict:
        """Queues the request, waits for its batch; returns its outputs (or raises).
        A task whose ``deadline`` (time.monotonic()) passed while queued is not run."""
        task = _Task(inputs, size, runner, deadline)
        with self._cv:
            if self._closed:
                raise ServingError(grpc.StatusCode.UNAVAILABLE, "Server is shutting down")
            if self._sizes.get(key, 0) + size > self.max_enqueued and self._sizes.get(key, 0):
                raise ServingError(grpc.StatusCode.UNAVAILABLE,
                                   "The batch scheduling queue to which this task was submitted is full")
            q = self._queues.get(key)
            if q is None:
                q = self._queues[key] = collections.deque()
                self._sizes[key] = 0
            q.append(task)
            self._sizes[key] += size
            self._cv.notify()
        task.done.wait()
        if task.error is not None:
            raise task.error
        return task.result

    def close(self, timeout: float | None = 10.0) -> None:
        """Runs what is queued, then stops the batch threads."""
        with self._cv:
            self._closed = True
            self._cv.notify_all()
        for t in self._threads:
            t.join(timeout)

    # --- batch threads -----------------------------------------------------------------------
    def _next_batch(self):
        """Under the lock: the tasks of a ready batch, or (None, seconds to wait)."""
        now = time.monotonic()
        best_key, best_t, wait = None, None, None
        for key, q in self._queues.items():
            oldest = q[0].t
            ready = (self._closed or self.timeout == 0 or self._sizes[key] >= self.max_batch_size
                     or now - oldest >= self.timeout)
            if ready:
                if best_t is None or oldest < best_t:
                    best_key, best_t = key, oldest
            else:
                w = oldest + self.timeout - now
                wait = w if wait is None else min(wait, w)
        if best_key is None:
            return None, wait
        q = self._queues[best_key]
        tasks = [q.popleft()]
        total = tasks[0].size
        while q and total + q[0].size <= self.max_batch_size:
            t = q.popleft()
            tasks.append(t)
            total += t.size
        self._sizes[best_key] -= total
        if not q:
            del self._queues[best_key]
            del self._sizes[best_key]
        return tasks, None

    def _worker(self):
        while True:
            with self._cv:
                while True:
                    tasks, wait = self._next_batch()
                    if tasks is not None:
                        break
                    if self._closed and not self._queues:
                        return
                    self._cv.wait(wait)
            self._execute(tasks)

    def _execute(self, tasks):
        now = time.monotonic()
        expired = [t for t in tasks if t.deadline is not None and t.deadline <= now]
        for t in expired:
            t.error = ServingError(grpc.StatusCode.DEADLINE_EXCEEDED,
                                   "Deadline exceeded while waiting in the batch queue")
            t.done.set()
        if expired:
            tasks = [t for t in tasks if t not in expired]
            if not tasks:
                return
        self.batches_run += 1
        self.tasks_run += len(tasks)
        if len(tasks) == 1:
            self._run_one(tasks[0])
            return
        try:
            names = list(tasks[0].inputs)
            merged = {n: np.concatenate([t.inputs[n] for t in tasks]) for n in names}
            outputs = tasks[0].runner(merged)
            total = sum(t.size for t in tasks)
            for name, arr in outputs.items():
                if arr.ndim == 0 or arr.shape[0] != total:
                    raise ServingError(grpc.StatusCode.INTERNAL,
                                       f"batched output {name!r} has shape {arr.shape}, expected "
                                       f"dimension 0 = {total}")
        except Exception:  # noqa: BLE001 - fall back to running each request alone
            for t in tasks:
                self._run_one(t)
            return
        start = 0
        for t in tasks:
            end = start + t.size
            t.result = {name: arr[start:end] for name, arr in outputs.items()}
            start = end
            t.done.set()

    @staticmethod
    def _run_one(task):
        try:
            task.result = task.runner(task.inputs)
        except ServingError as e:
            task.error = e
        except Exception as e:  # noqa: BLE001
            log.exception("batch task failed")
            task.error = ServingError(grpc.StatusCode.INTERNAL, f"{type(e).__name__}: {e}")
        finally:
            task.done.set()
