"""An attention bias from the interactions' attributes, decoupled from the item (DIF-SR)."""

import keras
from keras import layers, ops


@keras.saving.register_keras_serializable(package="intentrec")
class AttributeAttentionBias(layers.Layer):
    """Per-head attention logit bias (A_q W_q^h)·(A_k W_k^h) / √d_k from the attributes A of
    every query/key pair of interactions.

    The encoder input adds the item embedding and a projection of the attributes (genre,
    action type, duration, S_k, Z_k) into one vector, so attention scores two
    interactions by the mixture. This scores them by their attributes as well, on their
    own: "both comedies", "both watched on a weekend night" (Xie et al., DIF-SR, SIGIR 2022:
    fusing attributes into the attention logits rather than into the item embedding).
    The key projection starts at zero, so a new model attends exactly as one without the
    bias until training moves it.

    Args:
        num_heads: attention heads of the encoder it feeds.
        key_dim: width of each head's attribute query/key.

    Example:
    ```python
    bias = AttributeAttentionBias(num_heads=2)(attributes, valid)  # [batch, 2, seq, seq]
    hidden = TransformerEncoder(2, 64, 2, 256)(x, causal_mask, bias=bias)
    ```
    """

    def __init__(self, num_heads, key_dim=16, **kwargs):
        super().__init__(**kwargs)
        self.num_heads = int(num_heads)
        self.key_dim = int(key_dim)

    def build(self, attributes_shape, valid_shape=None):
        width = attributes_shape[-1]
        self.query = self.add_weight(shape=(width, self.num_heads, self.key_dim), initializer="glorot_uniform",
                                     name="query")
        self.key = self.add_weight(shape=(width, self.num_heads, self.key_dim), initializer="zeros", name="key")
        self.built = True

    def call(self, attributes, valid):
        """attributes `[batch, seq, width]`, valid bool `[batch, seq]` → `[batch, heads, seq, seq]`
        (0 where either side is padding; the mask removes those pairs anyway)."""
        query = ops.einsum("bsw,whk->bhsk", attributes, ops.cast(self.query, attributes.dtype))
        key = ops.einsum("bsw,whk->bhsk", attributes, ops.cast(self.key, attributes.dtype))
        bias = ops.einsum("bhqk,bhsk->bhqs", query, key) * (self.key_dim ** -0.5)
        pair = ops.logical_and(valid[:, None, :, None], valid[:, None, None, :])
        return ops.where(pair, ops.cast(bias, "float32"), 0.0)

    def compute_output_shape(self, attributes_shape, valid_shape=None):
        batch, seq = attributes_shape[0], attributes_shape[1]
        return (batch, self.num_heads, seq, seq)

    def get_config(self):
        config = super().get_config()
        config.update({"num_heads": self.num_heads, "key_dim": self.key_dim})
        return config
