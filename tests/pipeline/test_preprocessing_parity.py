"""The TFT graph (pipeline/preprocessing.py) encodes exactly like the numpy reference encoder.

Both encode the same tiny dataset: the ExampleGen's per-user examples go through
`preprocessing_fn` with tf.Transform; `datasets.encode` encodes the DataFrame. Every
input, target and weight of every split must match. Ids are compared as the values
they stand for: the two break frequency ties in opposite directions (TFT: descending
value; numpy: ascending), everything else (vocabularies, counts, sizes) is equal.
"""

import numpy as np
import pytest

import datasets
from components import sequence_example_gen as seg
from datasets.schema import USER
from pipeline import preprocessing as pp
from pipeline import tft_local

pytestmark = pytest.mark.timeout(1800)
N = 8


@pytest.fixture(scope="module")
def encoded(tmp_path_factory):
    import tensorflow_transform as tft

    ds = datasets.load("synthetic", num_users=40, seed=3, interactions_per_user=20, min_interactions=2)
    cols = [c for c in ds.schema.columns if c != USER]
    examples = {"train": [], "eval": [], "test": []}
    users = {"train": [], "eval": [], "test": []}
    for u, g in ds.interactions.groupby(USER, sort=True):
        for split, ex in seg.user_examples(u, {c: g[c].to_numpy() for c in cols}, ds.schema, N,
                                           train_windows="sliding"):
            examples[split].append(ex.SerializeToString())
            users[split].append(u)
    cc = pp.PreprocessingConfig(schema=ds.schema.to_dict(), max_len=N).to_custom_config()
    out_dir, res = tft_local.analyze_and_transform(
        examples["train"], {"eval": examples["eval"], "test": examples["test"]}, cc,
        output_dir=str(tmp_path_factory.mktemp("tft")))
    return {"ds": ds, "enc": datasets.encode(ds, max_len=N, train_windows="sliding"),
            "tfo": tft.TFTransformOutput(out_dir), "res": res,
            "users": users, "cfg": pp.PreprocessingConfig.from_custom_config(cc)}


def test_feature_spec_and_vocabularies_match(encoded):
    tfo, enc, cfg = encoded["tfo"], encoded["enc"], encoded["cfg"]
    assert pp.feature_spec(tfo, cfg) == enc.feature_spec
    for name, tokens in enc.vocabs.items():
        assert sorted(pp.read_vocabulary(tfo, name)) == sorted(tokens), name
    counts = pp.read_item_counts(tfo)
    tfx_tokens = pp.read_vocabulary(tfo, "item")
    np_counts = dict(zip(enc.vocabs["item"], enc.item_popularity))
    assert {t: c for t, c in zip(tfx_tokens[2:], counts[2:])} == {t: np_counts[t] for t in tfx_tokens[2:]}


@pytest.mark.parametrize("split,np_split", [("train", "train"), ("eval", "val"), ("test", "test")])
def test_inputs_targets_weights_match(encoded, split, np_split):
    tfo, enc, cfg, schema = encoded["tfo"], encoded["enc"], encoded["cfg"], encoded["ds"].schema
    rows = encoded["res"][split]
    users = encoded["users"][split]
    # Training rows without any target (a 1-interaction training sequence) are skipped
    # by the Trainer, and the numpy encoder does not emit them.
    keep = [i for i, r in enumerate(rows) if r["sample_weight"].sum() > 0]
    t = tft_local.stack([rows[i] for i in keep])
    users = np.array([users[i] for i in keep], dtype=object)
    s = enc.split(np_split)

    # Rows are matched by (user, input items): a user has several sliding windows.
    def keys(user_ids, items, vocab):
        return [(u, tuple(np.asarray(vocab, dtype=object)[row].tolist())) for u, row in zip(user_ids, items)]

    tfx_keys = keys(users, t["item"], pp.read_vocabulary(tfo, "item"))
    np_keys = keys(s.user_ids, s.x["item"], enc.vocabs["item"])
    order = sorted(range(len(tfx_keys)), key=lambda i: tfx_keys[i])
    np_order = sorted(range(len(np_keys)), key=lambda i: np_keys[i])
    assert [tfx_keys[i] for i in order] == [np_keys[i] for i in np_order]
    if split == "train":
        assert len(t["item"]) > len(set(users))  # sliding windows are there
    t = {k: v[order] for k, v in t.items()}
    x = {k: v[np_order] for k, v in s.x.items()}
    y = {k: v[np_order] for k, v in s.y.items()}

    def tokens(source, name, ids):
        vocab = pp.read_vocabulary(tfo, name) if source == "tfx" else enc.vocabs[name]
        return np.asarray(vocab, dtype=object)[ids]

    for name in ["item", *cfg.categorical]:
        vocab_name = "item" if name == "item" else name
        assert (tokens("tfx", vocab_name, t[name]) == tokens("np", vocab_name, x[name])).all(), name
    assert (tokens("tfx", "item", t["label_item"]) == tokens("np", "item", y["item"])).all()
    for spec in schema.intents:
        c = spec.column
        if spec.kind == "single":
            assert (tokens("tfx", c, t["label_" + c]) == tokens("np", c, y[c])).all(), c
    for c in schema.multi_label:
        perm = [enc.vocabs[c].index(tok) for tok in pp.read_vocabulary(tfo, c)]
        for tfx_key, ref in ((c, x[c]), ("label_" + c, y.get(c))):
            if ref is None:
                continue
            mapped = np.zeros_like(ref)
            mapped[..., perm] = t[tfx_key]
            np.testing.assert_array_equal(mapped, ref, err_msg=tfx_key)
    np.testing.assert_allclose(t["time"], x["time"], rtol=1e-5, atol=1e-5)
    for c in schema.numeric:
        np.testing.assert_allclose(t[c], x[c], rtol=1e-4, atol=1e-4, err_msg=c)
    np.testing.assert_allclose(t["sample_weight"], s.w[np_order], rtol=1e-5, atol=1e-6)
