"""DataGate: stops the pipeline before Transform/Trainer when the data has anomalies.

ExampleValidator only *records* anomalies; a TFX run goes on regardless. The gate
reads its anomalies (schema violations: a column dropped, a new column, a changed
type, values out of domain, ...) and, when a baseline is configured, compares the
train statistics with the baseline statistics (drift: L-infinity distance for
string features, Jensen-Shannon divergence for numeric ones). Any finding raises
`DataAnomaliesError` with a readable report, so no downstream component runs; the
report is also written to the `report` output. With no finding it passes the schema
through (``gated_schema``), and Transform, Trainer and Evaluator consume that output,
which is what makes them wait for the gate.

`freeze_schema` turns a run's inferred schema (+ train statistics) into a curated
frozen schema for later runs (`python -m pipeline.schema_tools freeze ...`).
"""



import json
import os
from typing import Dict, List, Optional

import tensorflow as tf
from tfx.dsl.component.experimental.annotations import InputArtifact, OutputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.types import artifact, artifact_utils, standard_artifacts

REPORT_FILE = "data_report.txt"
SCHEMA_FILE = "schema.pbtxt"
BASELINE_STATS_FILE = "baseline_stats.pb"
# Features whose string domain is never meaningful (ids, slices).
UNBOUNDED_STRING_FEATURES = ("item_id", "user_id", "history_bucket", "seen_item_id")


class DataReport(artifact.Artifact):
    """Human-readable data validation report (data_report.txt + data_report.json)."""

    TYPE_NAME = "intentrec.DataReport"


class DataAnomaliesError(RuntimeError):
    """The data broke the schema or drifted; the message is the readable report."""


# --------------------------------------------------------------------------------------
# Reading anomalies / statistics
# --------------------------------------------------------------------------------------
def _load_anomalies(anomalies_artifact, split: str):
    from tensorflow_metadata.proto.v0 import anomalies_pb2

    split_dir = artifact_utils.get_split_uri([anomalies_artifact], split)
    out = anomalies_pb2.Anomalies()
    for name in tf.io.gfile.listdir(split_dir) if tf.io.gfile.exists(split_dir) else []:
        path = os.path.join(split_dir, name)
        if name.endswith(".pb"):
            out.ParseFromString(tf.io.gfile.GFile(path, "rb").read())
        elif name.endswith(".pbtxt"):
            from google.protobuf import text_format

            text_format.Parse(tf.io.gfile.GFile(path).read(), out)
    return out


def anomalies_findings(anomalies, split: str, source: str = "schema") -> List[dict]:
    """Anomalies proto -> [{split, feature, kind, description}]."""
    findings = []
    for feature, info in sorted(anomalies.anomaly_info.items()):
        kinds = [r.type for r in info.reason] if info.reason else []
        from tensorflow_metadata.proto.v0 import anomalies_pb2

        kind = ", ".join(anomalies_pb2.AnomalyInfo.Type.Name(k) for k in kinds) or "ANOMALY"
        findings.append({"split": split, "feature": feature, "check": source, "kind": kind,
                         "short": info.short_description,
                         "description": info.description or "; ".join(r.description for r in info.reason)})
    if anomalies.HasField("dataset_anomaly_info") and (
            anomalies.dataset_anomaly_info.reason or anomalies.dataset_anomaly_info.description):
        info = anomalies.dataset_anomaly_info
        findings.append({"split": split, "feature": "<dataset>", "check": source, "kind": "DATASET",
                         "short": info.short_description, "description": info.description})
    return findings


def format_report(findings: List[dict], header: str) -> str:
    if not findings:
        return f"{header}\nno anomalies."
    lines = [header, f"{len(findings)} anomal{'y' if len(findings) == 1 else 'ies'} — the run stops before "
                     "Transform/Training:"]
    for f in findings:
        lines.append(f"  [{f['check']}/{f['split']}] feature {f['feature']!r}: {f['short'] or f['kind']}")
        if f["description"]:
            lines.append(f"      {f['description']}")
    lines.append("Fix the data, or accept the change by updating the frozen schema "
                 "(python -m pipeline.schema_tools freeze ...) / the drift thresholds.")
    return "\n".join(lines)


def drift_findings(train_stats, schema, baseline_stats, thresholds: Dict[str, float]) -> List[dict]:
    """Train statistics vs baseline statistics, for the features in `thresholds`."""
    import tensorflow_data_validation as tfdv
    from tensorflow_metadata.proto.v0 import schema_pb2

    s = schema_pb2.Schema()
    s.CopyFrom(schema)
    watched = 0
    for feature in s.feature:
        t = thresholds.get(feature.name)
        if t is None:
            continue
        watched += 1
        if feature.type == schema_pb2.BYTES:
            feature.drift_comparator.infinity_norm.threshold = float(t)
        else:
            feature.drift_comparator.jensen_shannon_divergence.threshold = float(t)
    if not watched:
        return []
    anomalies = tfdv.validate_statistics(train_stats, s, previous_statistics=baseline_stats)
    out = []
    for f in anomalies_findings(anomalies, "train", source="drift"):
        if "COMPARATOR" in f["kind"] or "drift" in (f["description"] or "").lower():
            out.append(f)
    return out


