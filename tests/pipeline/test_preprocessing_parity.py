"""The TFT graph (pipeline/preprocessing.py) encodes exactly like the numpy reference encoder.

Both encode the same tiny dataset: the ExampleGen's per-user examples go through
`preprocessing_fn` with tf.Transform; `datasets.encode` encodes the DataFrame. Put in the
numpy encoder's row order by Transform's order keys (as the Trainer does), every split
has the same rows, the same ids (both order frequency ties by descending value), the
same inputs, targets, weights and whole-history seen items.
"""

import numpy as np
import pytest

from pipeline import preprocessing as pp
from pipeline import tft_local
from pipeline.transformed_data import has_target, row_order
from tests.pipeline.conftest import N

pytestmark = pytest.mark.timeout(1800)


def test_feature_spec_vocabularies_and_ids_match(tiny_transform):
    tfo, enc, cfg = tiny_transform["tfo"], tiny_transform["enc"], tiny_transform["cfg"]
    assert pp.feature_spec(tfo, cfg) == enc.feature_spec
    for name, tokens in enc.vocabs.items():
        assert pp.read_vocabulary(tfo, name) == tokens, name  # same values at the same ids
    assert pp.read_item_counts(tfo) == enc.item_popularity.tolist()
    counts = enc.preprocessor.item_vocab.counts
    assert len(set(counts)) < len(counts)  # frequency ties exist, so their order is checked


@pytest.mark.parametrize("split,np_split", [("train", "train"), ("eval", "val"), ("test", "test")])
def test_inputs_targets_weights_and_seen_items_match(tiny_transform, split, np_split):
    enc, cfg, schema = tiny_transform["enc"], tiny_transform["cfg"], tiny_transform["ds"].schema
    t = tft_local.stack(tiny_transform["res"][split])
    order = row_order(t[pp.ORDER_USER], t[pp.ORDER_END])
    # The Trainer's rows: those with a target (the numpy encoder makes no row of a
    # one-interaction training sequence), in the numpy encoder's order.
    order = order[has_target(t["label_item"][order])]
    t = {k: (v[order] if isinstance(v, np.ndarray) else [v[i] for i in order]) for k, v in t.items()}
    s = enc.split(np_split)
    assert [u.decode() for u in t[pp.ORDER_USER]] == s.user_ids.tolist()
    if split == "train":
        assert len(s) > len(set(s.user_ids))  # sliding windows are there

    for name in ["item", *cfg.categorical, *schema.multi_label]:
        np.testing.assert_array_equal(t[name], s.x[name], err_msg=name)
    np.testing.assert_array_equal(t["label_item"], s.y["item"])
    for spec in schema.intents:
        np.testing.assert_array_equal(t["label_" + spec.column], s.y[spec.column], err_msg=spec.column)
    np.testing.assert_allclose(t["time"], s.x["time"], rtol=1e-5, atol=1e-5)
    for c in schema.numeric:
        np.testing.assert_allclose(t[c], s.x[c], rtol=1e-4, atol=1e-4, err_msg=c)
    np.testing.assert_allclose(t["sample_weight"], s.w, rtol=1e-5, atol=1e-6)

    seen = t[pp.SEEN_OUTPUT]
    if split == "train":
        assert all(len(row) == 0 for row in seen)
    else:  # the whole history before the target, beyond the n inputs
        assert [set(row.tolist()) for row in seen] == [
            set(s.seen.ids[lo:hi].tolist()) for lo, hi in zip(s.seen.indptr[:-1], s.seen.indptr[1:])]
        assert max(len(row) for row in seen) > N
