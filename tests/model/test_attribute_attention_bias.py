import numpy as np
from keras import ops

from model.attribute_attention_bias import AttributeAttentionBias
from tests.test_case import TestCase


class AttributeAttentionBiasTest(TestCase):
    def test_starts_at_zero_and_compares_attributes(self):
        layer = AttributeAttentionBias(num_heads=2, key_dim=4)
        attributes = self.rng.normal(size=(2, 5, 6)).astype("float32")
        valid = np.array([[False, True, True, True, True], [True] * 5])
        bias = ops.convert_to_numpy(layer(attributes, valid))
        self.assertEqual(bias.shape, (2, 2, 5, 5))
        np.testing.assert_array_equal(bias, 0.0)
        layer.key.assign(self.rng.normal(size=(6, 2, 4)).astype("float32"))
        bias = ops.convert_to_numpy(layer(attributes, valid))
        query = np.einsum("bsw,whk->bhsk", attributes, ops.convert_to_numpy(layer.query))
        key = np.einsum("bsw,whk->bhsk", attributes, ops.convert_to_numpy(layer.key))
        expected = np.einsum("bhqk,bhsk->bhqs", query, key) / 2.0
        np.testing.assert_allclose(bias[1], expected[1], rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(bias[0, :, 1:, 1:], expected[0, :, 1:, 1:], rtol=1e-4, atol=1e-5)
        np.testing.assert_array_equal(bias[0, :, 0], 0.0)  # padding query
        np.testing.assert_array_equal(bias[0, :, :, 0], 0.0)  # padding key

    def test_intentrec_with_the_bias_trains_and_saves(self):
        """(Causality: `test_intentrec.test_causality_every_output`.)"""
        model = self.make_model(variant="v3", attribute_attention_bias=True)
        names = {layer.name for layer in model.layers}
        self.assertTrue({"intent_attribute_bias", "item_attribute_bias"} <= names)
        x, y = self.random_batch(batch=3, lengths=[self.seq_len, 7, 4])
        model.compile(optimizer="adam")
        before = ops.convert_to_numpy(model.get_layer("item_attribute_bias").key).copy()
        model.fit(x, y, batch_size=3, epochs=2, verbose=0)
        after = ops.convert_to_numpy(model.get_layer("item_attribute_bias").key)
        self.assertGreater(np.abs(after - before).max(), 0.0)  # training moves the bias off zero
        self.run_model_saving_test(model, x)
