"""End-to-end: the local pipeline (LocalDagRunner + DirectRunner + SQLite MLMD) on tiny data.

The module's one full pipeline run starts as a subprocess that is killed during
Transform; restarted in-process on the same MLMD, it completes (the finished
components come from the cache). That run is then checked from every side: rejected
rows, blessing, push layout, signatures, the whole-history seen filter, training/serving
feature parity, and the Trainer against `python -m model.train` on the same data (the
same protocol line and validation NDCG@10). Then, on the same MLMD: re-running reuses
every component; an unblessed model is not pushed; schema anomalies and drift stop the
run before Transform with a readable report.
"""

import dataclasses
import glob
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from pipeline import run_summary
from pipeline.local_runner import run_local
from serving import contract
from tests.pipeline import helpers

pytestmark = pytest.mark.timeout(3600)
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NODES = ("SequenceExampleGen", "StatisticsGen", "SchemaGen", "ExampleValidator", "DataGate", "Transform",
         "Trainer", "Evaluator", "Pusher")


def run_and_kill(config, metadata_path, node, *, delay=5.0, timeout=900):
    """Runs `python -m pipeline.local_runner` on `config` and SIGKILLs it (whole process
    group) `delay` seconds after `node` starts. -> (the node it was killed in or None,
    the path of its stderr log)."""
    cfg_path = os.path.join(os.path.dirname(metadata_path), f"{config.pipeline_name}-config.json")
    with open(cfg_path, "w") as f:
        f.write(config.to_json())
    cmd = [sys.executable, "-m", "pipeline.local_runner", "--config-json", cfg_path,
           "--root", os.path.dirname(metadata_path)]
    err = open(os.path.join(os.path.dirname(metadata_path), f"{config.pipeline_name}-killed.log"), "w")
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=err, text=True,
                            start_new_session=True)
    killed_during = None
    deadline = time.time() + timeout
    try:
        for line in proc.stdout:
            if line.startswith("[pipeline") and f" {node} " in line and "running" in line:
                time.sleep(delay)
                if proc.poll() is None:
                    killed_during = node
                    os.killpg(proc.pid, signal.SIGKILL)
                break
            if time.time() > deadline:
                break
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        err.close()
    return killed_during, err.name


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("e2e"))
    ds = helpers.tiny_dataset()
    data = helpers.write_shards(ds, os.path.join(root, "data", "shards"))
    config = helpers.tiny_config(root, data)
    metadata = os.path.join(root, "metadata.sqlite")
    t0 = time.time()
    killed_during, killed_log = run_and_kill(config, metadata, "Transform")
    after_kill = {n: c["state"] for n, c in run_summary.latest_run(metadata, config.pipeline_name).items()}
    t1 = time.time()
    summary = run_local(config, metadata, quiet=False, demo=True)
    summary["restart_seconds"] = time.time() - t1
    print(f"killed run: {t1 - t0:.1f}s, restarted run: {summary['restart_seconds']:.1f}s")
    return {"root": root, "ds": ds, "config": config, "metadata": metadata, "summary": summary,
            "killed_during": killed_during, "killed_log": killed_log, "states_after_kill": after_kill}


def _run(env):
    return run_summary.latest_run(env["metadata"], env["config"].pipeline_name)


def _version_dirs(serving_root):
    return sorted(glob.glob(os.path.join(serving_root, contract.DEFAULT_MODEL_NAME, "*")))


# --------------------------------------------------------------------------------------
# The first run
# --------------------------------------------------------------------------------------
def test_rows_and_rejected_rows(env):
    rows = env["summary"]["rows"]
    assert rows["rows_rejected"] == len(helpers.BAD_LINES)
    assert rows["rows_kept"] == len(env["ds"].interactions)
    reasons = rows["rejected_by_reason"]
    assert set(reasons) >= {"missing_user", "bad_timestamp"}, reasons
    lines = []
    for path in glob.glob(os.path.join(rows["rejected_uri"], "rejected-*.jsonl")):
        lines += [json.loads(line) for line in open(path) if line.strip()]
    assert {entry["reason"] for entry in lines} == set(reasons)
    assert all(entry["source"].endswith(".csv") for entry in lines)
    assert rows["users"] == env["ds"].num_users
    assert rows["examples_train"] > rows["users"]  # sliding windows


