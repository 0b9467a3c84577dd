"""End to end with real (tiny, untrained) models: the CLI on a Keras run dir, the
SavedModel loader, and real-time updates against a local and a served model."""

from __future__ import annotations

import json
import os
import re

import numpy as np
import pandas as pd
import pytest

NUM_USERS = 60
MAX_LEN = 12


@pytest.fixture(scope="module")
def synthetic():
    import datasets

    return datasets.load("synthetic", num_users=NUM_USERS, seed=0)


@pytest.fixture(scope="module")
def runs(tmp_path_factory, synthetic):
    """Tiny untrained v3 and v0 models saved as model.train run dirs."""
    import datasets
    import keras

    from model import IntentRec, IntentRecConfig

    enc = datasets.encode(synthetic, max_len=MAX_LEN)
    root = tmp_path_factory.mktemp("runs")
    out = {}
    for variant in ("v3", "v0"):
        keras.utils.set_random_seed(0)
        cfg = IntentRecConfig.from_feature_spec(
            enc.feature_spec, variant=variant, d_model=16, num_heads=2, intent_layers=1,
            item_layers=1, feature_embedding_dim=4, d_short=4, d_proj=6, dropout=0.0)
        m = IntentRec(cfg)
        m.item_head.set_prior(enc.item_popularity)
        d = root / variant
        d.mkdir()
        m.save(str(d / "model.keras"))
        (d / "metrics.json").write_text(json.dumps({"variant": variant, "seed": 0, "dataset": "synthetic",
                                                    "exclude_seen": False}))
        out[variant] = str(d)
    out["encoded"] = enc
    return out


def _png_ok(path):
    import matplotlib.image as mpimg

    img = mpimg.imread(path)
    return img.shape[0] > 150 and img.shape[1] > 300 and img[..., :3].std() > 0.05


