"""Prometheus metrics on the REST port (--monitoring_config_file), under TF Serving's names.

    prometheus_config { enable: true, path: "/monitoring/prometheus/metrics" }

exposes, in Prometheus' text format, a subset of what tensorflow_model_server exports:

- ``:tensorflow:serving:request_count{model_name, status}`` — Predict calls by gRPC
  status code name;
- ``:tensorflow:serving:request_latency_sum`` / ``_count{model_name, API, entrypoint}`` —
  seconds spent answering them, per entry point (GRPC, REST);
- ``:tensorflow:serving:model_version_state{model_name, version, state}`` — 1 per version
  and its state (a gauge built when scraped).

Without a monitoring config nothing is counted (no cost on the request path).
"""

from __future__ import annotations

import threading
from collections import defaultdict

DEFAULT_PATH = "/monitoring/prometheus/metrics"  # TF Serving's PrometheusExporter::kPrometheusPath


def _labels(**kv) -> str:
    inner = ",".join(f'{k}="{str(v).replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"'
                     for k, v in kv.items())
    return "{" + inner + "}"


class Metrics:
    def __init__(self, path: str = "", registry=None):
        self.path = path or DEFAULT_PATH
        self.registry = registry  # ModelRegistry, for the version-state gauge
        self._lock = threading.Lock()
        self._count = defaultdict(int)  # (model, status) -> n
        self._latency = defaultdict(lambda: [0.0, 0])  # (model, api, entrypoint) -> [sum, n]

    def observe(self, model: str, status: str, seconds: float, entrypoint: str, api: str = "predict"):
        with self._lock:
            self._count[(model, status)] += 1
            cell = self._latency[(model, api, entrypoint)]
            cell[0] += seconds
            cell[1] += 1

    def page(self) -> str:
        lines = ["# TYPE :tensorflow:serving:request_count counter"]
        with self._lock:
            count = dict(self._count)
            latency = {k: tuple(v) for k, v in self._latency.items()}
        for (model, status), n in sorted(count.items()):
            lines.append(f":tensorflow:serving:request_count{_labels(model_name=model, status=status)} {n}")
        lines.append("# TYPE :tensorflow:serving:request_latency summary")
        for (model, api, entry), (total, n) in sorted(latency.items()):
            lbl = _labels(model_name=model, API=api, entrypoint=entry)
            lines.append(f":tensorflow:serving:request_latency_sum{lbl} {total:.6f}")
            lines.append(f":tensorflow:serving:request_latency_count{lbl} {n}")
        lines.append("# TYPE :tensorflow:serving:model_version_state gauge")
        if self.registry is not None:
            for name in self.registry.names():
                manager = self.registry.manager(name)
                for sv in manager.statuses() if manager is not None else []:
                    lbl = _labels(model_name=name, version=sv.version, state=sv.state)
                    lines.append(f":tensorflow:serving:model_version_state{lbl} 1")
        return "\n".join(lines) + "\n"