def test_blessed_and_pushed_in_tf_serving_layout(env):
    s = env["summary"]
    assert s["blessed"] is True and s["pushed"] is True, s
    versions = _version_dirs(env["config"].serving_root)
    assert len(versions) == 1
    version = versions[0]
    assert os.path.basename(version).isdigit() and int(os.path.basename(version)) > 0
    assert s["push_path"].rstrip("/") == version
    assert os.path.exists(os.path.join(version, "saved_model.pb"))
    assert os.path.isdir(os.path.join(version, "variables"))
    assert os.path.exists(contract.metadata_path(version))
    from serving import warmup

    assert len(warmup.read_warmup_requests(version)) >= 1
    overall = s["metrics"]["overall"]
    for key in ("recall@10", "ndcg@10", "recall@1", "ndcg@1"):
        assert 0.0 <= overall[key] <= 1.0, (key, overall)
    assert {k for k in overall if k.startswith("intent_accuracy/")} == {
        f"intent_accuracy/{h}" for h in helpers.TINY_INTENTS}
    assert overall["num_examples"] == s["rows"]["examples_test"]
    assert any(k.startswith("history_bucket=") for k in s["metrics"])
    assert "recommendation from" in s["demo"]


@pytest.fixture(scope="module")
def served(env):
    version = _version_dirs(env["config"].serving_root)[-1]
    return version, tf.saved_model.load(version)


def _example(items, ts=None, **meta):
    from serving.examples import make_example

    ts = ts if ts is not None else [1_650_000_000 + 3600 * i for i in range(len(items))]
    return make_example(items, ts, metadata=meta or None).SerializeToString()


