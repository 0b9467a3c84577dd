"""Progress lines while a local run goes, and the end-of-run summary read back from MLMD."""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import time
from typing import Dict, List, Optional

_RUNNING = re.compile(r"Component (\S+) is running\.")
_FINISHED = re.compile(r"Component (\S+) is finished\.")
_CACHED = re.compile(r"A cached execution (\d+) is used\.")


class ProgressHandler(logging.Handler):
    """Turns LocalDagRunner's log records into one line per component:

        [pipeline]  3/10 SchemaGen ............ done   1.2s
    """

    def __init__(self, total: int, stream=None):
        super().__init__(level=logging.INFO)
        self.total = total
        self.stream = stream or sys.stdout
        self.started: Dict[str, float] = {}
        self.timings: Dict[str, float] = {}
        self.cached: set = set()
        self.order: List[str] = []
        self._current: Optional[str] = None
        self.t0 = time.time()

    def emit(self, record):
        try:
            msg = record.getMessage()
        except Exception:  # pragma: no cover
            return
        m = _RUNNING.search(msg)
        if m:
            node = m.group(1)
            self._current = node
            self.started[node] = time.time()
            self.order.append(node)
            self._line(f"{len(self.order):2d}/{self.total} {node:<32} running ...")
            return
        if _CACHED.search(msg) and self._current:
            self.cached.add(self._current)
            return
        m = _FINISHED.search(msg)
        if m:
            node = m.group(1)
            dt = time.time() - self.started.get(node, time.time())
            self.timings[node] = dt
            state = "cached" if node in self.cached else "done"
            self._line(f"{self.order.index(node) + 1 if node in self.order else 0:2d}/{self.total} "
                       f"{node:<32} {state:<7}{dt:7.1f}s")

    def _line(self, text):
        self.stream.write(f"[pipeline {time.time() - self.t0:7.1f}s] {text}\n")
        self.stream.flush()


def install_progress(total: int, verbose: bool = False) -> ProgressHandler:
    """Progress lines from TFX's INFO records; unless `verbose`, absl's own stderr
    handler only shows warnings (the INFO flood of every component stays out)."""
    from absl import logging as absl_logging

    absl_logging.set_verbosity(absl_logging.INFO)
    handler = ProgressHandler(total)
    logger = logging.getLogger("absl")
    handler._saved = (logger.propagate, None)
    if not verbose:
        # TFX logs through absl at INFO (whole protos per component): keep those records
        # away from the root handlers and show only warnings and errors.
        warn = logging.StreamHandler(sys.stderr)
        warn.setLevel(logging.WARNING)
        warn.setFormatter(logging.Formatter("%(levelname)s:%(name)s:%(message)s"))
        logger.addHandler(warn)
        logger.propagate = False
        handler._saved = (True, warn)
    logger.addHandler(handler)
    return handler


def remove_progress(handler: ProgressHandler) -> None:
    logger = logging.getLogger("absl")
    logger.removeHandler(handler)
    propagate, warn = getattr(handler, "_saved", (True, None))
    if warn is not None:
        logger.removeHandler(warn)
    logger.propagate = propagate


# --------------------------------------------------------------------------------------
# MLMD
# --------------------------------------------------------------------------------------
def _store(metadata_path: str):
    from ml_metadata import metadata_store
    from ml_metadata.proto import metadata_store_pb2

    cfg = metadata_store_pb2.ConnectionConfig()
    cfg.sqlite.filename_uri = metadata_path
    cfg.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READONLY
    return metadata_store.MetadataStore(cfg)


def _prop(a, name, default=None):
    if name in a.custom_properties:
        v = a.custom_properties[name]
        return v.int_value if v.HasField("int_value") else (
            v.double_value if v.HasField("double_value") else v.string_value)
    if name in a.properties:
        v = a.properties[name]
        return v.int_value if v.HasField("int_value") else (
            v.double_value if v.HasField("double_value") else v.string_value)
    return default


