"""Attention masks over left-padded sequences, in `keras.ops` only.

All masks are boolean `[batch, query, key]`, True where attention is allowed.
Every position may always attend to itself, so a padded query row is never
all-False (which would make the softmax NaN); padded rows are ignored by the
loss and never attended to by real positions.
"""

import keras
from keras import layers, ops


def padding_mask(item_ids):
    """`[batch, seq]` int ids → `[batch, seq]` bool, True at real interactions."""
    return ops.not_equal(item_ids, 0)


def _with_diagonal(mask):
    seq_len = ops.shape(mask)[-1]
    return ops.logical_or(mask, ops.cast(ops.eye(seq_len), "bool")[None])


def causal_mask(valid):
    """Position k attends to real positions i <= k. `valid`: `[batch, seq]` bool."""
    seq_len = ops.shape(valid)[-1]
    idx = ops.arange(seq_len)
    lower = ops.greater_equal(idx[:, None], idx[None, :])  # [q, k]
    mask = ops.logical_and(lower[None], valid[:, None, :])
    return _with_diagonal(mask)


def time_window_mask(valid, time, window):
    """Causal mask further limited to keys with `time[k] - time[i] <= window`.

    This is the paper's short-term rule (Eq. 1): pos = the first i with
    T_k - T_i <= H. Duplicate timestamps are inside each other's window, but
    causality still excludes later positions with an equal timestamp.

    Args:
        valid: `[batch, seq]` bool.
        time: `[batch, seq]` float, non-decreasing along real positions.
        window: H, in the unit of `time`.
    """
    delta = time[:, :, None] - time[:, None, :]  # [batch, q, k] = T_q - T_k
    in_window = ops.less_equal(delta, ops.cast(window, delta.dtype))
    return ops.logical_and(causal_mask(valid), in_window)


def count_window_mask(valid, count):
    """Causal mask limited to the last `count` positions (the paper's naive
    short-term definition, for data without timestamps)."""
    seq_len = ops.shape(valid)[-1]
    idx = ops.arange(seq_len)
    recent = ops.less(idx[:, None] - idx[None, :], count)  # [q, k]
    return ops.logical_and(causal_mask(valid), recent[None])


@keras.saving.register_keras_serializable(package="intentrec")
class CausalMask(layers.Layer):
    """`causal_mask` as a layer: inside a functional model whose sequence length is
    dynamic (a batch cut to its longest history), the mask's shape must come from
    the tensor at call time, not from the symbolic build."""

    def call(self, valid):
        return causal_mask(valid)

    def compute_output_shape(self, valid_shape):
        return (valid_shape[0], valid_shape[1], valid_shape[1])


@keras.saving.register_keras_serializable(package="intentrec")
class BidirectionalMask(layers.Layer):
    """Every query attends to every real key and to itself: `[batch, seq, seq]` (BERT4Rec)."""

    def call(self, valid):
        return _with_diagonal(ops.broadcast_to(valid[:, None, :], (ops.shape(valid)[0],) + (ops.shape(valid)[1],) * 2))

    def compute_output_shape(self, valid_shape):
        return (valid_shape[0], valid_shape[1], valid_shape[1])