def test_signatures(env, served):
    version, loaded = served
    meta = contract.read_metadata(version)
    heads = meta[contract.META_INTENT_HEADS]
    assert set(heads) == set(helpers.TINY_INTENTS)
    sigs = loaded.signatures
    assert {contract.SERVING_SIGNATURE, contract.RAW_SIGNATURE, "transform_features",
            contract.METADATA_SIGNATURE} <= set(sigs)
    serve = sigs[contract.SERVING_SIGNATURE]
    assert list(serve.structured_input_signature[1]) == [contract.EXAMPLES_INPUT]
    assert set(serve.structured_outputs) == set(contract.expected_outputs(heads))

    items = [t for t in meta[contract.META_ITEM_TITLES]][:6]
    out = serve(examples=tf.constant([_example(items), _example(items[:2])]))
    k = meta[contract.META_K]
    assert out[contract.TOP_K_IDS].shape == (2, k) and out[contract.TOP_K_IDS].dtype == tf.string
    scores = out[contract.TOP_K_SCORES].numpy()
    assert np.all(np.diff(scores, axis=1) <= 1e-6)
    np.testing.assert_allclose(out[contract.INTENT_ATTENTION].numpy().sum(-1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(out["intent_action_type"].numpy().sum(-1), 1.0, rtol=1e-5)
    assert {p.decode() for p in out[contract.PRIMARY_INTENT].numpy()} <= set(heads)
    md = sigs[contract.METADATA_SIGNATURE]()[contract.METADATA_OUTPUT].numpy()
    assert json.loads(md)[contract.META_INTENT_HEADS] == heads

    # predict_raw: the same history as left-padded tensors gives the same answer.
    raw = sigs[contract.RAW_SIGNATURE]
    n = 8
    hist = items[:6]
    pad = n - len(hist)
    ts = [0] * pad + [1_650_000_000 + 3600 * i for i in range(len(hist))]
    kwargs = {contract.EXAMPLE_ITEM_ID: tf.constant([[""] * pad + hist]),
              contract.EXAMPLE_TIMESTAMP: tf.constant([ts], tf.int64)}
    for name, spec in raw.structured_input_signature[1].items():
        if name not in kwargs:
            kwargs[name] = tf.zeros([1, n], spec.dtype) if spec.dtype != tf.string else tf.fill([1, n], "")
    r = raw(**kwargs)
    one = serve(examples=tf.constant([_example(hist)]))
    assert r[contract.TOP_K_IDS].numpy().tolist() == one[contract.TOP_K_IDS].numpy().tolist()
    np.testing.assert_allclose(r[contract.TOP_K_SCORES].numpy(), one[contract.TOP_K_SCORES].numpy(), rtol=1e-5)


def test_edge_cases_unknown_empty_and_long_histories(env, served):
    version, loaded = served
    serve = loaded.signatures[contract.SERVING_SIGNATURE]
    meta = contract.read_metadata(version)
    items = list(meta[contract.META_ITEM_TITLES])
    # Empty history: the popularity ranking, the same for every empty request.
    out = serve(examples=tf.constant([_example([]), _example([])]))
    ids = out[contract.TOP_K_IDS].numpy()
    assert ids[0].tolist() == ids[1].tolist() and all(ids[0])
    # Unknown items are OOV, not an error.
    out = serve(examples=tf.constant([_example(["never-seen-1", "never-seen-2"])]))
    assert out[contract.TOP_K_IDS].shape[1] == meta[contract.META_K]
    # Longer than n: only the latest n count.
    n = meta[contract.META_HISTORY_LENGTH]
    long_hist = (items * 5)[: 3 * n]
    ts = [1_650_000_000 + 3600 * i for i in range(len(long_hist))]
    a = serve(examples=tf.constant([_example(long_hist, ts)]))
    b = serve(examples=tf.constant([_example(long_hist[-n:], ts[-n:])]))
    assert a[contract.TOP_K_IDS].numpy().tolist() == b[contract.TOP_K_IDS].numpy().tolist()


def test_project_server_serves_the_pushed_version(env, served):
    """`serving.server` (TF Serving's layout and API) loads what the Pusher wrote, and
    `serving.client` gets the same ranking as the SavedModel called directly."""
    from serving.client import IntentRecClient
    from serving.server import ModelServer, ServerConfig

    version, loaded = served
    srv = ModelServer(ServerConfig(model_base_path=os.path.dirname(version), model_name=contract.DEFAULT_MODEL_NAME,
                                   port=0, rest_api_port=-1, initial_load_timeout_seconds=120,
                                   freeze_gc=False, shutdown_grace_seconds=1.0)).start()
    try:
        items = list(contract.read_metadata(version)[contract.META_ITEM_TITLES])[:5]
        ts = [1_650_000_000 + 3600 * i for i in range(len(items))]
        with IntentRecClient("127.0.0.1", srv.grpc_port) as client:
            rec = client.recommend(items, ts)
        direct = loaded.signatures[contract.SERVING_SIGNATURE](examples=tf.constant([_example(items, ts)]))
        assert rec.model_version == int(os.path.basename(version))
        assert [i.item_id for i in rec.items] == [v.decode() for v in direct[contract.TOP_K_IDS].numpy()[0]]
        assert set(rec.intents) == set(helpers.TINY_INTENTS)
    finally:
        srv.stop(grace=1.0)


def test_served_ranking_excludes_the_seen_items_an_example_lists(env, served):
    """exclude_seen with the whole-history filter: serving_default drops the items of an
    example's seen_item_id list (the user's history, which the Evaluator's test examples
    carry) besides those of its window; a request without the list keeps them."""
    from components.sequence_example_gen import SEEN_ITEMS
    from serving.examples import make_example

    _, loaded = served
    serve = loaded.signatures[contract.SERVING_SIGNATURE]

    def top(example):
        return [v.decode() for v in serve(examples=tf.constant([example.SerializeToString()]))[
            contract.TOP_K_IDS].numpy()[0]]

    items = top(make_example([], []))[:3]  # known items: the popularity answer
    ts = [1_650_000_000 + 3600 * i for i in range(len(items))]
    plain = top(make_example(items, ts))
    assert not set(plain) & set(items)
    example = make_example(items, ts)
    example.features.feature[SEEN_ITEMS].bytes_list.value.extend(v.encode() for v in plain[:5])
    filtered = top(example)
    assert not set(filtered) & set(plain[:5])
    assert filtered[:5] == plain[5:]  # the rest moves up


def test_trainer_trains_like_model_train(env, tmp_path, capsys):
    """`python -m model.train` on the data the pipeline read (the shards were written from
    it), with the pipeline's model and training config and seed 0, prints the same
    [protocol] line as the Trainer and reaches the same validation metrics (NDCG@10, ...)."""
    from model import train

    run = _run(env)
    with open(os.path.join(run["Trainer"]["outputs"]["model_run"][0]["uri"], "training_summary.json")) as f:
        trainer = json.load(f)
    assert trainer["data"].startswith("in memory")
    argv = ["--dataset", "synthetic", *[f"--data-arg={k}={v}" for k, v in helpers.TINY_DATA.items()],
            "--max-len", str(helpers.MAX_LEN), "--intents", ",".join(helpers.TINY_INTENTS), "--seed", "0",
            *[f"--set={k}={json.dumps(v)}" for k, v in helpers.TINY_HPARAMS.items() if k != "intents"],
            *[f"--train={k}={json.dumps(v)}" for k, v in helpers.TINY_TRAIN.items()], "--out", str(tmp_path)]
    capsys.readouterr()
    report = train.main(argv)
    printed = [line for line in capsys.readouterr().out.splitlines() if line.startswith("[protocol]")]
    with capsys.disabled():
        print(f"\nmodel.train {printed}\n  val {report['val']}\nTrainer {trainer['protocol_line']}\n"
              f"  val {trainer['val']}")
    assert printed == [trainer["protocol_line"]]
    assert trainer["protocol"]["exclude_seen"] is True and trainer["protocol"]["seen_filter"] == "history"
    assert trainer["epochs_run"] == report["epochs_run"] == helpers.TINY_TRAIN["epochs"]
    # Same rows, order, ids, seed and library path: the same model to the last bit. (Time
    # deltas and z-scores are computed by TFT and numpy separately; should a platform round
    # them differently, compare with a tolerance instead.)
    assert trainer["val"] == report["val"]


def test_training_and_serving_features_are_identical(env, served):
    """The same raw user through Transform's materialized output and through the pushed
    model's transform_features signature gives the same features (the Trainer's row-order
    keys excepted: serving requests never carry them)."""
    import tensorflow_transform as tft

    from pipeline import preprocessing as pp

    _, loaded = served
    run = _run(env)
    examples_uri = run["SequenceExampleGen"]["outputs"]["examples"][0]["uri"]
    transformed_uri = run["Transform"]["outputs"]["transformed_examples"][0]["uri"]
    graph_uri = run["Transform"]["outputs"]["transform_graph"][0]["uri"]
    spec = tft.TFTransformOutput(graph_uri).transformed_feature_spec()
    compared = 0
    for split in ("train", "eval"):
        raw = [r.numpy() for r in tf.data.TFRecordDataset(
            glob.glob(os.path.join(examples_uri, f"Split-{split}", "*.gz")), compression_type="GZIP")]
        mat = [r for r in tf.data.TFRecordDataset(
            glob.glob(os.path.join(transformed_uri, f"Split-{split}", "*.gz")), compression_type="GZIP")]
        parsed = {k: tf.sparse.to_dense(v) if isinstance(v, tf.SparseTensor) else v
                  for k, v in tf.io.parse_example(tf.stack(mat), spec).items()}
        served_feats = loaded.signatures["transform_features"](examples=tf.constant(raw))
        assert len(raw) == len(mat)
        assert set(spec) - set(served_feats) == {pp.ORDER_USER, pp.ORDER_END}

        def key(feats, i):
            return (tuple(np.asarray(feats["item"][i]).tolist()), tuple(np.round(np.asarray(feats["time"][i]), 4)),
                    tuple(np.asarray(feats["label_item"][i]).tolist()))

        by_key = {key(parsed, i): i for i in range(len(mat))}
        for i in range(len(raw)):
            j = by_key[key(served_feats, i)]
            for name in served_feats:
                a = np.asarray(parsed[name][j])
                b = np.asarray(served_feats[name][i])
                np.testing.assert_allclose(b, a, rtol=1e-6, atol=1e-6, err_msg=f"{split}/{name}")
            compared += 1
    assert compared == sum(env["summary"]["rows"][f"examples_{s}"] for s in ("train", "eval"))


# --------------------------------------------------------------------------------------
# Re-runs on the same MLMD
# --------------------------------------------------------------------------------------
def test_run_killed_during_transform_completes_when_restarted(env):
    assert env["killed_during"] == "Transform", open(env["killed_log"]).read()[-3000:]
    killed = env["states_after_kill"]
    assert killed["SequenceExampleGen"] == "COMPLETE" and killed["DataGate"] == "COMPLETE", killed
    assert killed["Transform"] not in ("COMPLETE", "CACHED"), killed  # really interrupted
    assert "Trainer" not in killed
    states = {n: c["state"] for n, c in env["summary"]["components"].items()}
    for node in NODES[:5]:
        assert states[node] == "CACHED", states
    for node in NODES[5:]:
        assert states[node] == "COMPLETE", states


def test_rerun_with_nothing_changed_is_cached(env):
    t0 = time.time()
    summary = run_local(env["config"], env["metadata"], quiet=True, demo=False)
    states = {n: c["state"] for n, c in summary["components"].items()}
    for node in NODES:
        assert states[node] == "CACHED", states
    assert summary["blessed"] is True and summary["push_path"] == env["summary"]["push_path"]
    assert len(_version_dirs(env["config"].serving_root)) == 1
    assert time.time() - t0 < env["summary"]["restart_seconds"]


def test_unblessed_model_is_not_pushed(env):
    # Only the blessing changes (an unreachable floor): everything up to the Trainer
    # comes from the cache, the Evaluator runs again and does not bless.
    config = dataclasses.replace(env["config"], evaluation=dataclasses.replace(env["config"].evaluation,
                                                                                floor=1.01))
    before = _version_dirs(config.serving_root)
    summary = run_local(config, env["metadata"], quiet=True, demo=False)
    states = {n: c["state"] for n, c in summary["components"].items()}
    assert states["Trainer"] == "CACHED", states
    assert states["Evaluator"] == "COMPLETE" and states["Pusher"] == "COMPLETE", states
    assert summary["metrics"]["overall"]["recall@10"] == env["summary"]["metrics"]["overall"]["recall@10"]
    assert summary["blessed"] is False
    assert summary["pushed"] is False
    assert _version_dirs(config.serving_root) == before


def test_schema_anomalies_and_drift_stop_the_run_before_transform(env, tmp_path):
    from components.data_gate import DataAnomaliesError
    from pipeline import schema_tools

    frozen = schema_tools.freeze(env["metadata"], env["config"].pipeline_name, str(tmp_path / "schema"))
    assert os.path.exists(frozen["schema"]) and os.path.exists(frozen["baseline_statistics"])

    # New data: duration arrives as text (a new column type), item_type is gone (a
    # missing feature) and every action is "rewatch" (drift).
    ds = env["ds"]
    df = ds.interactions.drop(columns=["item_type"]).copy()
    df["duration"] = np.where(df["duration"] > 30, "long", "short")
    df["action_type"] = "rewatch"
    from datasets import IntentSpec, InteractionSchema

    schema = InteractionSchema(categorical=("action_type", "release_bucket", "duration"), multi_label=("genre",),
                               intents=(IntentSpec("action_type"), IntentSpec("genre", "multi")),
                               has_timestamps=True, has_weight=True)
    changed = dataclasses.replace(ds, interactions=df, schema=schema)
    data = helpers.write_shards(changed, str(tmp_path / "shards"), bad_lines=[])
    config = helpers.tiny_config(env["root"], data, name="e2e-anomalies")
    config = dataclasses.replace(config, validation=dataclasses.replace(
        config.validation, schema_path=frozen["schema"], baseline_statistics_path=frozen["baseline_statistics"]))
    with pytest.raises(DataAnomaliesError) as err:
        run_local(config, env["metadata"], quiet=True, demo=False)
    report = str(err.value)
    assert "'duration'" in report and "'item_type'" in report and "'action_type'" in report, report
    assert "drift" in report
    run = run_summary.latest_run(env["metadata"], "e2e-anomalies")
    assert "Transform" not in run and "Trainer" not in run
    assert run["DataGate"]["state"] == "FAILED"