def latest_run(metadata_path: str, pipeline_name: str) -> dict:
    """{node_id: {state, seconds, outputs: {key: [artifact]}}} of the latest pipeline run."""
    from ml_metadata.proto import metadata_store_pb2

    store = _store(metadata_path)
    runs = [c for c in store.get_contexts_by_type("pipeline_run")]
    pipe = store.get_context_by_type_and_name("pipeline", pipeline_name)
    if pipe is not None:
        in_pipe = {c.id for c in store.get_children_contexts_by_context(pipe.id)} if hasattr(
            store, "get_children_contexts_by_context") else None
        if in_pipe:
            runs = [c for c in runs if c.id in in_pipe] or runs
    if not runs:
        return {}
    run = max(runs, key=lambda c: c.create_time_since_epoch)
    executions = store.get_executions_by_context(run.id)
    node_of = {}
    for ctx in store.get_contexts_by_type("node"):
        if not ctx.name.startswith(pipeline_name + "."):
            continue
        node = ctx.name[len(pipeline_name) + 1:]
        for e in store.get_executions_by_context(ctx.id):
            node_of[e.id] = node
    events = store.get_events_by_execution_ids([e.id for e in executions])
    art_ids = sorted({ev.artifact_id for ev in events})
    arts = {a.id: a for a in store.get_artifacts_by_id(art_ids)} if art_ids else {}
    types = {t.id: t.name for t in store.get_artifact_types()}
    result = {}
    for e in executions:
        node = node_of.get(e.id, str(e.id))
        outputs: Dict[str, list] = {}
        for ev in events:
            if ev.execution_id != e.id or ev.type != metadata_store_pb2.Event.OUTPUT:
                continue
            key = ev.path.steps[0].key if ev.path.steps else "?"
            a = arts.get(ev.artifact_id)
            if a is not None:
                outputs.setdefault(key, []).append({"uri": a.uri, "type": types.get(a.type_id, ""), "artifact": a})
        state = metadata_store_pb2.Execution.State.Name(e.last_known_state)
        result[node] = {"state": state,
                        "seconds": max(0.0, (e.last_update_time_since_epoch - e.create_time_since_epoch) / 1000.0),
                        "outputs": outputs, "execution_id": e.id}
    return result


def _evaluation_metrics(uri: str) -> Dict[str, Dict[str, float]]:
    """{slice: {metric: value}} of the candidate model, from a ModelEvaluation artifact."""
    import tensorflow_model_analysis as tfma

    out: Dict[str, Dict[str, float]] = {}
    try:
        result = tfma.load_eval_result(uri)
    except Exception as e:  # pragma: no cover - diagnostic only
        return {"<error>": {str(e)[:200]: float("nan")}}
    for slice_key, metrics in result.slicing_metrics:
        name = "overall" if not slice_key else ",".join(f"{k}={v}" for k, v in slice_key)
        per_model = metrics.get("", {}) if "" in metrics else metrics.get("candidate", {})
        if not per_model:
            per_model = next(iter(metrics.values()), {})
        vals = per_model.get("", {})
        flat = {}
        for metric, v in vals.items():
            if isinstance(v, dict) and "doubleValue" in v:
                flat[metric] = float(v["doubleValue"])
        out[name] = flat
    return out


def summarize(metadata_path: str, pipeline_name: str, timings: Optional[Dict[str, float]] = None) -> dict:
    run = latest_run(metadata_path, pipeline_name)
    summary = {"components": {}, "rows": {}, "metrics": {}, "blessed": None, "pushed": None,
               "push_path": None}
    for node, info in sorted(run.items(), key=lambda kv: kv[1]["execution_id"]):  # pipeline order
        secs = (timings or {}).get(node, info["seconds"])
        summary["components"][node] = {"state": info["state"], "seconds": round(secs, 1)}
        outs = info["outputs"]
        if "examples" in outs and outs["examples"] and outs["examples"][0]["type"] == "Examples" and (
                "rejected" in outs):
            a = outs["examples"][0]["artifact"]
            for k in ("rows_read", "rows_kept", "rows_rejected", "users", "examples_train", "examples_eval",
                      "examples_test"):
                summary["rows"][k] = _prop(a, k, 0)
            rej = outs["rejected"][0]["uri"]
            path = os.path.join(rej, "summary.json")
            if os.path.exists(path):
                with open(path) as f:
                    summary["rows"]["rejected_by_reason"] = json.load(f).get("rejected_by_reason", {})
            summary["rows"]["rejected_uri"] = rej
        if "evaluation" in outs and outs["evaluation"]:
            summary["metrics"] = _evaluation_metrics(outs["evaluation"][0]["uri"])
        if "blessing" in outs and outs["blessing"]:
            summary["blessed"] = bool(_prop(outs["blessing"][0]["artifact"], "blessed", 0))
        if "pushed_model" in outs and outs["pushed_model"]:
            a = outs["pushed_model"][0]["artifact"]
            summary["pushed"] = bool(_prop(a, "pushed", 0))
            summary["push_path"] = _prop(a, "pushed_destination") or None
    return summary


