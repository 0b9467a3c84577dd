"""Work-around for a Keras 3.6 TensorFlow-backend bug in `ops.dot_product_attention`.

Keras 3.6's `keras.src.backend.tensorflow.nn._dot_product_attention_xla` computes
`logits = logits * logits` where it means `logits * scale`: attention logits are the
*squared*, unscaled q·k (sign lost, magnitudes exploded). JAX is correct
(`jax.nn.dot_product_attention`). Fixed upstream in keras-team/keras#20510 (Keras
3.7). Every Transformer here (`model.transformer_encoder.TransformerBlock`) calls
`ops.dot_product_attention`, so on TF 3.6 every attention model trains on the wrong
function (same weights: outputs differ from JAX by O(1); SASRec on ML-100K learns
2–3x slower per epoch).

`model.transformer_encoder.dot_product_attention` now computes attention itself on
TensorFlow, so the project's models no longer reach the buggy function. `apply()`
still swaps in the corrected function for the current process when the backend is
TensorFlow and the installed function is the buggy one (elsewhere it does nothing),
for any other code that calls `ops.dot_product_attention` directly.
"""

from __future__ import annotations

import contextlib
import inspect

_BUGGY_LINE = "tf.multiply(logits, tf.cast(logits, logits.dtype))"


def needs_fix() -> bool:
    import keras

    if keras.config.backend() != "tensorflow":
        return False
    from keras.src.backend.tensorflow import nn

    fn = getattr(nn, "_dot_product_attention_xla", None)
    return fn is not None and _BUGGY_LINE in inspect.getsource(fn)


_ORIGINAL = []


def apply() -> bool:
    """Patch the TF backend's attention if it has the bug. Returns whether it patched."""
    if not needs_fix():
        return False
    import tensorflow as tf
    from keras.src import backend
    from keras.src.backend.tensorflow import nn

    def _dot_product_attention_xla(query, key, value, bias, mask, is_causal, scale):
        logits_dtype = backend.result_type(query.dtype, "float32")
        logits = tf.einsum("BTNH,BSNH->BNTS", tf.cast(query, dtype=logits_dtype),
                           tf.cast(key, dtype=logits_dtype), optimize="optimal")
        logits = tf.multiply(logits, tf.cast(scale, logits.dtype))  # the fix
        if bias is not None:
            logits = tf.add(logits, tf.cast(bias, logits.dtype))
        padded_logits = nn._apply_masks(logits, mask, is_causal)
        probs_dtype = backend.result_type(padded_logits.dtype, "float32")
        probs = tf.cast(tf.nn.softmax(tf.cast(padded_logits, probs_dtype), axis=-1), key.dtype)
        return tf.einsum("BNTS,BSNH->BTNH", probs, value, optimize="optimal")

    _ORIGINAL.append(nn._dot_product_attention_xla)
    nn._dot_product_attention_xla = _dot_product_attention_xla
    return True


def restore() -> None:
    """Undo `apply()` (the process gets Keras' own function back)."""
    if _ORIGINAL:
        from keras.src.backend.tensorflow import nn

        nn._dot_product_attention_xla = _ORIGINAL[0]
        _ORIGINAL.clear()


@contextlib.contextmanager
def corrected_attention():
    """`with corrected_attention() as patched:` the fix inside the block only."""
    patched = apply()
    try:
        yield patched
    finally:
        if patched:
            restore()


def jax_compat() -> list[str]:
    """Keras 3.6 on a newer JAX: restores what its JAX trainer calls and JAX removed.

    Keras 3.6's `fit`/`evaluate` enter `jax.spmd_mode("allow_all")` around metric
    reads (a multi-process guard); JAX dropped `spmd_mode` after 0.4.3x (the GPU
    machine's JAX is 0.11), so `fit` fails with AttributeError. A no-op context
    manager is what the call means on one process. Returns the names it added;
    does nothing where JAX is absent or already has them.
    """
    try:
        import jax
    except ImportError:
        return []
    added = []
    if not hasattr(jax, "spmd_mode"):
        jax.spmd_mode = lambda *args, **kwargs: contextlib.nullcontext()
        added.append("jax.spmd_mode")
    return added


@contextlib.contextmanager
def jax_attention(implementation):
    """JAX backend: `ops.dot_product_attention` through
    `jax.nn.dot_product_attention(..., implementation=implementation)` inside the
    block ("cudnn": cuDNN's fused flash attention on NVIDIA GPUs, bf16/fp16 only;
    "xla": the composite). Keras 3.6 passes no `implementation` (JAX then uses
    XLA's composite) and has no `flash_attention` argument yet. `None`: unchanged.
    """
    import keras

    if implementation is None or keras.config.backend() != "jax":
        yield False
        return
    import jax
    from keras.src.backend.jax import nn

    original = nn.dot_product_attention

    def dot_product_attention(query, key, value, bias=None, mask=None, scale=None, is_causal=False, **kwargs):
        return jax.nn.dot_product_attention(query, key, value, bias=bias, mask=mask, scale=scale,
                                            is_causal=is_causal, implementation=implementation)

    nn.dot_product_attention = dot_product_attention
    try:
        yield True
    finally:
        nn.dot_product_attention = original
