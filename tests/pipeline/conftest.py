"""One tiny dataset through the ExampleGen's example building and tf.Transform, shared by
the parity and Trainer tests (Transform costs a minute; the TFX run is the e2e test's)."""

import os

import pytest

import datasets
from components import sequence_example_gen as seg
from datasets.schema import USER
from pipeline import preprocessing as pp
from pipeline import tft_local

N = 16  # two length buckets (8, 16) for the streamed batches


@pytest.fixture(scope="session")
def tiny_transform(tmp_path_factory):
    """{"ds", "enc" (datasets.encode of ds), "tfo", "cfg", "res" (split -> transformed
    instance dicts), "files" (split -> gzip TFRecords of them, as Transform materializes)}."""
    import tensorflow as tf
    import tensorflow_transform as tft

    ds = datasets.load("synthetic", num_users=40, seed=3, interactions_per_user=20, min_interactions=2)
    cols = [c for c in ds.schema.columns if c != USER]
    examples = {"train": [], "eval": [], "test": []}
    # Users in reverse order: the order keys, not the example order, decide the row order.
    for u, g in reversed(list(ds.interactions.groupby(USER, sort=True))):
        for split, ex in seg.user_examples(u, {c: g[c].to_numpy() for c in cols}, ds.schema, N,
                                           train_windows="sliding"):
            examples[split].append(ex.SerializeToString())
    cc = pp.PreprocessingConfig(schema=ds.schema.to_dict(), max_len=N).to_custom_config()
    root = tmp_path_factory.mktemp("tft")
    out_dir, res = tft_local.analyze_and_transform(
        examples["train"], {"eval": examples["eval"], "test": examples["test"]}, cc, output_dir=str(root / "graph"))
    tfo = tft.TFTransformOutput(out_dir)
    coder = tft.coders.ExampleProtoCoder(tfo.transformed_metadata.schema)
    files = {}
    for split, rows in res.items():
        os.makedirs(root / split)
        files[split] = str(root / split / "transformed_examples-00000-of-00001.gz")
        with tf.io.TFRecordWriter(files[split], options="GZIP") as w:
            for r in rows:
                w.write(coder.encode(r))
    return {"ds": ds, "enc": datasets.encode(ds, max_len=N, train_windows="sliding"), "tfo": tfo, "res": res,
            "cfg": pp.PreprocessingConfig.from_custom_config(cc), "files": files}
