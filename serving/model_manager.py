"""Version discovery, loading, hot swap and unloading of one model, TF Serving style.

The manager polls ``<model_base_path>`` every ``file_system_poll_wait_seconds`` for version
directories (`serving.versions`: int64 names only). A directory is a candidate once
``saved_model.pb`` exists in it (a directory still without it is reported as START and
waited for). The version policy picks which candidates to serve (latest N, all, or
specific ones).

Loading happens off the request path: load -> warm-up replay -> AVAILABLE, and only then
is the served set swapped, atomically, under one lock. Versions that leave the served
set are retired: new requests no longer get them, requests holding them finish, and
they are unloaded once the last one releases them (drain). A version that fails to
load (corrupt, half-written, failing warm-up) is retried ``max_num_load_retries`` times,
``load_retry_interval_seconds`` apart, while the policy still wants it (TF Serving's
retry); then it goes to END with its error in GetModelStatus, never replaces the served
one, and is tried again only when its files change (size/mtime fingerprint).
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from typing import Callable, Sequence

import grpc

from serving import contract
from serving.errors import ServingError
from serving.servable import AVAILABLE, END, LOADING, START, UNLOADING, ServableVersion
from serving.versions import VersionPolicy, fingerprint, is_complete, version_dirs

log = logging.getLogger(__name__)

__all__ = ["ModelManager", "ServableVersion", "VersionPolicy", "refreeze_gc"]


def refreeze_gc() -> None:
    """Collects garbage, then moves every live object out of the cyclic collector's reach
    (gc.freeze): a loaded TF model is hundreds of thousands of long-lived objects that
    full collections would otherwise re-scan (pauses of 100+ ms on the request path).
    Run after each load/unload; unfreezing first lets an unloaded model be collected."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()


