import numpy as np
from keras import ops

from model import masks
from model.relative_time_bias import RelativeTimeBias
from model.transformer_encoder import TransformerEncoder
from tests.test_case import TestCase


class RelativeTimeBiasTest(TestCase):
    def test_gap_buckets_are_log_scale_and_symmetric(self):
        layer = RelativeTimeBias(num_heads=2, num_buckets=20)
        minute = 1.0 / (24 * 60)
        # days: the same moment, 20 min, 1 h, 1 day, 30 days, 1 year, 1000 years
        time = np.array([[0.0, 20 * minute, 60 * minute, 1.0, 30.0, 365.0, 365000.0]], "float32")
        buckets = ops.convert_to_numpy(layer.buckets(time))[0]
        np.testing.assert_array_equal(buckets, buckets.T)
        np.testing.assert_array_equal(np.diag(buckets), 0)
        np.testing.assert_array_equal(buckets[0], [0, 1, 2, 6, 11, 15, 19])  # the last bucket takes the rest

    def test_starts_at_zero_and_reads_its_table(self):
        layer = RelativeTimeBias(num_heads=2, num_buckets=4, time_unit_hours=1.0)
        time = np.array([[0.0, 0.0, 0.25, 5.0]], "float32")  # hours: buckets 0, 1 (0.25 h), 4.4 → 3
        valid = np.array([[False, True, True, True]])
        bias = ops.convert_to_numpy(layer(time, valid))
        self.assertEqual(bias.shape, (1, 2, 4, 4))
        np.testing.assert_array_equal(bias, 0.0)
        layer.table.assign(np.array([[1.0, -1.0], [2.0, -2.0], [3.0, -3.0], [4.0, -4.0]], "float32"))
        bias = ops.convert_to_numpy(layer(time, valid))
        np.testing.assert_array_equal(bias[0, 0, 1], [0.0, 1.0, 2.0, 4.0])  # padding key: 0
        np.testing.assert_array_equal(bias[0, 1, 3], [0.0, -4.0, -4.0, -1.0])
        np.testing.assert_array_equal(bias[0, :, 0], 0.0)  # padding query

    def test_bias_moves_attention(self):
        encoder = TransformerEncoder(num_layers=1, d_model=8, num_heads=2, ffn_dim=16)
        x = ops.convert_to_tensor(self.rng.normal(size=(2, 5, 8)).astype("float32"))
        causal = masks.causal_mask(ops.ones((2, 5), "bool"))
        plain = ops.convert_to_numpy(encoder(x, causal))
        np.testing.assert_allclose(ops.convert_to_numpy(encoder(x, causal, bias=ops.zeros((2, 2, 5, 5)))), plain,
                                   atol=1e-6)
        # A large bias on the first key makes every query attend to it alone.
        bias = np.zeros((2, 2, 5, 5), "float32")
        bias[..., 0] = 50.0
        moved = ops.convert_to_numpy(encoder(x, causal, bias=bias))
        np.testing.assert_allclose(moved[:, 0], plain[:, 0], atol=1e-5)  # position 0 only sees itself anyway
        self.assertGreater(np.abs(moved[:, 1:] - plain[:, 1:]).max(), 1e-3)

    def test_intentrec_with_the_bias_is_causal_trains_and_saves(self):
        model = self.make_model(variant="v3", relative_time_bias=True)
        names = {layer.name for layer in model.layers}
        self.assertTrue({"intent_relative_time_bias", "item_relative_time_bias"} <= names)
        x, y = self.random_batch(batch=3, lengths=[self.seq_len, 7, 4])
        for layer in (model.get_layer("intent_relative_time_bias"), model.get_layer("item_relative_time_bias")):
            layer.table.assign(self.rng.normal(size=tuple(layer.table.shape)).astype("float32"))
        base = model(x, training=False)
        k = self.seq_len - 3
        changed = {key: value.copy() for key, value in x.items()}
        changed["time"][:, k + 1:] += 2.0  # only the future's time gaps change
        out = model(changed, training=False)
        for key in base:
            np.testing.assert_allclose(ops.convert_to_numpy(base[key])[:, : k + 1],
                                       ops.convert_to_numpy(out[key])[:, : k + 1], atol=1e-5, err_msg=key)
        diff = np.abs(ops.convert_to_numpy(base["item_hidden"])[0, k + 1:]
                      - ops.convert_to_numpy(out["item_hidden"])[0, k + 1:])
        self.assertGreater(diff.max(), 1e-4)  # ...and the gaps are read
        model.compile(optimizer="adam")
        before = ops.convert_to_numpy(model.get_layer("item_relative_time_bias").table).copy()
        model.fit(x, y, batch_size=3, epochs=2, verbose=0)
        after = ops.convert_to_numpy(model.get_layer("item_relative_time_bias").table)
        self.assertGreater(np.abs(after - before).max(), 0.0)
        self.run_model_saving_test(model, x)
