"""Next-item head FC_item and its losses (paper §3.4, Eq. 3).

Three losses, one objective (the weighted mean next-item cross-entropy):

| `loss_mode` | what it computes | memory | when |
|---|---|---|---|
| `"full"` | softmax over the whole catalogue, logits materialised | `rows × |I|` floats, kept for the backward pass | reference; small catalogues |
| `"chunked"` | the same value and gradients, exactly | `rows × chunk_size` at a time | any catalogue; the default to use |
| `"sampled"` | softmax over the target and shared negatives, log-Q corrected | `rows × (negatives + 1)` | very large catalogues (≥ ~100k items) |

`max_label_positions` additionally restricts the loss to labelled rows (weight > 0).
See docs/performance.md for the measurements.
"""

import math

import keras
from keras import layers, ops

from datasets.schema import NUM_RESERVED_IDS

LOSS_MODES = ("full", "chunked", "sampled")


def full_softmax_cross_entropy(hidden, kernel, bias, labels):
    """Per-row softmax cross-entropy with the `[rows, |I|]` logits materialised.

    hidden `[rows, d]`, kernel `[d, |I|]`, bias `[|I|]`, labels int `[rows]` → float32 `[rows]`.
    """
    logits = ops.cast(ops.matmul(hidden, ops.cast(kernel, hidden.dtype)), "float32") + ops.cast(bias, "float32")
    true_logit = ops.take_along_axis(logits, labels[:, None], axis=-1)[:, 0]
    return ops.logsumexp(logits, axis=-1) - true_logit


