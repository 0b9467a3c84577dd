"""Version discovery, loading, hot swap and unloading of one model, TF Serving style.

The manager polls ``<model_base_path>`` every ``file_system_poll_wait_seconds`` for numeric
version directories. A directory is a candidate once ``saved_model.pb`` exists in it
(the Pusher copies to a temporary name and renames, so a complete directory appears at
once; a directory still without ``saved_model.pb`` is reported as START and waited for).
The version policy picks which candidates to serve (latest N, all, or specific ones).

Loading happens off the request path: load -> warm-up replay -> AVAILABLE, and only then
is the served set swapped, atomically, under one lock. Versions that leave the served
set are retired: new requests no longer get them, requests holding them finish, and
they are unloaded once the last one releases them (drain). A version that fails to
load (corrupt, half-written, failing warm-up) goes to END with its error in
GetModelStatus, never replaces the served one, and is retried only when its files
change (size/mtime fingerprint).
"""

from __future__ import annotations

import gc
import logging
import os
import re
import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterable

import grpc

from serving import contract
from serving.errors import ServingError, code_from_int

log = logging.getLogger(__name__)

_VERSION_RE = re.compile(r"^\d+$")

# ModelVersionStatus.State names (tensorflow_serving/apis/get_model_status.proto).
START, LOADING, AVAILABLE, UNLOADING, END = "START", "LOADING", "AVAILABLE", "UNLOADING", "END"


@dataclass(frozen=True)
class VersionPolicy:
    """TF Serving's ServableVersionPolicy as a flag value.

    ``latest`` / ``latest:N`` (the N highest versions; default N=1), ``all``, or
    ``specific:1,3`` (exactly these versions; missing ones are waited for).
    """

    kind: str = "latest"
    num_versions: int = 1
    versions: tuple[int, ...] = ()

    @classmethod
    def parse(cls, text: str) -> "VersionPolicy":
        t = (text or "latest").strip().lower()
        kind, _, arg = t.partition(":")
        kind = kind.strip()
        if kind == "latest":
            n = int(arg) if arg.strip() else 1
            if n < 1:
                raise ValueError("latest:N needs N >= 1")
            return cls("latest", num_versions=n)
        if kind == "all":
            if arg.strip():
                raise ValueError("'all' takes no argument")
            return cls("all")
        if kind == "specific" or (not arg and re.fullmatch(r"[\d,\s]+", kind)):
            raw = arg if kind == "specific" else kind
            versions = tuple(sorted({int(v) for v in raw.split(",") if v.strip()}))
            if not versions:
                raise ValueError("specific:V1,V2,... needs at least one version")
            return cls("specific", versions=versions)
        raise ValueError(f"unknown model_version_policy {text!r}: use latest[:N], all or specific:V1,V2")

    def select(self, candidates: Iterable[int]) -> set[int]:
        c = sorted(set(candidates))
        if self.kind == "latest":
            return set(c[-self.num_versions:])
        if self.kind == "all":
            return set(c)
        return set(c) & set(self.versions)

    def __str__(self):
        if self.kind == "latest":
            return f"latest:{self.num_versions}"
        if self.kind == "specific":
            return "specific:" + ",".join(map(str, self.versions))
        return self.kind


