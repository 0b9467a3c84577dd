"""Input feature constructor F_k (paper §3.2)."""

import keras
from keras import layers, ops


@keras.saving.register_keras_serializable(package="intentrec")
class InputFeatureConstructor(layers.Layer):
    """Builds F_k = E_item ⊕ E_cat_1 ⊕ … ⊕ E_multi_1 ⊕ … ⊕ numeric_1 ⊕ … .

    Driven by a feature spec, not by column names: any categorical column gets
    an embedding table, any multi-label column a multi-hot embedding (the mean of
    its values' embeddings), and numeric columns (already normalised upstream)
    are appended as 1-d features.

    Args:
        item_vocab_size: item ids incl. padding (0) and OOV (1).
        item_embedding_dim: width of the item embedding.
        categorical: `{name: vocab_size}` for single-valued categorical inputs.
        multi_hot: `{name: num_values}` for multi-label inputs (multi-hot vectors).
        numeric: names of numeric inputs.
        feature_embedding_dim: width of every metadata embedding.

    Example:
    ```python
    fc = InputFeatureConstructor(1000, 64, {"action_type": 6}, {"genre": 21}, ["duration"])
    f = fc({"item": ids, "action_type": acts, "genre": multi_hot, "duration": dur})
    # f: [batch, seq, 64 + 16 + 16 + 1]
    ```
    """

    def __init__(
        self,
        item_vocab_size,
        item_embedding_dim,
        categorical=None,
        multi_hot=None,
        numeric=(),
        feature_embedding_dim=16,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.item_vocab_size = item_vocab_size
        self.item_embedding_dim = item_embedding_dim
        self.categorical = dict(categorical or {})
        self.multi_hot = dict(multi_hot or {})
        self.numeric = list(numeric)
        self.feature_embedding_dim = feature_embedding_dim

        # === Layers ===
        self.item_embedding = layers.Embedding(
            item_vocab_size, item_embedding_dim, name="item_embedding", dtype=self.dtype_policy
        )
        self.categorical_embeddings = {
            name: layers.Embedding(size, feature_embedding_dim, name=f"{name}_embedding", dtype=self.dtype_policy)
            for name, size in self.categorical.items()
        }
        self.multi_hot_embeddings = {
            name: layers.Dense(feature_embedding_dim, use_bias=False, name=f"{name}_embedding", dtype=self.dtype_policy)
            for name, size in self.multi_hot.items()
        }

    @property
    def output_dim(self):
        return (
            self.item_embedding_dim
            + self.feature_embedding_dim * (len(self.categorical) + len(self.multi_hot))
            + len(self.numeric)
        )

    def build(self, input_shape):
        self.item_embedding.build(None)
        for emb in self.categorical_embeddings.values():
            emb.build(None)
        for name, layer in self.multi_hot_embeddings.items():
            layer.build((None, None, self.multi_hot[name]))
        self.built = True

    def call(self, inputs):
        """inputs: dict of `[batch, seq]` (multi-hot: `[batch, seq, G]`) → `[batch, seq, output_dim]`."""
        parts = [self.item_embedding(inputs["item"])]
        for name, emb in self.categorical_embeddings.items():
            parts.append(emb(inputs[name]))
        for name, layer in self.multi_hot_embeddings.items():
            multi_hot = ops.cast(inputs[name], self.compute_dtype)
            count = ops.maximum(ops.sum(multi_hot, axis=-1, keepdims=True), 1.0)
            parts.append(layer(multi_hot / count))
        for name in self.numeric:
            parts.append(ops.cast(inputs[name], self.compute_dtype)[..., None])
        return ops.concatenate(parts, axis=-1)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "item_vocab_size": self.item_vocab_size,
                "item_embedding_dim": self.item_embedding_dim,
                "categorical": self.categorical,
                "multi_hot": self.multi_hot,
                "numeric": self.numeric,
                "feature_embedding_dim": self.feature_embedding_dim,
            }
        )
        return config
