"""What the intents and the history add to an item's score (docs/experiments.md, issue 12/15).

Two additive terms on top of the item head's `h·e_i + b_i`, both optional:

- `IntentItemScore`: Σ_h w_h · log p_h(attr_h(i)). For every intent head whose label
  is an attribute of the item (genre, movie/show, release bucket, category: each item
  has one value, or one set of values), the head's predicted log-probability of the
  candidate's own value. This is where the intent predictions reach the ranking
  directly: a user predicted to want a comedy next sees every comedy lifted by the
  same amount. The weight w_h is learned per head and, in the hierarchical variants,
  multiplied by the user's attention α_h (M·α_h, so w_h is the mean): α then decides
  how much each intent moves this user's ranking, which is what makes it an
  explanation.
- `RepeatScore`: a copy score for the items of the history (re-views, continuing a
  show). For the query position k and every earlier position j ≤ k, a learned
  bilinear score c_kj plus a gate g_k computed from the query's hidden state and its
  intent predictions (a "continue watching" action-type intent opens the gate); an
  item seen at positions J gets B_k(i) = logsumexp_{j∈J} c_kj, and the final score is
  logaddexp(item score, B_k(i)): the softmax is then a mixture of "generate from the
  catalogue" and "copy from the history" (RepeatNet, Ren et al. 2019), computed
  exactly over the whole catalogue.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers, ops

NEG = -1e9


@keras.saving.register_keras_serializable(package="intentrec")
class IntentItemScore(layers.Layer):
    """Σ_h w_h · log p_h(attr_h(i)) for every item i.

    Each head's item table (`set_item_attributes`) maps an item to its value: an id
    for single-label heads (`[|I|]` int), a row-normalised multi-hot for multi-label
    heads (`[|I|, C]`: the mean log-probability of the item's values). Items without
    a known value (reserved ids, items only seen outside training) get 0. A head whose
    label is not an attribute of the item (e.g. an action type) has `is_item_attribute = 0`.

    Args:
        heads: the model's `IntentHead`s.
        item_vocab_size: |I|.
        use_alpha: weight each head by M·α_h (hierarchical variants).
    """

    def __init__(self, heads, item_vocab_size, use_alpha=False, **kwargs):
        super().__init__(**kwargs)
        self.heads = [h if not isinstance(h, dict) else _head(h) for h in heads]
        self.item_vocab_size = int(item_vocab_size)
        self.use_alpha = bool(use_alpha)

    def build(self, input_shape=None):
        self.tables = {}
        for head in self.heads:
            if head.kind == "single":
                self.tables[head.name] = self.add_weight(
                    shape=(self.item_vocab_size,), dtype="int32", initializer="zeros", trainable=False,
                    name=f"{head.name}_of_item")
            else:
                self.tables[head.name] = self.add_weight(
                    shape=(self.item_vocab_size, head.num_classes), initializer="zeros", trainable=False,
                    name=f"{head.name}_of_item")
        # 1 for the heads whose label is an attribute of the item (`set_item_attributes`).
        self.is_item_attribute = self.add_weight(shape=(max(len(self.heads), 1),), initializer="zeros",
                                                 trainable=False, name="is_item_attribute")
        # softplus(0.55) ≈ 1: start from the plain log-probability.
        self.weight_logits = self.add_weight(shape=(max(len(self.heads), 1),),
                                             initializer=keras.initializers.Constant(0.55), name="head_weights")
        self.built = True

    def set_item_attributes(self, tables: dict, used: dict):
        """tables: {head: `[|I|]` ids or `[|I|, C]` multi-hot}; used: {head: bool}."""
        for head in self.heads:
            table = np.asarray(tables[head.name])
            if head.kind == "multi":
                table = table.astype("float32")
                table = table / np.maximum(table.sum(axis=-1, keepdims=True), 1.0)
            self.tables[head.name].assign(table.astype(self.tables[head.name].dtype))
        mask = [float(bool(used.get(h.name, False))) for h in self.heads] or [0.0]
        self.is_item_attribute.assign(np.asarray(mask, "float32"))

    def head_weights(self, alpha=None):
        """`[rows, M]` (or `[M]` without α): each head's weight in the score."""
        w = ops.softplus(self.weight_logits)[: len(self.heads)]
        w = w * ops.convert_to_tensor(self.is_item_attribute)[: len(self.heads)]
        if self.use_alpha and alpha is not None:
            return w[None, :] * ops.cast(alpha, "float32") * float(len(self.heads))
        return w

    def at_items(self, intent_logits: dict, alpha, ids, per_row: bool):
        """The term for some items only: `ids` int `[rows]` (one item per row, e.g. the
        targets: → `[rows]`) or `[n]` (shared by every row, e.g. sampled negatives:
        → `[rows, n]`)."""
        w = self.head_weights(alpha)
        ids = ops.cast(ids, "int32")
        total = 0.0
        for m, head in enumerate(self.heads):
            logits = ops.cast(intent_logits[head.name], "float32")
            if len(w.shape) == 2:
                weight = w[:, m] if per_row else w[:, m:m + 1]
            else:
                weight = w[m]
            if head.kind == "single":
                log_p = ops.log_softmax(logits, axis=-1)
                attr = ops.take(ops.convert_to_tensor(self.tables[head.name]), ids)
                if per_row:
                    value = ops.take_along_axis(log_p, attr[:, None], axis=-1)[:, 0]
                else:
                    value = ops.take(log_p, attr, axis=1)
                value = ops.where((attr > 1) if per_row else (attr > 1)[None, :], value, 0.0)
            else:
                log_p = ops.log_sigmoid(logits)
                values = ops.take(ops.convert_to_tensor(self.tables[head.name]), ids, axis=0)  # [rows or n, C]
                value = ops.sum(log_p * values, axis=-1) if per_row else ops.matmul(log_p, ops.transpose(values))
            total = total + weight * value
        return total

    def call(self, intent_logits: dict, alpha=None):
        """intent_logits: {head: `[rows, C]`}; alpha `[rows, M]` or None → `[rows, |I|]` float32."""
        return self.at_items(intent_logits, alpha, ops.arange(self.item_vocab_size), per_row=False)

    def get_config(self):
        config = super().get_config()
        config.update({"heads": [dict(name=h.name, kind=h.kind, num_classes=h.num_classes) for h in self.heads],
                       "item_vocab_size": self.item_vocab_size, "use_alpha": self.use_alpha})
        return config


def _head(d):
    from datasets.feature_spec import IntentHead

    return IntentHead(**d)


@keras.saving.register_keras_serializable(package="intentrec")
class RepeatScore(layers.Layer):
    """Copy logits c_kj of history position j for query position k, gated by the intents.

    Args:
        d_key: width of the bilinear query/key projections.
    """

    def __init__(self, d_key=32, **kwargs):
        super().__init__(**kwargs)
        self.d_key = d_key
        self.query = layers.Dense(d_key, use_bias=False, name="query")
        self.key = layers.Dense(d_key, use_bias=False, name="key")
        self.gate = layers.Dense(1, name="gate")

    def build(self, hidden_shape, gate_features_shape=None, valid_shape=None):
        self.query.build(hidden_shape)
        self.key.build(hidden_shape)
        self.gate.build(gate_features_shape if gate_features_shape is not None else hidden_shape)
        self.built = True

    def call(self, hidden, gate_features, valid):
        """hidden `[batch, seq, d]`, gate_features `[batch, seq, g]`, valid bool `[batch, seq]`
        → c `[batch, seq(k), seq(j)]` float32, NEG where j > k or j is padding."""
        q = ops.cast(self.query(hidden), "float32")
        k = ops.cast(self.key(hidden), "float32")
        c = ops.einsum("bqd,bkd->bqk", q, k) / float(self.d_key) ** 0.5
        c = c + ops.cast(self.gate(gate_features), "float32")  # [b, q, 1]
        seq = ops.shape(hidden)[1]
        idx = ops.arange(seq)
        causal = ops.greater_equal(idx[:, None], idx[None, :])
        allowed = ops.logical_and(causal[None], valid[:, None, :])
        return ops.where(allowed, c, NEG)

    def get_config(self):
        config = super().get_config()
        config.update({"d_key": self.d_key})
        return config


def scatter_history(copy_logits, history, num_items):
    """B `[rows, |I|]`: logsumexp of each row's copy logits per history item, NEG elsewhere.

    copy_logits `[rows, h]` float32 (NEG where not allowed), history int `[rows, h]`.
    """
    rows = ops.shape(copy_logits)[0]
    width = ops.shape(copy_logits)[1]
    top = ops.max(copy_logits, axis=-1, keepdims=True)  # [rows, 1]
    mass = ops.where(copy_logits > NEG / 2, ops.exp(copy_logits - top), 0.0)
    index = ops.stack([ops.repeat(ops.arange(rows, dtype="int32"), width),
                       ops.reshape(ops.cast(history, "int32"), (-1,))], axis=-1)
    total = ops.scatter(index, ops.reshape(mass, (-1,)), (rows, num_items))  # duplicates add up
    return ops.where(total > 0, ops.log(ops.maximum(total, 1e-30)) + top, NEG)


def mix_with_history(scores, copy_logits, history):
    """logaddexp(scores, B): the generate-or-copy mixture. scores `[rows, |I|]` float32."""
    b = scatter_history(copy_logits, history, scores.shape[-1])
    return ops.logaddexp(scores, b)


def item_attribute_tables(x: dict, heads, item_vocab_size: int, min_consistency: float = 0.9,
                          min_gain: float = 0.5):
    """Which intent labels are attributes of the item, and each item's value, from training inputs.

    Every position of the training windows pairs an item (`x["item"]`) with the
    head's input column at that interaction (`x[head.name]`). A head is an item
    attribute when, over all training interactions, at least `min_consistency` of them
    carry their item's most frequent value (genre, movie/show: yes; an action type or
    the time of day: no), *and* the item explains at least `min_gain` of what the
    global majority value leaves open, (consistency − prior) / (1 − prior). Without
    the second test a skewed label passes the first trivially: on e-commerce logs 88%
    of all interactions are page views, so "action type" looks 90% consistent per item
    while the item says almost nothing about it.

    Returns:
        (tables, used, consistency): {head: `[|I|]` int32 ids or `[|I|, C]` float32
        multi-hot}, {head: bool}, {head: float}.
    """
    items = np.asarray(x["item"]).reshape(-1)
    real = items > 1
    items = items[real]
    tables, used, consistency = {}, {}, {}
    for head in heads:
        values = np.asarray(x[head.name])
        if head.kind == "single":
            values = values.reshape(-1)[real].astype(np.int64)
            counts = np.zeros((item_vocab_size, head.num_classes), np.int64)
            np.add.at(counts, (items, values), 1)
            counts[:, :2] = 0  # padding / OOV are no value
            table = counts.argmax(axis=1).astype(np.int32)
            table[counts.max(axis=1) == 0] = 0
            agree = counts.max(axis=1).sum() / max(int((values > 1).sum()), 1)
            prior = counts.sum(axis=0).max() / max(int((values > 1).sum()), 1)
        else:
            values = values.reshape(-1, values.shape[-1])[real] > 0.5
            packed = np.ascontiguousarray(np.packbits(values, axis=1))
            _, first_row, key = np.unique(packed.view(np.dtype((np.void, packed.shape[1]))).ravel(),
                                          return_index=True, return_inverse=True)
            pairs, count = np.unique(np.stack([items, key], axis=1), axis=0, return_counts=True)
            order = np.lexsort((-count, pairs[:, 0]))  # by item, the most frequent set of values first
            pairs, count = pairs[order], count[order]
            modal = np.ones(len(pairs), bool)
            modal[1:] = pairs[1:, 0] != pairs[:-1, 0]
            table = np.zeros((item_vocab_size, head.num_classes), np.float32)
            table[pairs[modal, 0]] = values[first_row[pairs[modal, 1]]]
            table[:, :2] = 0.0
            agree = count[modal].sum() / max(len(items), 1)
            prior = np.bincount(key).max() / max(len(items), 1) if len(items) else 1.0
        tables[head.name] = table
        consistency[head.name] = float(agree)
        gain = (agree - prior) / (1.0 - prior) if prior < 1.0 else 0.0
        used[head.name] = bool(agree >= min_consistency and gain >= min_gain)
    return tables, used, consistency
