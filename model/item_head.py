"""Next-item head FC_item and its losses (paper §3.4, Eq. 3)."""

import keras
from keras import layers, ops

from datasets.schema import NUM_RESERVED_IDS


@keras.saving.register_keras_serializable(package="intentrec")
class ItemHead(layers.Layer):
    """Scores the catalogue from E^item, and computes the next-item loss.

    Two losses compute the same objective at different cost:
    - `"full"`: softmax cross-entropy over the whole catalogue;
    - `"sampled"`: softmax over the true item and a shared pool of negatives,
      half drawn from the batch's own targets (popularity-distributed, the
      in-batch negatives of two-tower training) and half uniform over the
      catalogue. Logits are corrected by log Q (the candidate's sampling
      probability) so the estimate targets the full softmax, and accidental
      hits (a negative equal to the row's target) are masked out.

    The item prior (`log_prior`, log popularity from the training targets) drives
    the log-Q correction and the popularity answer for an empty history.

    Args:
        item_vocab_size: |I| incl. padding (0) and OOV (1), which are never recommended.
        loss_mode: `"full"` or `"sampled"`.
        num_sampled_negatives: negatives shared by all positions of a batch.
        seed: seed of the negative sampler.

    Example:
    ```python
    head = ItemHead(item_vocab_size=3708)
    logits = head(hidden[:, -1])  # [batch, d_model] → [batch, 3708]
    ```
    """

    def __init__(self, item_vocab_size, loss_mode="full", num_sampled_negatives=1024, seed=None, **kwargs):
        super().__init__(**kwargs)
        if loss_mode not in ("full", "sampled"):
            raise ValueError(f"loss_mode must be 'full' or 'sampled', got {loss_mode!r}")
        self.item_vocab_size = item_vocab_size
        self.loss_mode = loss_mode
        self.num_sampled_negatives = num_sampled_negatives
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def build(self, hidden_shape):
        d = hidden_shape[-1]
        self.kernel = self.add_weight(shape=(d, self.item_vocab_size), initializer="glorot_uniform", name="kernel")
        self.bias = self.add_weight(shape=(self.item_vocab_size,), initializer="zeros", name="bias")
        # Uniform until `set_prior` is called with training counts.
        self.log_prior = self.add_weight(
            shape=(self.item_vocab_size,), initializer="zeros", trainable=False, name="log_prior"
        )
        self.built = True

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

    def loss(self, hidden, labels, weights, training=False):
        """Weighted mean next-item cross-entropy over positions with weight > 0.

        hidden `[batch, seq, d]`, labels int `[batch, seq]`, weights `[batch, seq]` → scalar.
        """
        d = ops.shape(hidden)[-1]
        hidden = ops.reshape(hidden, (-1, d))
        labels = ops.reshape(ops.cast(labels, "int32"), (-1,))
        weights = ops.reshape(ops.cast(weights, "float32"), (-1,))
        if self.loss_mode == "sampled" and training:
            ce = self._sampled_cross_entropy(hidden, labels, weights)
        else:
            logits = self(hidden)
            true_logit = ops.take_along_axis(logits, labels[:, None], axis=-1)[:, 0]
            ce = ops.logsumexp(logits, axis=-1) - true_logit
        return ops.sum(ce * weights) / ops.maximum(ops.sum(weights), 1e-6)

    def _sampled_cross_entropy(self, hidden, labels, weights):
        num_rows = ops.shape(labels)[0]
        num_in_batch = self.num_sampled_negatives // 2
        num_uniform = self.num_sampled_negatives - num_in_batch
        # In-batch negatives: targets of random labelled positions (padding rows
        # fall back to a uniform draw), i.e. drawn ∝ in-batch popularity.
        rows = keras.random.randint((num_in_batch,), 0, num_rows, seed=self.seed_generator)
        in_batch = ops.take(labels, rows)
        fallback = keras.random.randint(
            (num_in_batch,), NUM_RESERVED_IDS, self.item_vocab_size, seed=self.seed_generator
        )
        in_batch = ops.where(ops.take(weights, rows) > 0, in_batch, fallback)
        uniform = keras.random.randint(
            (num_uniform,), NUM_RESERVED_IDS, self.item_vocab_size, seed=self.seed_generator
        )
        negatives = ops.concatenate([in_batch, uniform])  # [N]

        # log Q: the mixture the candidates come from, times the number of draws.
        num_items = float(self.item_vocab_size - NUM_RESERVED_IDS)
        frac_in_batch = num_in_batch / self.num_sampled_negatives
        q = frac_in_batch * ops.exp(self.log_prior) + (1.0 - frac_in_batch) / num_items

        def log_expected(ids):
            return ops.log(float(self.num_sampled_negatives) * ops.take(q, ids) + 1e-12)

        kernel = ops.cast(self.kernel, hidden.dtype)
        bias = ops.cast(self.bias, "float32")
        true_w = ops.take(kernel, labels, axis=1)  # [d, rows]
        true_logit = ops.sum(ops.cast(hidden * ops.transpose(true_w), "float32"), axis=-1)
        true_logit = true_logit + ops.take(bias, labels) - log_expected(labels)
        neg_logits = ops.cast(ops.matmul(hidden, ops.take(kernel, negatives, axis=1)), "float32")
        neg_logits = neg_logits + (ops.take(bias, negatives) - log_expected(negatives))[None, :]
        accidental = ops.equal(labels[:, None], negatives[None, :])
        neg_logits = ops.where(accidental, -1e9, neg_logits)
        logits = ops.concatenate([true_logit[:, None], neg_logits], axis=-1)
        return ops.logsumexp(logits, axis=-1) - true_logit

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
            }
        )
        return config
