"""DataGate helpers: readable reports, schema curation, drift findings."""

import pandas as pd
import pytest
from tensorflow_metadata.proto.v0 import anomalies_pb2, schema_pb2

from components import data_gate


def test_report_lists_every_finding():
    a = anomalies_pb2.Anomalies()
    info = a.anomaly_info["duration"]
    info.short_description = "Unexpected data type"
    info.description = "Expected FLOAT but got BYTES"
    r = info.reason.add()
    r.type = anomalies_pb2.AnomalyInfo.UNEXPECTED_DATA_TYPE
    findings = data_gate.anomalies_findings(a, "train")
    assert findings[0]["feature"] == "duration" and "UNEXPECTED_DATA_TYPE" in findings[0]["kind"]
    text = data_gate.format_report(findings, "header")
    assert "feature 'duration': Unexpected data type" in text and "stops before Transform" in text
    assert data_gate.format_report([], "header").endswith("no anomalies.")


def test_curate_schema_opens_id_domains_and_label_mode():
    s = schema_pb2.Schema()
    f = s.feature.add(name="item_id", type=schema_pb2.BYTES, domain="item_id")
    s.string_domain.add(name="item_id", value=["a", "b"])
    g = s.feature.add(name="action_type", type=schema_pb2.BYTES, domain="action_type")
    s.string_domain.add(name="action_type", value=["x"])
    m = s.feature.add(name="label_mode", type=schema_pb2.INT)
    m.int_domain.min = 1
    m.int_domain.max = 1
    out = data_gate.curate_schema(s, {"multi_label": []})
    by = {f.name: f for f in out.feature}
    assert not by["item_id"].HasField("domain") and [d.name for d in out.string_domain] == ["action_type"]
    assert by["action_type"].distribution_constraints.min_domain_mass == pytest.approx(0.99)
    assert (by["label_mode"].int_domain.min, by["label_mode"].int_domain.max) == (0, 3)


def test_drift_findings_flag_a_changed_distribution():
    import tensorflow_data_validation as tfdv

    base = tfdv.generate_statistics_from_dataframe(pd.DataFrame({"action": ["a"] * 50 + ["b"] * 50}))
    same = tfdv.generate_statistics_from_dataframe(pd.DataFrame({"action": ["a"] * 48 + ["b"] * 52}))
    moved = tfdv.generate_statistics_from_dataframe(pd.DataFrame({"action": ["a"] * 95 + ["b"] * 5}))
    schema = tfdv.infer_schema(base)
    assert data_gate.drift_findings(same, schema, base, {"action": 0.2}) == []
    found = data_gate.drift_findings(moved, schema, base, {"action": 0.2})
    assert [f["feature"] for f in found] == ["action"] and found[0]["check"] == "drift"