def test_cli_report_export_and_quality(tmp_path, runs):
    from analysis import export
    from analysis.intents import main

    out = tmp_path / "report"
    argv = ["--model", runs["v3"], "--dataset", "synthetic", "--data-arg", f"num_users={NUM_USERS}",
            "--k", "3", "--tsne-sample", "60", "--attention-users", "2", "--examples", "2",
            "--baseline-model", runs["v0"], "--stability-model", os.path.join(runs["v3"], "model.keras"),
            "--out", str(out), "--export-parquet", str(tmp_path / "i.parquet"),
            "--export-tfrecord", str(tmp_path / "i.tfrecord"), "--batch-size", "16"]
    assert main(argv) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["k"] == 3 and summary["users"] == NUM_USERS and len(summary["clusters"]) == 3
    assert sum(c["size"] for c in summary["clusters"]) == NUM_USERS
    q = summary["quality"]
    reps = q["representations"]
    main_name = q["main"]
    assert main_name == "v3-seed0 Z"
    assert "v0-seed0 item_hidden (baseline)" in reps and "last-event labels (no model)" in reps
    for r in reps.values():
        for key in ("next:action", "next:genre", "persona:action"):
            assert -1.0 <= r["agreement"][key]["ari"] <= 1.0 and 0.0 <= r["agreement"][key]["nmi"] <= 1.0
        assert -1.0 <= r["silhouette"] <= 1.0 and r["seed_stability"]["pairs"] == 10
    assert q["cross_model"]["mean_ari"] == pytest.approx(1.0)  # the same model twice
    assert any("vs v0-seed0 item_hidden (baseline)" in n for n in q["notes"])
    # figures exist, are readable images, and are embedded in the HTML
    figs = summary["figures"]
    assert _png_ok(figs["tsne"]) and _png_ok(figs["alpha"])
    assert len(figs["attention"]) == 2 and all(_png_ok(f) for f in figs["attention"])
    html = (out / "report.html").read_text()
    assert len(re.findall(r"src=\"data:image/png;base64,", html)) == 4
    assert "<img" in html and "src=\"/" not in html and "file://" not in html  # self-contained
    for c in summary["clusters"]:
        assert c["name"] in html.replace("&#x27;", "'")
    clusters = pd.read_csv(out / "clusters.csv")
    assert len(clusters) == NUM_USERS and set(clusters.cluster) == {0, 1, 2}
    # the export covers every user (full history), streamed in 16-user row groups
    import pyarrow.parquet as pq

    f = pq.ParquetFile(tmp_path / "i.parquet")
    assert f.metadata.num_rows == NUM_USERS and f.num_row_groups == -(-NUM_USERS // 16)
    assert export.parquet_metadata(str(tmp_path / "i.parquet"))["d_proj"] == 6
    n = sum(int(b["user_id"].shape[0]) for b in export.read_tfrecord(str(tmp_path / "i.tfrecord")))
    assert n == NUM_USERS


def test_test_mode_histories_match_the_encoder(runs, synthetic):
    """history="test" feeds exactly the leave-one-out test inputs of datasets.encode."""
    from analysis.inference import collect_intents
    from analysis.sources import load_intent_model

    model = load_intent_model(runs["v3"], dataset=synthetic)
    assert model.hierarchical and model.heads == ["action_type", "genre", "item_type", "release_bucket"]
    table = collect_intents(model, synthetic, batch_size=25, history="test")
    enc = runs["encoded"]
    assert list(table.user_ids) == list(enc.test.user_ids)
    np.testing.assert_array_equal(table.next_rows, enc.test.target_rows[:, -1])
    direct = model.infer_encoded(enc.test.x)
    np.testing.assert_allclose(table.z, direct["intent_embedding"], atol=1e-5)
    np.testing.assert_allclose(table.alpha, direct["intent_attention"], atol=1e-5)
    np.testing.assert_allclose(table.alpha.sum(1), 1.0, atol=1e-5)


def test_realtime_update_local(runs, synthetic):
    from analysis.realtime import LocalBackend, parse_event, update_intents

    backend = LocalBackend.load(runs["v3"], dataset=synthetic)
    df = synthetic.interactions
    history = df[df.user_id == df.user_id.iat[0]].head(8)
    event = parse_event("item_id=t00001,action_type=rewatch,genre=horror,item_type=movie")
    upd = update_intents(backend, history, event, k=5)
    assert upd.history_length == 8 and upd.event["timestamp"] > int(history.timestamp.max())
    for state in (upd.before, upd.after):
        assert len(state.items) == 5 and state.items[0]["title"]
        assert sum(state.attention.values()) == pytest.approx(1.0, abs=1e-5)
        assert state.primary_intent == max(state.attention, key=state.attention.get)
        assert set(state.intents) == set(backend.model.heads) and "<pad>" not in state.intents["action_type"]
    assert upd.before.intent_embedding != upd.after.intent_embedding
    # the "after" state equals a plain inference on history + event
    rows = history.to_dict("records") + [{**event, "timestamp": upd.event["timestamp"], "user_id": history.user_id.iat[0]}]
    direct = backend.model.infer([pd.DataFrame(rows)])
    np.testing.assert_allclose(upd.after.intent_embedding, direct["intent_embedding"][0], atol=1e-5)
    assert "Primary intent" in upd.format() and json.dumps(upd.to_dict())
    only = update_intents(backend, history, event, k=3, compare=False)
    assert only.before is None and len(only.after.items) == 3


def test_saved_model_loader_and_served_realtime(tmp_path):
    """A pushed SavedModel (serving fixture, serving layout) is analysed through its
    serving_default signature; the served update matches the in-process one."""
    from analysis.clusters import cluster_profiles, kmeans
    from analysis.inference import collect_intents
    from analysis.realtime import LocalBackend, ServedBackend, update_intents
    from analysis.sources import SavedModelIntentModel, load_intent_model
    from tests.fixtures.serving_model import DEFAULT_HEADS, build_fixture_model, random_history

    root = tmp_path / "serving_root"
    build_fixture_model(str(root / "intentrec" / "1"), num_items=50, history_length=20, k=10, warmup_examples=0)
    rows = []
    for u in range(30):
        h = random_history(50, 6 + u % 5, seed=u)
        for item, ts, act in zip(h["item_ids"], h["timestamps"], h["metadata"]["action_type"]):
            rows.append({"user_id": f"u{u:02d}", "item_id": item, "timestamp": ts, "action_type": act})
    import types

    ds = types.SimpleNamespace(interactions=pd.DataFrame(rows), items=None, latent=None, users=None, schema=None)
    model = load_intent_model(str(root), dataset=ds)  # <root>: one model, latest version
    assert isinstance(model, SavedModelIntentModel) and model.heads == list(DEFAULT_HEADS)
    assert model.max_len == 20 and model.labels["genre"] == DEFAULT_HEADS["genre"]
    table = collect_intents(model, ds, batch_size=8, history="full")
    assert table.z.shape == (30, 16) and np.allclose(table.alpha.sum(1), 1.0, atol=1e-5)
    assert table.kinds == {"action_type": "single", "genre": "single"}
    a, centres, _ = kmeans(table.z, 3)
    profiles = cluster_profiles(table, a, table.z, centres, dataset=ds, examples=1)
    assert sum(p.size for p in profiles) == 30 and all(p.name for p in profiles)

    from serving.server import ModelServer, ServerConfig

    server = ModelServer(ServerConfig(model_base_path=str(root / "intentrec"), model_name="intentrec", port=0,
                                      rest_api_port=-1, file_system_poll_wait_seconds=0.1,
                                      shutdown_grace_seconds=2.0)).start()
    try:
        served = ServedBackend.connect(f"127.0.0.1:{server.grpc_port}", "intentrec")
        history = [r for r in rows if r["user_id"] == "u03"]
        event = {"item_id": "7", "action_type": "rewatch", "timestamp": history[-1]["timestamp"] + 60}
        remote = update_intents(served, history, event, k=5)
        local = update_intents(LocalBackend(model), history, event, k=5)
        served.close()
    finally:
        server.stop(grace=1.0)
    assert remote.source.startswith("served intentrec@127.0.0.1")
    for h in DEFAULT_HEADS:
        assert remote.after.attention[h] == pytest.approx(local.after.attention[h], abs=1e-5)
        assert remote.before.attention[h] == pytest.approx(local.before.attention[h], abs=1e-5)
    assert [i["item_id"] for i in remote.after.items] == [i["item_id"] for i in local.after.items]
    assert remote.after.primary_intent == local.after.primary_intent
    np.testing.assert_allclose(remote.after.intent_embedding, local.after.intent_embedding, atol=1e-5)