def chunked_softmax_cross_entropy(hidden, kernel, bias, labels, weights, chunk_size=8192):
    """Σ_r w_r · CE_r of the full softmax, without ever building `[rows, |I|]`.

    The forward pass runs an online log-sum-exp over item chunks (the target's
    logit is picked up in the chunk that holds it) and keeps only the per-row
    log-sum-exp. The backward pass (a `keras.ops.custom_gradient`) recomputes each
    chunk's logits and uses softmax − one-hot for that chunk:

        ∂/∂h_r = g_r Σ_j (p_rj − 1[j = y_r]) W_j,   ∂/∂W_j = Σ_r g_r (p_rj − 1[j = y_r]) h_r,
        ∂/∂b_j = Σ_r g_r (p_rj − 1[j = y_r]),       g_r = upstream · w_r.

    So peak memory is `rows × chunk_size` floats, at the price of one extra
    `rows × d × |I|` matmul (4 instead of 3). Values and gradients equal
    `full_softmax_cross_entropy` (tests/model/test_item_head.py, TF and JAX).

    Args:
        hidden: `[rows, d]` (float32 or bfloat16; matmuls run in its dtype,
            softmax arithmetic in float32).
        kernel: `[d, |I|]`; bias: `[|I|]`.
        labels: int `[rows]`; weights: float `[rows]` (not differentiated).
        chunk_size: items per chunk (static).

    Returns:
        float32 scalar Σ_r weights_r · CE_r.
    """
    labels = ops.cast(labels, "int32")
    weights = ops.cast(weights, "float32")
    # Plain tensors, not variables (TF's custom_gradient would track a variable
    # read inside as a second input); XLA elides the copies.
    kernel, bias = ops.copy(kernel), ops.copy(bias)
    num_items = int(kernel.shape[-1])
    bounds = [(s, min(s + chunk_size, num_items)) for s in range(0, num_items, chunk_size)]
    compute_dtype = hidden.dtype

    def chunk_logits(hidden, kernel, bias, start, stop):
        logits = ops.matmul(hidden, ops.cast(kernel[:, start:stop], compute_dtype))
        return ops.cast(logits, "float32") + ops.cast(bias[start:stop], "float32")[None, :]

    # labels and weights are arguments, not closed over: JAX traces the custom
    # gradient lazily, and a closure over tracers of an enclosing `ops.cond`
    # branch would leak them.
    @ops.custom_gradient
    def loss_sum(hidden, kernel, bias, labels, weights):
        def one_hot(start, stop):
            return ops.equal(labels[:, None], ops.arange(start, stop, dtype="int32")[None, :])

        running_max = running_sum = true_logit = None
        for start, stop in bounds:
            logits = chunk_logits(hidden, kernel, bias, start, stop)
            picked = ops.sum(ops.where(one_hot(start, stop), logits, 0.0), axis=-1)
            chunk_max = ops.max(logits, axis=-1)
            if running_max is None:
                running_max, true_logit = chunk_max, picked
                running_sum = ops.sum(ops.exp(logits - chunk_max[:, None]), axis=-1)
                continue
            new_max = ops.maximum(running_max, chunk_max)
            running_sum = running_sum * ops.exp(running_max - new_max) + ops.sum(
                ops.exp(logits - new_max[:, None]), axis=-1
            )
            running_max, true_logit = new_max, true_logit + picked
        lse = running_max + ops.log(running_sum)
        total = ops.sum(weights * (lse - true_logit))

        def grad(*args, upstream=None):
            if upstream is None:
                (upstream,) = args
            row_scale = weights * ops.cast(upstream, "float32")  # [rows]
            grad_hidden = None
            grad_kernel, grad_bias = [], []
            for start, stop in bounds:
                logits = chunk_logits(hidden, kernel, bias, start, stop)
                delta = ops.exp(logits - lse[:, None]) - ops.cast(one_hot(start, stop), "float32")
                delta = delta * row_scale[:, None]  # [rows, chunk]
                delta_c = ops.cast(delta, compute_dtype)
                part = ops.matmul(delta_c, ops.transpose(ops.cast(kernel[:, start:stop], compute_dtype)))
                part = ops.cast(part, "float32")
                grad_hidden = part if grad_hidden is None else grad_hidden + part
                grad_kernel.append(ops.matmul(ops.transpose(hidden), delta_c))
                grad_bias.append(ops.sum(delta, axis=0))
            grad_kernel = grad_kernel[0] if len(grad_kernel) == 1 else ops.concatenate(grad_kernel, axis=1)
            grad_bias = grad_bias[0] if len(grad_bias) == 1 else ops.concatenate(grad_bias, axis=0)
            return (
                ops.cast(grad_hidden, hidden.dtype),
                ops.cast(grad_kernel, kernel.dtype),
                ops.cast(grad_bias, bias.dtype),
                None,  # labels: integer, no gradient
                None,  # weights: data, not differentiated
            )

        return total, grad

    return loss_sum(hidden, kernel, bias, labels, weights)