class ModelManager:
    """Serves the versions of one model found under ``base_path``."""

    def __init__(
        self,
        model_name: str,
        base_path: str,
        *,
        policy: VersionPolicy | str = "latest",
        poll_wait_seconds: float = 1.0,
        warmup: Callable[[ServableVersion], None] | None = None,
        on_change: Callable[["ModelManager"], None] | None = None,
        freeze_gc: bool = False,
        max_num_load_retries: int = 0,
        load_retry_interval_seconds: float = 60.0,
        saved_model_tags: Sequence[str] = (contract.SAVED_MODEL_TAG,),
    ):
        self.model_name = model_name
        self.base_path = base_path
        self.policy = policy if isinstance(policy, VersionPolicy) else VersionPolicy.parse(policy)
        self.poll_wait_seconds = float(poll_wait_seconds)
        self.max_num_load_retries = max(0, int(max_num_load_retries))
        self.load_retry_interval_seconds = max(0.0, float(load_retry_interval_seconds))
        self.saved_model_tags = tuple(saved_model_tags)
        self._warmup = warmup
        self._on_change = on_change
        self._lock = threading.Lock()
        self._versions: dict[int, ServableVersion] = {}  # every version ever seen (status)
        self._serving: dict[int, ServableVersion] = {}  # AVAILABLE, handed to requests
        self._latest: ServableVersion | None = None
        self._stop = threading.Event()
        self._poll_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._unloaders: list[threading.Thread] = []
        self._warned_missing = False
        self._freeze_gc = freeze_gc

    # --- request path ----------------------------------------------------------------------
    def acquire(self, version: int | None = None) -> ServableVersion:
        """The served version (latest if None), held until `release`; NOT_FOUND otherwise."""
        with self._lock:
            sv = self._latest if version is None else self._serving.get(version)
            if sv is None:
                what = (f"Latest({self.model_name})" if version is None
                        else f"Specific({self.model_name}, {version})")
                raise ServingError(grpc.StatusCode.NOT_FOUND, f"Servable not found for request: {what}")
            sv.refs += 1
            return sv

    def release(self, sv: ServableVersion) -> None:
        with self._lock:
            sv.refs -= 1
            if sv.refs == 0 and sv.retired:
                sv.drained.set()

    def serving_versions(self) -> list[int]:
        with self._lock:
            return sorted(self._serving)

    @property
    def available(self) -> bool:
        return self._latest is not None

    def statuses(self, version: int | None = None) -> list[ServableVersion]:
        """Every version seen, newest first (TF Serving's ServableStateMonitor order; it
        keeps unloaded versions as END too), or the one asked for."""
        with self._lock:
            if version is not None:
                sv = self._versions.get(version)
                return [sv] if sv else []
            return [self._versions[v] for v in sorted(self._versions, reverse=True)]

    def state_of(self, version: int) -> str | None:
        sv = self._versions.get(version)
        return sv.state if sv is not None else None

    # --- polling ---------------------------------------------------------------------------
    def start(self, initial_timeout: float | None = None) -> None:
        """Polls once synchronously (loading what is there), then polls in the background."""
        self.poll_once()
        if initial_timeout:
            deadline = time.monotonic() + initial_timeout
            while not self.available and time.monotonic() < deadline and not self._stop.is_set():
                time.sleep(min(self.poll_wait_seconds, 0.1) or 0.1)
                self.poll_once()
        if self.poll_wait_seconds > 0:
            self._thread = threading.Thread(target=self._poll_loop, name=f"poll-{self.model_name}",
                                            daemon=True)
            self._thread.start()

    def _poll_loop(self):
        while not self._stop.wait(self.poll_wait_seconds):
            try:
                self.poll_once()
            except Exception:  # noqa: BLE001 - keep polling whatever happens
                log.exception("poll of %s failed", self.base_path)

    def scan(self) -> dict[int, str] | None:
        """Version directories under base_path -> path (None: unreadable)."""
        try:
            found = version_dirs(self.base_path)
        except OSError as e:
            if not self._warned_missing:
                log.warning("model base path %s is not readable: %s", self.base_path, e)
                self._warned_missing = True
            return None
        if not found and not self._warned_missing:
            if is_complete(self.base_path):
                log.warning("%s holds a SavedModel itself; TF Serving expects numeric version "
                            "subdirectories (<base_path>/<version>/saved_model.pb)", self.base_path)
            else:
                log.info("No versions of servable %s found under base path %s",
                         self.model_name, self.base_path)
            self._warned_missing = True
        return found

    def poll_once(self) -> None:
        with self._poll_lock:
            if self._stop.is_set():
                return
            self._poll()

    def _poll(self):
        on_disk = self.scan()
        if on_disk is None:
            return  # base path unreadable: keep serving what we have
        changed = False
        candidates = set()
        for v, path in on_disk.items():
            sv = self._versions.get(v)
            if sv is None:
                sv = self._register(ServableVersion(self.model_name, v, path))
                changed = True
            if not is_complete(path):
                continue  # half-copied: wait for saved_model.pb (reported as START)
            if sv.state == END and sv.error is not None:
                if fingerprint(path) == sv.fingerprint:
                    continue  # failed before and unchanged: do not retry
                sv = self._register(ServableVersion(self.model_name, v, path))  # changed: retry
                changed = True
            candidates.add(v)

        # Load what the policy wants, newest first; drop failures and ask again, so that a
        # failing new version leaves the previous choice in place within this poll.
        while True:
            desired = self.policy.select(candidates)
            failed = False
            for v in sorted(desired, reverse=True):
                if self._stop.is_set():
                    return
                sv = self._versions[v]
                if sv.state == AVAILABLE:
                    continue
                if sv.state != START:  # unloaded / unloading earlier, wanted again
                    sv = self._register(ServableVersion(self.model_name, v, sv.path))
                self._load(sv)
                changed = True
                if sv.state != AVAILABLE:
                    candidates.discard(v)
                    failed = True
            if not failed:
                break

        loaded = {v: self._versions[v] for v in desired if self._versions[v].state == AVAILABLE}
        # Availability preservation: never swap to nothing because of what is on disk.
        swapped = self._swap(loaded) if loaded else False
        changed |= swapped
        if swapped and self._freeze_gc and not any(t.is_alive() for t in self._unloaders):
            refreeze_gc()  # (with unloads pending, the last unloader does it)
        if changed and self._on_change:
            self._on_change(self)

    def _register(self, sv: ServableVersion) -> ServableVersion:
        sv.manager = self
        with self._lock:
            self._versions[sv.version] = sv
        return sv

    def _load(self, sv: ServableVersion) -> None:
        """Loads sv, retrying as TF Serving does while the policy still wants it."""
        sv.state = LOADING
        sv.fingerprint = fingerprint(sv.path)
        log.info("Loading servable version {name: %s version: %d} from %s",
                 self.model_name, sv.version, sv.path)
        attempt = 0
        while True:
            try:
                sv.load(self._warmup, tags=self.saved_model_tags)
                break
            except Exception as e:  # noqa: BLE001 - every failure is reported, never raised
                error = e if isinstance(e, ServingError) else ServingError(
                    grpc.StatusCode.UNKNOWN, f"{type(e).__name__}: {e}")
                if not isinstance(e, ServingError):
                    log.exception("Failed to load servable version %d", sv.version)
            attempt += 1
            if attempt > self.max_num_load_retries or not self._still_wanted(sv):
                sv.error, sv.state = error, END
                log.error("Failed to load servable version {name: %s version: %d}: %s",
                          self.model_name, sv.version, error.message)
                return
            log.warning("Loading servable version {name: %s version: %d} failed (%s); retry %d of "
                        "%d in %.1fs", self.model_name, sv.version, error.message, attempt,
                        self.max_num_load_retries, self.load_retry_interval_seconds)
            if self._stop.wait(self.load_retry_interval_seconds):
                sv.error, sv.state = error, END
                return
        sv.state = AVAILABLE
        log.info("Successfully loaded servable version {name: %s version: %d} in %.2fs",
                 self.model_name, sv.version, sv.load_seconds)

    def _still_wanted(self, sv: ServableVersion) -> bool:
        """Whether the policy still selects sv given what is on disk now: TF Serving cancels
        the retries of a version that is no longer aspired (e.g. a newer one arrived)."""
        on_disk = self.scan() or {}
        complete = {v for v, path in on_disk.items() if is_complete(path)}
        return sv.version in self.policy.select(complete)

    def _swap(self, new_serving: dict[int, ServableVersion]) -> bool:
        with self._lock:
            if {v: id(sv) for v, sv in new_serving.items()} == {
                    v: id(sv) for v, sv in self._serving.items()}:
                return False
            retired = [sv for v, sv in self._serving.items() if v not in new_serving]
            self._serving = dict(new_serving)
            self._latest = new_serving[max(new_serving)] if new_serving else None
            for sv in retired:
                sv.retired = True
                sv.state = UNLOADING
                if sv.refs == 0:
                    sv.drained.set()
        if new_serving:
            log.info("Serving %s versions %s", self.model_name, sorted(new_serving))
        for sv in retired:
            t = threading.Thread(target=self._unload_when_drained, args=(sv,),
                                 name=f"unload-{self.model_name}-{sv.version}", daemon=True)
            t.start()
            self._unloaders.append(t)
        self._unloaders = [t for t in self._unloaders if t.is_alive()]
        return True

    def _unload_when_drained(self, sv: ServableVersion) -> None:
        sv.drained.wait()
        sv.unload()
        sv.state = END
        if self._freeze_gc and not self._stop.is_set():
            refreeze_gc()
        log.info("Unloaded servable version {name: %s version: %d}", self.model_name, sv.version)
        if self._on_change:
            self._on_change(self)

    def stop(self, timeout: float = 10.0) -> None:
        """Stops polling, retires every version and unloads each once drained."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        with self._poll_lock:
            self._swap({})
        deadline = time.monotonic() + timeout
        for t in list(self._unloaders):
            t.join(max(0.0, deadline - time.monotonic()))
