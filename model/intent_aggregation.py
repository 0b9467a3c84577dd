"""Attention aggregation of intent predictions into Z (paper Eq. 2)."""

import keras
from keras import layers, ops


@keras.saving.register_keras_serializable(package="intentrec")
class IntentAggregation(layers.Layer):
    """Z_k = Σ_i softmax(α)_i · Proj_i(p_i), with α_i = FC_att(Proj_i(p_i)).

    Each head's prediction p_i (`[batch, seq, d_i]`) is projected to `d_proj`;
    one shared scoring layer FC_att gives a scalar α_i per head, softmax over the
    M heads gives each head's weight for this user and position, and Z is the
    weighted sum. The weights are returned as well: they are the per-user
    "primary intent" explanation of paper §4.5.

    Args:
        num_heads: M, the number of intent heads (for checks only).
        d_proj: width of Z.

    Example:
    ```python
    agg = IntentAggregation(num_heads=2, d_proj=32)
    z, alpha = agg([p_action, p_genre])  # [batch, seq, 32], [batch, seq, 2]
    ```
    """

    def __init__(self, num_heads, d_proj, **kwargs):
        super().__init__(**kwargs)
        self.num_heads = num_heads
        self.d_proj = d_proj

        # === Layers ===
        self.projections = [
            layers.Dense(d_proj, name=f"proj_{i}", dtype=self.dtype_policy)
            for i in range(num_heads)
        ]
        self.attention_score = layers.Dense(1, name="fc_att", dtype=self.dtype_policy)

    def build(self, input_shapes):
        for proj, shape in zip(self.projections, input_shapes):
            proj.build(shape)
        self.attention_score.build(tuple(input_shapes[0][:-1]) + (self.d_proj,))
        self.built = True

    def call(self, predictions):
        """predictions: list of M `[batch, seq, d_i]` → (Z `[batch, seq, d_proj]`, α `[batch, seq, M]`)."""
        if len(predictions) != self.num_heads:
            raise ValueError(f"expected {self.num_heads} intent predictions, got {len(predictions)}")
        projected = ops.stack(
            [proj(ops.cast(p, self.compute_dtype)) for proj, p in zip(self.projections, predictions)], axis=-2
        )  # [batch, seq, M, d_proj]
        scores = ops.squeeze(self.attention_score(projected), axis=-1)  # [batch, seq, M]
        if self.num_heads == 1:  # one head takes all the weight (a softmax over one value warns)
            alpha = ops.ones_like(ops.cast(scores, "float32"))
        else:
            alpha = ops.softmax(ops.cast(scores, "float32"), axis=-1)
        z = ops.sum(projected * ops.cast(alpha, projected.dtype)[..., None], axis=-2)
        return z, alpha

    def compute_output_shape(self, input_shapes):
        prefix = tuple(input_shapes[0][:-1])
        return prefix + (self.d_proj,), prefix + (self.num_heads,)

    def get_config(self):
        config = super().get_config()
        config.update({"num_heads": self.num_heads, "d_proj": self.d_proj})
        return config
