"""Shared test helpers (one TestCase for the whole suite, keras-hub style)."""

import os
import tempfile
import unittest

import keras
import numpy as np

from datasets.feature_spec import FeatureSpec, IntentHead
from model import IntentRec, IntentRecConfig

SEQ_LEN = 12
FEATURE_SPEC = FeatureSpec(
    max_len=SEQ_LEN,
    item_vocab_size=40,
    categorical=(("action_type", 6), ("item_type", 4)),
    multi_hot=(("genre", 7),),
    numeric=("duration",),
    intents=(IntentHead("action_type", "single", 6), IntentHead("item_type", "single", 4),
             IntentHead("genre", "multi", 7)),
    has_timestamps=True,
)


class TestCase(unittest.TestCase):
    """Helpers to build small models and random left-padded batches."""

    seq_len = SEQ_LEN

    def setUp(self):
        keras.utils.set_random_seed(1)
        self.rng = np.random.default_rng(0)

    def make_config(self, **overrides):
        kwargs = dict(d_model=16, num_heads=2, intent_layers=1, item_layers=1,
                      feature_embedding_dim=8, d_short=8, d_proj=8, dropout=0.0)
        kwargs.update(overrides)
        intents = kwargs.pop("intents", None)
        spec = kwargs.pop("feature_spec", FEATURE_SPEC)
        return IntentRecConfig.from_feature_spec(spec, intents=intents, **kwargs)

    def make_model(self, **overrides):
        return IntentRec(self.make_config(**overrides))

    def random_batch(self, batch=4, lengths=None, spec=FEATURE_SPEC):
        """A left-padded batch `(x, y)` with next-step targets and weights in `y`."""
        n = self.seq_len
        if lengths is None:
            lengths = self.rng.integers(2, n + 1, batch)
        lengths = np.asarray(lengths)
        valid = np.arange(n)[None, :] >= (n - lengths)[:, None]

        def ids(size):
            return np.where(valid, self.rng.integers(2, size, valid.shape), 0).astype("int32")

        # Random gaps with duplicates (gap 0) to exercise equal timestamps.
        gaps = self.rng.choice([0.0, 0.01, 0.5, 3.0, 10.0], valid.shape)
        time = np.where(valid, np.cumsum(np.where(valid, gaps, 0.0), axis=1), 0.0)
        first = np.take_along_axis(time, (n - lengths)[:, None].clip(max=n - 1), axis=1)
        x = {"item": ids(spec.item_vocab_size), "time": np.where(valid, time - first, 0.0).astype("float32")}
        for name, size in spec.categorical:
            x[name] = ids(size)
        for name, size in spec.multi_hot:
            mh = (self.rng.random(valid.shape + (size,)) < 0.3) & valid[..., None]
            mh[..., :2] = False
            x[name] = mh.astype("float32")
        for name in spec.numeric:
            x[name] = np.where(valid, self.rng.normal(size=valid.shape), 0.0).astype("float32")
        y = {"item": np.roll(x["item"], -1, axis=1)}
        for head in spec.intents:
            y[head.name] = np.roll(x[head.name], -1, axis=1)
        weight = (valid & np.roll(valid, -1, axis=1)).astype("float32") * self.rng.uniform(0.5, 2.0, valid.shape)
        weight[:, -1] = 0.0
        y["weight"] = weight.astype("float32")
        return x, y

    def assert_outputs_close(self, a, b, atol=1e-5, keys=None):
        for key in keys or a:
            np.testing.assert_allclose(
                keras.ops.convert_to_numpy(a[key]), keras.ops.convert_to_numpy(b[key]), atol=atol, err_msg=key
            )

    def run_model_saving_test(self, model, x):
        """`.keras` round trip and `from_config` rebuild give identical outputs."""
        expected = model(x, training=False)
        path = os.path.join(tempfile.mkdtemp(), "model.keras")
        model.save(path)
        restored = keras.saving.load_model(path)
        self.assertEqual(restored.get_config(), model.get_config())
        self.assert_outputs_close(expected, restored(x, training=False))
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(model.item_head.kernel), keras.ops.convert_to_numpy(restored.item_head.kernel)
        )
        rebuilt = type(model).from_config(model.get_config())
        self.assertEqual(sorted(rebuilt(x).keys()), sorted(expected.keys()))
        return restored