@keras.saving.register_keras_serializable(package="intentrec")
class ItemHead(layers.Layer):
    """Scores the catalogue from E^item, and computes the next-item loss.

    Three losses compute the same objective at different cost (module docstring):
    - `"full"`: softmax cross-entropy over the whole catalogue, logits materialised;
    - `"chunked"`: the same loss and gradients, computed over item chunks
      (`chunked_softmax_cross_entropy`), so `[rows, |I|]` is never built;
    - `"sampled"`: softmax over the true item and a shared pool of negatives,
      half drawn from the batch's own labelled targets (popularity-distributed,
      the in-batch negatives of two-tower training) and half uniform over the
      catalogue. Logits are corrected by log Q (the candidate's expected count
      under that mixture, with the training popularity standing in for the
      in-batch distribution) so the estimate targets the full softmax, and
      accidental hits (a negative equal to the row's target) are masked out.
      Outside training (`model.evaluate`) it reports the exact loss, chunked.

    `max_label_positions` > 0 computes the loss on at most that many rows of a
    batch: the labelled rows (weight > 0) are gathered first. If a batch holds
    more labelled rows than that, the loss falls back to all rows (an
    `ops.cond`), so the value never changes, only the cost.

    The item prior (`log_prior`, log popularity from the training targets) drives
    the log-Q correction and the popularity answer for an empty history.

    Args:
        item_vocab_size: |I| incl. padding (0) and OOV (1), which are never recommended.
        loss_mode: `"full"`, `"chunked"` or `"sampled"`.
        num_sampled_negatives: negatives shared by all positions of a batch.
        seed: seed of the negative sampler.
        chunk_size: catalogue items per chunk for `"chunked"` (and exact evaluation).
        max_label_positions: rows (batch × seq positions) the loss gathers; 0: all.

    Example:
    ```python
    head = ItemHead(item_vocab_size=3708, loss_mode="chunked")
    logits = head(hidden[:, -1])  # [batch, d_model] → [batch, 3708]
    ```
    """

    def __init__(self, item_vocab_size, loss_mode="full", num_sampled_negatives=1024, seed=None,
                 chunk_size=8192, max_label_positions=0, **kwargs):
        super().__init__(**kwargs)
        if loss_mode not in LOSS_MODES:
            raise ValueError(f"loss_mode must be one of {LOSS_MODES}, got {loss_mode!r}")
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be positive, got {chunk_size}")
        self.item_vocab_size = item_vocab_size
        self.loss_mode = loss_mode
        self.num_sampled_negatives = num_sampled_negatives
        self.seed = seed
        self.chunk_size = int(chunk_size)
        self.max_label_positions = int(max_label_positions or 0)
        self.seed_generator = keras.random.SeedGenerator(seed)

    def build(self, hidden_shape):
        d = hidden_shape[-1]
        self.kernel = self.add_weight(shape=(d, self.item_vocab_size), initializer="glorot_uniform", name="kernel")
        self.bias = self.add_weight(shape=(self.item_vocab_size,), initializer="zeros", name="bias")
        self._add_log_prior()
        self.built = True

    def _add_log_prior(self):
        # Uniform over the recommendable items until `set_prior` is called with
        # training counts: log(1 / (|I| - reserved)), a proper log-probability, so
        # the sampled head's log-Q correction is right even without a prior.
        uniform = -math.log(max(self.item_vocab_size - NUM_RESERVED_IDS, 1))
        self.log_prior = self.add_weight(
            shape=(self.item_vocab_size,), initializer=keras.initializers.Constant(uniform), trainable=False,
            name="log_prior",
        )

    def set_prior(self, counts):
        """counts: `[item_vocab_size]` target counts from training data (reserved ids ignored)."""
        counts = ops.convert_to_tensor(counts, "float32")
        reserved = ops.arange(self.item_vocab_size) < NUM_RESERVED_IDS
        counts = ops.where(reserved, 0.0, counts + 1.0)  # add-one: unseen items stay possible
        self.log_prior.assign(ops.log(counts / ops.sum(counts)))

    def call(self, hidden):
        """hidden `[..., d]` → float32 logits `[..., item_vocab_size]` (reserved ids included)."""
        logits = ops.matmul(hidden, ops.cast(self.kernel, hidden.dtype)) + ops.cast(self.bias, hidden.dtype)
        return ops.cast(logits, "float32")

    def masked_logits(self, hidden):
        """Like `call`, with padding and OOV set to -inf so they are never recommended."""
        logits = self(hidden)
        reserved = ops.arange(self.item_vocab_size) < NUM_RESERVED_IDS
        return ops.where(reserved, -1e9, logits)

    def popularity_logits(self):
        """`[item_vocab_size]` log popularity, reserved ids at -inf (empty-history answer)."""
        reserved = ops.arange(self.item_vocab_size) < NUM_RESERVED_IDS
        return ops.where(reserved, -1e9, self.log_prior)

    # --- Loss ---------------------------------------------------------------

    def loss(self, hidden, labels, weights, training=False):
        """Weighted mean next-item cross-entropy over positions with weight > 0.

        hidden `[batch, seq, d]`, labels int `[batch, seq]`, weights `[batch, seq]` → scalar.
        """
        d = ops.shape(hidden)[-1]
        hidden = ops.reshape(hidden, (-1, d))
        labels = ops.reshape(ops.cast(labels, "int32"), (-1,))
        weights = ops.reshape(ops.cast(weights, "float32"), (-1,))
        # An unknown (OOV) target cannot be recommended: learning to predict "some new
        # item" would only take probability from the items that can be.
        weights = weights * ops.cast(labels >= NUM_RESERVED_IDS, "float32")
        sampled = self.loss_mode == "sampled" and training
        # Negatives are drawn once, outside the row selection below (random ops
        # inside `ops.cond` branches would advance the seed state twice).
        negatives = self.sample_negatives(labels, weights) if sampled else None

        def weighted_sum(rows_hidden, rows_labels, rows_weights):
            if sampled:
                ce = self._sampled_cross_entropy(rows_hidden, rows_labels, negatives)
                return ops.sum(ce * rows_weights)
            if self.loss_mode == "full":
                ce = full_softmax_cross_entropy(rows_hidden, self.kernel, self.bias, rows_labels)
                return ops.sum(ce * rows_weights)
            # "chunked", and "sampled" outside training: the exact loss, chunked.
            return chunked_softmax_cross_entropy(
                rows_hidden, self.kernel, self.bias, rows_labels, rows_weights, self.chunk_size,
            )

        total = self._over_labelled_rows(weighted_sum, hidden, labels, weights)
        return total / ops.maximum(ops.sum(weights), 1e-6)

    def _over_labelled_rows(self, fn, hidden, labels, weights):
        """`fn(hidden, labels, weights)` on the labelled rows only, when they fit in
        `max_label_positions`; on all rows otherwise (same value, higher cost)."""
        budget = self.max_label_positions
        num_rows = hidden.shape[0]  # static under jit; None in a TF graph with a dynamic batch
        if budget <= 0 or (num_rows is not None and num_rows <= budget):
            return fn(hidden, labels, weights)
        labelled = ops.cast(weights > 0, "float32")

        def compact():
            # top_k of a 0/1 key: every labelled row (if they fit) comes first. The
            # key is padded with `budget` zero-weight slots so that a short batch
            # (fewer rows than the budget, e.g. an epoch's last) still has k entries.
            padded = ops.concatenate([labelled, ops.zeros((budget,), "float32")])
            _, rows = ops.top_k(padded, budget, sorted=False)
            real = ops.less(rows, ops.shape(labels)[0])
            rows = ops.minimum(rows, ops.shape(labels)[0] - 1)
            kept_weights = ops.where(real, ops.take(weights, rows), 0.0)
            return fn(ops.take(hidden, rows, axis=0), ops.take(labels, rows), kept_weights)

        return ops.cond(ops.sum(labelled) <= budget, compact, lambda: fn(hidden, labels, weights))

    def sample_negatives(self, labels, weights):
        """`[num_sampled_negatives]` ids: half targets of random labelled rows, half uniform."""
        num_in_batch = self.num_sampled_negatives // 2
        num_uniform = self.num_sampled_negatives - num_in_batch
        # In-batch negatives: the targets of labelled rows drawn uniformly (with
        # replacement), i.e. items drawn ∝ their frequency among the batch's
        # labels. The draw k ∈ [0, #labelled) indexes the labelled rows, which an
        # argsort of the 0/1 key puts first (no searchsorted: Keras 3.6's TF
        # version needs a static length, and the batch is dynamic in a TF graph).
        labelled = ops.cast(weights > 0, "float32")
        count = ops.sum(labelled)
        order = ops.argsort(1.0 - labelled)  # labelled rows first
        draw = ops.floor(keras.random.uniform((num_in_batch,), seed=self.seed_generator) * count)
        draw = ops.minimum(ops.cast(draw, "int32"), ops.shape(labels)[0] - 1)
        rows = ops.cast(ops.take(order, draw), "int32")
        in_batch = ops.take(labels, rows)
        # A batch without labels (count 0) falls back to uniform draws.
        fallback = keras.random.randint(
            (num_in_batch,), NUM_RESERVED_IDS, self.item_vocab_size, seed=self.seed_generator
        )
        in_batch = ops.where(ops.take(labelled, rows) > 0, in_batch, fallback)
        uniform = keras.random.randint(
            (num_uniform,), NUM_RESERVED_IDS, self.item_vocab_size, seed=self.seed_generator
        )
        return ops.concatenate([ops.cast(in_batch, "int32"), ops.cast(uniform, "int32")])

    def log_expected_count(self, negatives):
        """log E[count] of each drawn negative in the pool: the log-Q correction `[n]`.

        q is the per-draw probability of the pool's mixture (training popularity stands
        in for the in-batch label distribution), times the draws.
        """
        num_in_batch = self.num_sampled_negatives // 2
        num_items = float(self.item_vocab_size - NUM_RESERVED_IDS)
        frac_in_batch = num_in_batch / self.num_sampled_negatives
        q = frac_in_batch * ops.exp(ops.take(self.log_prior, negatives)) + (1.0 - frac_in_batch) / num_items
        return ops.log(float(self.num_sampled_negatives) * q)

    def _sampled_cross_entropy(self, hidden, labels, negatives):
        """CE_r ≈ log(exp(l_t) + Σ_neg exp(l_j − log E[count_j])) − l_t, per row.

        The sum over the pool estimates Σ_{j≠t} exp(l_j) without bias (each draw
        is importance-weighted by its expected count N·q_j, accidental hits are
        removed), so the loss converges to the full cross-entropy as the pool
        grows. The target's own logit stays uncorrected: it is not one of the
        draws (correcting it as well, as TF's `sampled_softmax_loss` does, gives
        log(exp(l_t) + N·q_t·Z_{-t}) − l_t instead, a popularity-dependent bias).
        """
        true_logit = self.target_logits(hidden, labels)
        logits = ops.concatenate([true_logit[:, None], self.negative_logits(hidden, labels, negatives)], axis=-1)
        return ops.logsumexp(logits, axis=-1) - true_logit

    def target_logits(self, hidden, labels):
        """Each row's logit of its own label: hidden `[rows, d]`, labels `[rows]` → float32 `[rows]`."""
        kernel = ops.cast(self.kernel, hidden.dtype)
        true_w = ops.take(kernel, labels, axis=1)  # [d, rows]
        true_logit = ops.sum(ops.cast(hidden, "float32") * ops.cast(ops.transpose(true_w), "float32"), axis=-1)
        return true_logit + ops.take(ops.cast(self.bias, "float32"), labels)

    def negative_logits(self, hidden, labels, negatives):
        """The sampled negatives' logits, log-Q corrected, accidental hits (a row's own
        label among them) at -1e9: float32 `[rows, n]`."""
        kernel = ops.cast(self.kernel, hidden.dtype)
        neg_logits = ops.cast(ops.matmul(hidden, ops.take(kernel, negatives, axis=1)), "float32")
        neg_logits = neg_logits + (ops.take(ops.cast(self.bias, "float32"), negatives)
                                   - self.log_expected_count(negatives))[None, :]
        accidental = ops.equal(labels[:, None], negatives[None, :])
        return ops.where(accidental, -1e9, neg_logits)

    def compute_output_shape(self, hidden_shape):
        return tuple(hidden_shape[:-1]) + (self.item_vocab_size,)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "item_vocab_size": self.item_vocab_size,
                "loss_mode": self.loss_mode,
                "num_sampled_negatives": self.num_sampled_negatives,
                "seed": self.seed,
                "chunk_size": self.chunk_size,
                "max_label_positions": self.max_label_positions,
            }
        )
        return config
