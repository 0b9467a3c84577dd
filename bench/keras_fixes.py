"""Keras 3.6 compatibility shims for the benchmarks (the model itself needs none).

- `jax_compat()`: Keras 3.6's JAX trainer calls `jax.spmd_mode`, which newer JAX
  (e.g. the GPU machine's 0.11) no longer has.
- `jax_attention(implementation)`: routes JAX attention through cuDNN's fused kernel
  (Keras 3.6 passes no `implementation`), so the speed benchmark can measure it.

Keras 3.6's TF `ops.dot_product_attention` squares its logits (fixed in Keras 3.7,
keras-team/keras#20510); `model.transformer_encoder.dot_product_attention` computes
attention itself on TensorFlow, so no process-wide patch is needed for that.
"""

from __future__ import annotations

import contextlib


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