# --------------------------------------------------------------------------------------
# The component
# --------------------------------------------------------------------------------------
@component
def DataGate(  # pylint: disable=invalid-name
    statistics: InputArtifact[standard_artifacts.ExampleStatistics],
    schema: InputArtifact[standard_artifacts.Schema],
    anomalies: InputArtifact[standard_artifacts.ExampleAnomalies],
    gated_schema: OutputArtifact[standard_artifacts.Schema],
    report: OutputArtifact[DataReport],
    baseline_statistics_path: Parameter[str] = "",
    drift_thresholds_json: Parameter[str] = "{}",
):
    """Raises DataAnomaliesError on anomalies or drift; else passes the schema on."""
    from absl import logging
    from tfx.components.statistics_gen import stats_artifact_utils
    from tfx.utils import io_utils

    schema_file = io_utils.get_only_uri_in_dir(schema.uri)
    schema_proto = io_utils.SchemaReader().read(schema_file)
    findings = []
    for split in artifact_utils.decode_split_names(anomalies.split_names):
        findings += anomalies_findings(_load_anomalies(anomalies, split), split)
    thresholds = json.loads(drift_thresholds_json or "{}")
    drift_note = "drift: no baseline statistics configured"
    if baseline_statistics_path:
        from tensorflow_metadata.proto.v0 import statistics_pb2

        baseline = statistics_pb2.DatasetFeatureStatisticsList()
        baseline.ParseFromString(tf.io.gfile.GFile(baseline_statistics_path, "rb").read())
        current = stats_artifact_utils.load_statistics(statistics, "train").proto()
        drift = drift_findings(current, schema_proto, baseline, thresholds)
        findings += drift
        drift_note = (f"drift vs {baseline_statistics_path}: {len(drift)} finding(s) over "
                      f"{len([k for k in thresholds])} watched feature(s)")
    header = f"IntentRec data validation (schema {schema_file}; {drift_note})"
    text = format_report(findings, header)
    tf.io.gfile.makedirs(report.uri)
    with tf.io.gfile.GFile(os.path.join(report.uri, REPORT_FILE), "w") as f:
        f.write(text + "\n")
    with tf.io.gfile.GFile(os.path.join(report.uri, "data_report.json"), "w") as f:
        f.write(json.dumps({"findings": findings}, indent=1))
    report.set_int_custom_property("anomalies", len(findings))
    if findings:
        logging.error("%s", text)
        raise DataAnomaliesError(text + f"\n(report: {os.path.join(report.uri, REPORT_FILE)})")
    logging.info("%s", text)
    tf.io.gfile.makedirs(gated_schema.uri)
    tf.io.gfile.copy(schema_file, os.path.join(gated_schema.uri, os.path.basename(schema_file)), overwrite=True)


# --------------------------------------------------------------------------------------
# Freezing a schema
# --------------------------------------------------------------------------------------
def curate_schema(schema, interaction_schema: Optional[dict] = None, min_domain_mass: float = 0.99):
    """An inferred schema made fit for validating later data.

    - no string domain on ids, slices and multi-label columns (never closed sets);
    - categorical domains tolerate 1% unseen values (eval/test hold rows training
      never saw);
    - list features keep their types and presence (a dropped or retyped column is
      an anomaly).
    """
    from tensorflow_metadata.proto.v0 import schema_pb2

    s = schema_pb2.Schema()
    s.CopyFrom(schema)
    open_domains = set(UNBOUNDED_STRING_FEATURES)
    if interaction_schema:
        open_domains |= set(interaction_schema.get("multi_label", ()))
    dropped_domains = set()
    for f in s.feature:
        if f.name in open_domains and f.HasField("domain"):
            dropped_domains.add(f.domain)
            f.ClearField("domain")
        if f.name in open_domains and f.HasField("string_domain"):
            f.ClearField("string_domain")
        if f.HasField("domain") or f.HasField("string_domain"):
            f.distribution_constraints.min_domain_mass = min_domain_mass
        # Scalars written by the ExampleGen: history_length is unbounded, label_mode
        # is 1 / 3 (train) or 2 (eval/test); serving requests leave it out (0).
        if f.name == "history_length" and f.HasField("int_domain"):
            f.ClearField("int_domain")
        if f.name == "label_mode":
            f.int_domain.min = 0
            f.int_domain.max = 3
    keep = [d for d in s.string_domain if d.name not in dropped_domains]
    del s.string_domain[:]
    s.string_domain.extend(keep)
    return s


def freeze_schema(schema_file: str, train_stats_file: Optional[str], out_dir: str,
                  interaction_schema: Optional[dict] = None) -> Dict[str, str]:
    """Writes out_dir/schema.pbtxt (curated) and out_dir/baseline_stats.pb."""
    from tfx.utils import io_utils

    schema = io_utils.SchemaReader().read(schema_file)
    curated = curate_schema(schema, interaction_schema)
    tf.io.gfile.makedirs(out_dir)
    out = {"schema": os.path.join(out_dir, SCHEMA_FILE)}
    io_utils.write_pbtxt_file(out["schema"], curated)
    if train_stats_file:
        out["baseline_statistics"] = os.path.join(out_dir, BASELINE_STATS_FILE)
        tf.io.gfile.copy(train_stats_file, out["baseline_statistics"], overwrite=True)
    return out