def refreeze_gc() -> None:
    """Collects garbage, then moves every live object out of the cyclic collector's reach
    (gc.freeze): a loaded TF model is hundreds of thousands of long-lived objects that
    full collections would otherwise re-scan (pauses of 100+ ms on the request path).
    Run after each load/unload; unfreezing first lets an unloaded model be collected."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()


def fingerprint(path: str) -> tuple:
    """(relative path, size, mtime) of every file under path; changes when files do."""
    out = []
    for root, dirs, files in os.walk(path):
        dirs.sort()
        for f in sorted(files):
            p = os.path.join(root, f)
            try:
                st = os.stat(p)
            except OSError:
                continue
            out.append((os.path.relpath(p, path), st.st_size, st.st_mtime_ns))
    return tuple(out)


def is_complete(version_dir: str) -> bool:
    return os.path.isfile(os.path.join(version_dir, contract.SAVED_MODEL_PB)) or os.path.isfile(
        os.path.join(version_dir, contract.SAVED_MODEL_PBTXT))


class ServableVersion:
    """One version directory: its state and, while loaded, its signatures."""

    def __init__(self, model_name: str, version: int, path: str):
        self.model_name = model_name
        self.version = version
        self.path = path
        self.state = START
        self.error: ServingError | None = None
        self.fingerprint: tuple | None = None
        self.loaded = None
        self.signatures: dict = {}
        self.signature_def_map = None  # tensorflow_serving.apis SignatureDefMap
        self.metadata: dict | None = None  # assets.extra/intentrec_metadata.json
        self.refs = 0
        self.retired = False
        self.drained = threading.Event()
        self.load_seconds = 0.0

    def __repr__(self):
        return f"<{self.model_name} v{self.version} {self.state}>"

    def signature(self, name: str):
        sig = self.signatures.get(name or contract.SERVING_SIGNATURE)
        if sig is None:
            raise ServingError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f'Serving signature name: "{name or contract.SERVING_SIGNATURE}" not found in '
                f"signature def")
        return sig

    # --- loading ---------------------------------------------------------------------------
    def load(self, warmup: Callable[["ServableVersion"], None] | None = None) -> None:
        """Loads the SavedModel and replays warm-up; raises ServingError on any failure."""
        import tensorflow as tf
        from tensorflow.core.protobuf import saved_model_pb2
        from tensorflow_serving.apis import get_model_metadata_pb2

        from serving.signature import Signature

        t0 = time.perf_counter()
        pb_path = os.path.join(self.path, contract.SAVED_MODEL_PB)
        try:
            sm = saved_model_pb2.SavedModel()
            if os.path.exists(pb_path):
                with open(pb_path, "rb") as f:
                    sm.ParseFromString(f.read())
            else:
                from google.protobuf import text_format

                with open(os.path.join(self.path, contract.SAVED_MODEL_PBTXT)) as f:
                    text_format.Parse(f.read(), sm)
        except Exception as e:  # DecodeError, OSError, ...
            raise ServingError(grpc.StatusCode.DATA_LOSS,
                               f"Could not parse SavedModel {pb_path}: {type(e).__name__}: {e}") from None
        if not sm.meta_graphs:
            raise ServingError(grpc.StatusCode.DATA_LOSS,
                               f"Could not parse SavedModel {pb_path}: no MetaGraphDef in it")
        meta = [mg for mg in sm.meta_graphs if contract.SAVED_MODEL_TAG in mg.meta_info_def.tags]
        if not meta:
            raise ServingError(
                grpc.StatusCode.NOT_FOUND,
                f"Could not find meta graph def matching supplied tags: {{ {contract.SAVED_MODEL_TAG} }}. "
                f"To inspect available tag-sets in the SavedModel, please use the SavedModel CLI: "
                f"`saved_model_cli`")
        sig_defs = meta[0].signature_def
        try:
            loaded = tf.saved_model.load(self.path, tags=[contract.SAVED_MODEL_TAG])
        except tf.errors.OpError as e:
            raise ServingError(code_from_int(e.error_code), f"Failed to load {self.path}: {e.message}") from None
        except Exception as e:  # noqa: BLE001
            raise ServingError(grpc.StatusCode.DATA_LOSS,
                               f"Failed to load {self.path}: {type(e).__name__}: {e}") from None
        sigs = {}
        for name, sdef in sig_defs.items():
            fn = loaded.signatures.get(name) if hasattr(loaded, "signatures") else None
            if fn is None:
                continue  # e.g. __saved_model_init_op: listed in metadata, not callable
            sigs[name] = Signature(name, sdef, fn)
        sdm = get_model_metadata_pb2.SignatureDefMap()
        for name, sdef in sig_defs.items():
            sdm.signature_def[name].CopyFrom(sdef)
        try:
            self.metadata = contract.read_metadata(self.path)
        except (OSError, ValueError) as e:
            log.warning("%s v%d: unreadable %s: %s", self.model_name, self.version,
                        contract.METADATA_FILE, e)
            self.metadata = None
        self.loaded, self.signatures, self.signature_def_map = loaded, sigs, sdm
        if warmup is not None:
            try:
                warmup(self)
            except ServingError as e:
                self.unload()
                raise ServingError(e.code, f"Failed to warm up model: {e.message}") from None
        self.load_seconds = time.perf_counter() - t0

    def unload(self) -> None:
        self.signatures = {}
        self.loaded = None


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
    ):
        self.model_name = model_name
        self.base_path = base_path
        self.policy = policy if isinstance(policy, VersionPolicy) else VersionPolicy.parse(policy)
        self.poll_wait_seconds = float(poll_wait_seconds)
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
        with self._lock:
            if version is not None:
                sv = self._versions.get(version)
                return [sv] if sv else []
            return [self._versions[v] for v in sorted(self._versions)]

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
        """Numeric version directories under base_path -> path (None: unreadable)."""
        try:
            names = os.listdir(self.base_path)
        except OSError as e:
            if not self._warned_missing:
                log.warning("model base path %s is not readable: %s", self.base_path, e)
                self._warned_missing = True
            return None
        found = {}
        for name in names:
            if _VERSION_RE.match(name):
                path = os.path.join(self.base_path, name)
                if os.path.isdir(path):
                    v = int(name)
                    # "1" wins over "01" if both exist.
                    if v not in found or name == str(v):
                        found[v] = path
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
        with self._lock:
            self._versions[sv.version] = sv
        return sv

    def _load(self, sv: ServableVersion) -> None:
        sv.state = LOADING
        sv.fingerprint = fingerprint(sv.path)
        log.info("Loading servable version {name: %s version: %d} from %s",
                 self.model_name, sv.version, sv.path)
        try:
            sv.load(self._warmup)
        except ServingError as e:
            sv.error, sv.state = e, END
            # The files may have changed while we loaded; fingerprint what failed.
            log.error("Failed to load servable version {name: %s version: %d}: %s",
                      self.model_name, sv.version, e.message)
            return
        except Exception as e:  # noqa: BLE001
            sv.error, sv.state = ServingError(grpc.StatusCode.UNKNOWN, f"{type(e).__name__}: {e}"), END
            log.exception("Failed to load servable version %d", sv.version)
            return
        sv.state = AVAILABLE
        log.info("Successfully loaded servable version {name: %s version: %d} in %.2fs",
                 self.model_name, sv.version, sv.load_seconds)

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