def format_summary(summary: dict) -> str:
    lines = ["", "=" * 72, "IntentRec pipeline summary", "-" * 72, "component                          state     seconds"]
    total = 0.0
    for node, c in summary["components"].items():
        lines.append(f"{node:<34} {c['state']:<9} {c['seconds']:7.1f}")
        total += c["seconds"]
    lines.append(f"{'total':<34} {'':<9} {total:7.1f}")
    r = summary["rows"]
    if r:
        lines.append("-" * 72)
        lines.append(f"rows read {r.get('rows_read', 0):,}  kept {r.get('rows_kept', 0):,}  rejected "
                     f"{r.get('rows_rejected', 0):,}  users {r.get('users', 0):,}  examples train/eval/test "
                     f"{r.get('examples_train', 0):,}/{r.get('examples_eval', 0):,}/{r.get('examples_test', 0):,}")
        if r.get("rejected_by_reason"):
            lines.append("rejected by reason: " + ", ".join(f"{k}={v}" for k, v in r["rejected_by_reason"].items())
                         + f"  (details: {r.get('rejected_uri')})")
    if summary["metrics"]:
        lines.append("-" * 72)
        for sl, vals in sorted(summary["metrics"].items(), key=lambda kv: (kv[0] != "overall", kv[0])):
            shown = ", ".join(f"{k}={v:.4f}" for k, v in sorted(vals.items()))
            lines.append(f"metrics [{sl}]: {shown}")
    lines.append("-" * 72)
    lines.append(f"blessed: {summary['blessed']}   pushed: {summary['pushed']}   "
                 f"push path: {summary['push_path'] or '-'}")
    lines.append("=" * 72)
    return "\n".join(lines)


def latest_version_dir(serving_root: str, model_name: str) -> Optional[str]:
    from serving.versions import latest_version  # TF Serving's rule: int64 names only

    base = os.path.join(serving_root, model_name)
    version = latest_version(base)
    return os.path.join(base, str(version)) if version is not None else None


def demo_recommendation(version_dir: str, history: Optional[list] = None) -> str:
    """Loads the pushed SavedModel and calls serving_default on one history."""
    import tensorflow as tf

    from serving import contract
    from serving.examples import make_example

    loaded = tf.saved_model.load(version_dir)
    fn = loaded.signatures[contract.SERVING_SIGNATURE]
    meta = contract.read_metadata(version_dir) or {}

    def call(items):
        ex = make_example(items, [1_700_000_000 + 3600 * i for i in range(len(items))])
        return fn(examples=tf.constant([ex.SerializeToString()]))

    if history is None:
        # A plausible user: the 2nd, 4th and 6th most popular items (the empty-history answer).
        popular = [v.decode() for v in call([])[contract.TOP_K_IDS].numpy()[0]]
        history = popular[1:6:2]
    out = call(history)
    ids = [v.decode() for v in out[contract.TOP_K_IDS].numpy()[0]]
    titles = meta.get(contract.META_ITEM_TITLES) or {}
    shown = ", ".join(f"{i} ({titles[i]})" if titles.get(i) else i for i in ids[:5])
    history = [f"{i} ({titles[i]})" if titles.get(i) else i for i in history]
    primary = out[contract.PRIMARY_INTENT].numpy()[0].decode() if contract.PRIMARY_INTENT in out else ""
    return (f"recommendation from {version_dir}\n  history: {history}\n  top-{len(ids)}: {shown}, ...\n"
            f"  primary intent: {primary}")
