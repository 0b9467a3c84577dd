"""The served models: one ModelManager per model of the config, version labels, reloads.

`ModelRegistry.apply` is TF Serving's ServerCore::ReloadConfig: it validates the new
ModelServerConfig, checks its version labels, then starts managers for new models
(loading what their policy selects before returning), updates the policy of kept ones,
and stops removed ones (their versions drain and unload). A config that fails
validation or the label check is rejected whole and the previous one stays.

Labels follow ServerCore::UpdateModelVersionLabelMap, checked before models are
(re)loaded: a label may only point at a version that is AVAILABLE. So at startup, when
nothing is loaded yet, any label fails unless --allow_version_labels_for_unavailable_models,
which lets a *new* label (or an unchanged one) point at a version that is not loaded
yet; moving an existing label still needs the target loaded. A request for a label
that is not configured is INVALID_ARGUMENT "Unrecognized servable version label".
"""

from __future__ import annotations

import logging
import threading
from typing import Callable

import grpc

from serving.errors import ServingError, invalid
from serving.model_config import ModelSpec, model_specs
from serving.model_manager import ModelManager
from serving.servable import AVAILABLE, ServableVersion

log = logging.getLogger(__name__)


class ModelRegistry:
    def __init__(self, manager_factory: Callable[[ModelSpec], ModelManager], *,
                 allow_labels_for_unavailable: bool = False, policy_override=None):
        self._factory = manager_factory
        self.allow_labels_for_unavailable = allow_labels_for_unavailable
        self.policy_override = policy_override  # --model_version_policy, one-model configs only
        self._managers: dict[str, ModelManager] = {}
        self._specs: dict[str, ModelSpec] = {}
        self._labels: dict[str, dict[str, int]] = {}
        self._reload_lock = threading.Lock()

    # --- request path ----------------------------------------------------------------------
    def manager(self, name: str) -> ModelManager | None:
        return self._managers.get(name)

    def names(self) -> list[str]:
        return sorted(self._managers)

    def resolve_label(self, name: str, label: str) -> int:
        version = self._labels.get(name, {}).get(label)
        if version is None:
            raise invalid(f"Unrecognized servable version label: {label}")
        return version

    def acquire(self, name: str, version: int | None, label: str = "") -> ServableVersion:
        manager = self._managers.get(name)
        if label:
            version = self.resolve_label(name, label)
        if manager is None:
            what = f"Latest({name})" if version is None else f"Specific({name}, {version})"
            raise ServingError(grpc.StatusCode.NOT_FOUND, f"Servable not found for request: {what}")
        return manager.acquire(version)

    # --- configuration ---------------------------------------------------------------------
    def apply(self, config) -> None:
        """Serves ``config`` (a ModelServerConfig); ServingError (FAILED_PRECONDITION /
        INVALID_ARGUMENT) when it is rejected, the previous config staying in place."""
        with self._reload_lock:
            try:
                specs = model_specs(config, self.policy_override)
            except ValueError as e:
                raise invalid(str(e)) from None
            labels = self._check_labels(specs)
            new = {s.name: s for s in specs}
            for name in [n for n in self._managers if n not in new]:
                log.info("Removing model %s", name)
                self._managers.pop(name).stop()
                self._specs.pop(name, None)
            for spec in specs:
                old = self._specs.get(spec.name)
                manager = self._managers.get(spec.name)
                if manager is not None and old.base_path == spec.base_path:
                    if old.policy != spec.policy:
                        log.info("Model %s: version policy %s -> %s", spec.name, old.policy, spec.policy)
                        manager.policy = spec.policy
                        manager.poll_once()
                else:
                    log.info("Adding model %s from %s (policy %s)", spec.name, spec.base_path, spec.policy)
                    fresh = self._factory(spec)
                    fresh.start()
                    self._managers[spec.name] = fresh
                    if manager is not None:
                        manager.stop()
                self._specs[spec.name] = spec
            self._labels = labels

    def _check_labels(self, specs: list[ModelSpec]) -> dict[str, dict[str, int]]:
        out = {}
        for spec in specs:
            manager = self._managers.get(spec.name)
            current = self._labels.get(spec.name, {})
            for label, version in sorted(spec.labels.items()):
                state = manager.state_of(version) if manager is not None else None
                unavailable_ok = self.allow_labels_for_unavailable and current.get(label, version) == version
                if state != AVAILABLE and not unavailable_ok:
                    raise ServingError(
                        grpc.StatusCode.FAILED_PRECONDITION,
                        f"Request to assign label to version {version} of model {spec.name}, which is "
                        f"not currently available for inference")
            out[spec.name] = dict(spec.labels)
        return out

    def labels(self, name: str) -> dict[str, int]:
        return dict(self._labels.get(name, {}))

    def stop(self, timeout: float = 10.0) -> None:
        for manager in list(self._managers.values()):
            manager.stop(timeout)


class ConfigFileWatcher:
    """Re-reads --model_config_file every --model_config_file_poll_wait_seconds and applies
    it when its text changed; a file that cannot be read or served is logged and skipped
    (the running config stays), as TF Serving does."""

    def __init__(self, path: str, poll_seconds: float, registry: ModelRegistry,
                 read: Callable[[str], object], on_applied: Callable[[], None] | None = None):
        self.path, self.poll_seconds, self.registry, self.read = path, poll_seconds, registry, read
        self.on_applied = on_applied
        self._last = self._text()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="model-config-poll", daemon=True)

    def _text(self) -> str | None:
        try:
            with open(self.path, encoding="utf-8") as f:
                return f.read()
        except OSError:
            return None

    def start(self) -> "ConfigFileWatcher":
        self._thread.start()
        return self

    def _loop(self):
        while not self._stop.wait(self.poll_seconds):
            text = self._text()
            if text is None or text == self._last:
                continue
            self._last = text
            try:
                self.registry.apply(self.read(self.path))
                log.info("Reloaded model config %s", self.path)
                if self.on_applied:
                    self.on_applied()
            except (ValueError, ServingError) as e:
                log.error("Not applying model config %s: %s", self.path, getattr(e, "message", e))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(self.poll_seconds + 1)
