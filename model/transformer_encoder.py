"""A pre-norm Transformer encoder stack that takes an explicit attention mask."""

import keras
from keras import layers, ops

# Fused ("flash") attention: None lets the backend decide (cuDNN's kernel on a GPU
# for JAX under bf16/fp16, the composite elsewhere); True requests it, False forbids it.
_FLASH_ATTENTION = None


def set_flash_attention(value):
    """Requests (`True`), forbids (`False`) or leaves to the backend (`None`) fused
    attention. Process-global: call it before the first training step is traced."""
    global _FLASH_ATTENTION
    if value not in (None, True, False):
        raise ValueError(f"flash attention must be None, True or False, got {value!r}")
    _FLASH_ATTENTION = value


def attention_info() -> dict:
    """The attention setting, for benchmark reports."""
    return {"keras": keras.__version__, "flash_attention_requested": _FLASH_ATTENTION}


def dot_product_attention(q, k, v, mask, bias=None):
    """`ops.dot_product_attention` with the process-wide flash setting.

    q, k, v `[batch, seq, heads, head_dim]`, mask bool `[batch, 1, seq_q, seq_k]`,
    bias (optional) `[batch, heads, seq_q, seq_k]` added to the attention logits.
    """
    if bias is not None:
        bias = ops.cast(bias, q.dtype)
    return ops.dot_product_attention(q, k, v, bias=bias, mask=mask, flash_attention=_FLASH_ATTENTION)


@keras.saving.register_keras_serializable(package="intentrec")
class TransformerBlock(layers.Layer):
    """One pre-LayerNorm block: masked self-attention, then a GELU feed-forward.

    Args:
        d_model: width; `d_model % num_heads == 0`.
        num_heads: attention heads.
        ffn_dim: feed-forward hidden width.
        dropout: dropout on both residual branches.
    """

    def __init__(self, d_model, num_heads, ffn_dim, dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        if d_model % num_heads:
            raise ValueError(f"d_model={d_model} is not divisible by num_heads={num_heads}")
        self.d_model = d_model
        self.num_heads = num_heads
        self.ffn_dim = ffn_dim
        self.dropout = dropout
        self.head_dim = d_model // num_heads

        # === Layers ===
        self.attn_norm = layers.LayerNormalization(epsilon=1e-6, name="attn_norm", dtype=self.dtype_policy)
        self.qkv = layers.Dense(3 * d_model, name="qkv", dtype=self.dtype_policy)
        self.attn_out = layers.Dense(d_model, name="attn_out", dtype=self.dtype_policy)
        self.ffn_norm = layers.LayerNormalization(epsilon=1e-6, name="ffn_norm", dtype=self.dtype_policy)
        self.ffn_in = layers.Dense(ffn_dim, activation="gelu", name="ffn_in", dtype=self.dtype_policy)
        self.ffn_out = layers.Dense(d_model, name="ffn_out", dtype=self.dtype_policy)
        self.drop = layers.Dropout(dropout)

    def build(self, input_shape):
        shape = tuple(input_shape)
        for layer in (self.attn_norm, self.qkv, self.ffn_norm, self.ffn_in):
            layer.build(shape)
        self.attn_out.build(shape[:-1] + (self.d_model,))
        self.ffn_out.build(shape[:-1] + (self.ffn_dim,))
        self.built = True

    def call(self, x, mask, bias=None, training=None):
        """x `[batch, seq, d_model]`, mask bool `[batch, seq, seq]`, bias (optional)
        `[batch, heads, seq, seq]` → `[batch, seq, d_model]`."""
        batch, seq = ops.shape(x)[0], ops.shape(x)[1]
        qkv = ops.reshape(self.qkv(self.attn_norm(x)), (batch, seq, 3, self.num_heads, self.head_dim))
        q, k, v = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]  # [batch, seq, heads, head_dim]
        attended = dot_product_attention(q, k, v, mask[:, None, :, :], bias)
        attended = self.attn_out(ops.reshape(attended, (batch, seq, self.d_model)))
        x = x + self.drop(attended, training=training)
        return x + self.drop(self.ffn_out(self.ffn_in(self.ffn_norm(x))), training=training)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {"d_model": self.d_model, "num_heads": self.num_heads, "ffn_dim": self.ffn_dim, "dropout": self.dropout}
        )
        return config


@keras.saving.register_keras_serializable(package="intentrec")
class TransformerEncoder(layers.Layer):
    """Stack of pre-LayerNorm `TransformerBlock`s over `[batch, seq, d_model]`.

    Attention goes through `keras.ops.dot_product_attention`, which each backend
    maps to its fused kernel where one exists (e.g. `jax.nn.dot_product_attention`).
    The caller supplies the mask (causal, padding, time window), so one class
    serves the intent encoder, the item encoder and the short-term encoder.

    Args:
        num_layers: number of blocks.
        d_model: model width; inputs must already have this last dimension.
        num_heads: attention heads; `d_model` must be divisible by it.
        ffn_dim: hidden width of the feed-forward sublayer.
        dropout: dropout rate on attention output and feed-forward output.

    Example:
    ```python
    enc = TransformerEncoder(num_layers=2, d_model=64, num_heads=2, ffn_dim=256)
    x = keras.random.normal((8, 50, 64))
    mask = model.masks.causal_mask(keras.ops.ones((8, 50), "bool"))
    y = enc(x, mask)  # [8, 50, 64]
    ```
    """

    def __init__(self, num_layers, d_model, num_heads, ffn_dim, dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        self.num_layers = num_layers
        self.d_model = d_model
        self.num_heads = num_heads
        self.ffn_dim = ffn_dim
        self.dropout = dropout

        # === Layers ===
        self.blocks = [
            TransformerBlock(d_model, num_heads, ffn_dim, dropout, name=f"block_{i}", dtype=self.dtype_policy)
            for i in range(num_layers)
        ]
        self.final_norm = layers.LayerNormalization(epsilon=1e-6, name="final_norm", dtype=self.dtype_policy)

    def build(self, input_shape):
        for block in self.blocks:
            block.build(input_shape)
        self.final_norm.build(input_shape)
        self.built = True

    def call(self, x, mask, bias=None, training=None):
        """x: `[batch, seq, d_model]`; mask: bool `[batch, seq, seq]`; bias (optional): attention
        logit bias `[batch, heads, seq, seq]`, shared by every block → `[batch, seq, d_model]`."""
        for block in self.blocks:
            x = block(x, mask, bias=bias, training=training)
        return self.final_norm(x)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_layers": self.num_layers,
                "d_model": self.d_model,
                "num_heads": self.num_heads,
                "ffn_dim": self.ffn_dim,
                "dropout": self.dropout,
            }
        )
        return config
