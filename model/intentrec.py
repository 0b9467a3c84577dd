"""IntentRec: hierarchical multi-task next-intent and next-item model (paper §3)."""

import keras
from keras import layers, ops

from datasets.schema import NUM_RESERVED_IDS
from model import masks
from model.attribute_attention_bias import AttributeAttentionBias
from model.config import IntentRecConfig
from model.feature_constructor import InputFeatureConstructor
from model.inputs import sequence_inputs
from model.intent_aggregation import IntentAggregation
from model.intent_history_prior import IntentHistoryPrior
from model.intent_loss import attention_entropy, intent_loss
from model.item_head import ItemHead
from model.item_scores import IntentItemScore, RepeatScore, mix_with_history
from model.keras_compat import track_layer
from model.position_embedding import PositionEmbedding
from model.relative_time_bias import RelativeTimeBias
from model.short_term_encoder import ShortTermEncoder
from model.tied_item_head import TiedItemHead
from model.time_encoding import TimeEncoding
from model.training import scale_loss_for_distribution
from model.transformer_encoder import TransformerEncoder


@keras.saving.register_keras_serializable(package="intentrec")
class IntentRec(keras.Model):
    """The IntentRec model and its V0–V3 ablations, as one functional Keras model.

    Reading top to bottom (paper Fig. 2):
    1. F_k: embeddings of the item and its metadata plus numeric features;
    2. S_k: a short-term encoder over each position's time window (v3);
    3. E^intent: F ⊕ S projected (`intent_input_projection`; the paper's FC +
       LayerNorm, or the item embedding kept plus FC of the rest), position and
       timestamp encodings (optionally a time-gap attention bias), causal Transformer;
    4. intent heads: softmax (single-label) or sigmoid (multi-label) per intent, their
       logits plus a gated prior for the intent values in the history
       (`intent_history_prior`);
    5. Z, α: attention aggregation of the projected head predictions (v2, v3);
    6. E^item: F ⊕ S ⊕ Z projected (`input_projection`), position and timestamp
       encodings (plus E^intent where `item_reads_intent_hidden`), a second causal
       Transformer (v2, v3; v0/v1 share the first encoder);
    7. next-item scores from `item_head` over the whole catalogue.

    Every output at position k depends on interactions 1..k only, so one forward
    pass trains all next-step targets and serves the last position.

    Inputs are a dict of left-padded `[batch, max_len]` tensors (see
    docs/ARCHITECTURE.md §2). Outputs are a dict:
    - `item_hidden`: E^item `[batch, seq, d_model]`;
    - `intent_<name>`: head probabilities `[batch, seq, d_i]`, and
      `intent_logits_<name>` (for the loss); `head_logits_<name>`, the head's logits
      without the history prior, only where `intent_score_reads_prior` is off;
    - `intent_embedding`: Z `[batch, seq, d_proj]` and `intent_attention`:
      softmax(α) `[batch, seq, M]` (hierarchical variants only).

    Args:
        config: an `IntentRecConfig` (or its dict form).

    Example:
    ```python
    config = IntentRecConfig.from_feature_spec(encoded.feature_spec, variant="v3")
    model = IntentRec(config)
    model.compile(optimizer="adam")
    model.fit(x, y, sample_weight=w, batch_size=128, epochs=10)
    top = model.recommend(x_eval, k=10)  # {"ids", "scores", intents, Z, α}
    ```
    """

    def __init__(self, config, **kwargs):
        if isinstance(config, dict):
            config = IntentRecConfig.from_dict(config)
        cfg = config
        n = cfg.max_len
        heads = list(cfg.intents) if cfg.use_intents else []

        # === Inputs ===
        inputs = sequence_inputs(cfg.feature_spec)

        # === Layers ===
        feature_constructor = InputFeatureConstructor(
            item_vocab_size=cfg.item_vocab_size,
            item_embedding_dim=cfg.item_embedding_dim,
            categorical=cfg.categorical,
            multi_hot=cfg.multi_hot,
            numeric=cfg.numeric,
            feature_embedding_dim=cfg.feature_embedding_dim,
            name="input_features",
        )
        short_term_encoder = None
        if cfg.short_term:
            short_term_encoder = ShortTermEncoder(
                d_short=cfg.d_short,
                num_heads=cfg.num_heads,
                window=cfg.short_term_window_days,
                window_count=cfg.short_term_window_count,
                use_time=cfg.has_timestamps,
                dropout=cfg.dropout,
                name="short_term_encoder",
            )
        time_unit_hours = 24.0 if cfg.has_timestamps else 1.0
        item_width = cfg.item_embedding_dim

        def encoder_stack(prefix, num_layers, projection):
            stack = {
                "projection": projection,
                "fc": layers.Dense(cfg.d_model, name=f"{prefix}_input_fc"),
                "encoder": TransformerEncoder(
                    num_layers=num_layers,
                    d_model=cfg.d_model,
                    num_heads=cfg.num_heads,
                    ffn_dim=cfg.ffn_multiplier * cfg.d_model,
                    dropout=cfg.dropout,
                    name=f"{prefix}_encoder",
                ),
            }
            if projection == "dense_norm":
                stack["norm"] = layers.LayerNormalization(epsilon=1e-6, name=f"{prefix}_input_norm")
            if cfg.time_encoding:
                stack["time"] = TimeEncoding(cfg.d_model, time_unit_hours=time_unit_hours,
                                             name=f"{prefix}_time_encoding")
            if cfg.relative_time_bias:
                stack["time_bias"] = RelativeTimeBias(cfg.num_heads, time_unit_hours=time_unit_hours,
                                                      name=f"{prefix}_relative_time_bias")
            if cfg.attribute_attention_bias:
                stack["attribute_bias"] = AttributeAttentionBias(cfg.num_heads, name=f"{prefix}_attribute_bias")
            if cfg.position_embedding:
                # item_plus_dense: P is added to the √d-scaled item embedding, as SASRec.
                scale = cfg.d_model ** 0.5 if projection == "item_plus_dense" else 1.0
                stack["position"] = PositionEmbedding(n, scale=scale, name=f"{prefix}_position_embedding")
            return stack

        # The item encoder (the shared one in V0/V1) keeps `input_projection`; a separate
        # intent encoder (V2/V3) may read its inputs the paper's way.
        intent_projection = cfg.intent_input_projection if cfg.hierarchical else cfg.input_projection
        intent_stack = encoder_stack("intent", cfg.intent_layers, intent_projection)
        item_stack = encoder_stack("item", cfg.item_layers, cfg.input_projection) if cfg.hierarchical else None
        head_layers = {h.name: layers.Dense(h.num_classes, name=f"intent_head_{h.name}") for h in heads}
        # Heads whose label column is also an input read its recent values as a prior.
        history_priors = {h.name: IntentHistoryPrior(h.num_classes, h.kind, name=f"intent_history_{h.name}")
                          for h in heads if cfg.intent_history_prior and h.name in inputs}
        aggregation = IntentAggregation(len(heads), cfg.d_proj, name="intent_aggregation") if cfg.hierarchical else None
        input_dropout = layers.Dropout(cfg.dropout, name="input_dropout")

        # === Functional Model ===
        valid = masks.padding_mask(inputs["item"])
        causal = masks.CausalMask(name="causal_mask")(valid)
        time = inputs["time"]

        def encode(stack, features, residual=None):
            """features `[batch, seq, d_in]` (the item embedding first), plus `residual`
            `[batch, seq, d_model]` where given → `[batch, seq, d_model]`."""
            item, rest = features[..., :item_width], features[..., item_width:]
            if stack["projection"] == "dense_norm":
                x = stack["norm"](stack["fc"](features))
                if "position" in stack:
                    x = stack["position"](x)
            else:  # the item embedding × √d (as SASRec), plus the other features projected
                x = stack["position"](item) if "position" in stack else item * cfg.d_model ** 0.5
                if rest.shape[-1]:  # metadata, S_k, Z_k
                    x = x + stack["fc"](rest)
            if "time" in stack:
                x = x + stack["time"](time, valid)
            if residual is not None:
                x = x + ops.cast(residual, x.dtype)
            x = input_dropout(x) * ops.cast(valid, x.dtype)[..., None]  # padding stays zero
            biases = []
            if "time_bias" in stack:
                biases.append(stack["time_bias"](time, valid))
            if "attribute_bias" in stack and rest.shape[-1]:
                biases.append(stack["attribute_bias"](rest, valid))
            bias = sum(biases[1:], biases[0]) if biases else None
            return stack["encoder"](x, causal, bias=bias)

        features = feature_constructor(inputs)  # F: [batch, seq, d_full]
        if short_term_encoder is not None:
            short_term = short_term_encoder(features, time, valid)  # S: [batch, seq, d_short]
            features = ops.concatenate([features, short_term], axis=-1)
        intent_hidden = encode(intent_stack, features)  # E^intent: [batch, seq, d_model]

        outputs = {}
        probabilities = []
        for head in heads:
            logits = head_layers[head.name](intent_hidden)
            if head.name in history_priors:
                logits = ops.cast(logits, "float32")
                if not cfg.intent_score_reads_prior:
                    outputs[f"head_logits_{head.name}"] = logits
                logits = logits + history_priors[head.name](intent_hidden, inputs[head.name], valid)
            logits = layers.Activation("linear", dtype="float32", name=f"intent_logits_{head.name}")(logits)
            activation = "softmax" if head.kind == "single" else "sigmoid"
            probs = layers.Activation(activation, dtype="float32", name=f"intent_{head.name}")(logits)
            outputs[f"intent_logits_{head.name}"] = logits
            outputs[f"intent_{head.name}"] = probs
            probabilities.append(probs)

        if cfg.hierarchical:
            signal = [ops.stop_gradient(p) for p in probabilities] if cfg.detach_intents else probabilities
            intent_embedding, intent_attention = aggregation(signal)
            outputs["intent_embedding"] = intent_embedding
            outputs["intent_attention"] = intent_attention
            item_input = ops.concatenate([features, ops.cast(intent_embedding, features.dtype)], axis=-1)
            residual = intent_hidden if cfg.item_reads_intent_hidden else None
            item_hidden = encode(item_stack, item_input, residual)  # E^item
        else:
            item_hidden = intent_hidden  # v0/v1: one shared encoder
        outputs["item_hidden"] = item_hidden

        super().__init__(inputs=inputs, outputs=outputs, **kwargs)

        # === Config ===
        self.config = cfg
        self.intent_heads = heads
        # Outside the graph: training scores only labelled positions (or samples),
        # serving only the last position, so [batch, seq, |I|] is never built.
        head_kwargs = dict(loss_mode=cfg.item_loss, num_sampled_negatives=cfg.num_sampled_negatives,
                           chunk_size=cfg.item_chunk_size, max_label_positions=cfg.max_label_positions,
                           name="item_head")
        if cfg.tie_item_embeddings:
            self.item_head = TiedItemHead(feature_constructor.item_embedding, cfg.item_vocab_size, **head_kwargs)
        else:
            self.item_head = ItemHead(cfg.item_vocab_size, **head_kwargs)
        self.item_head.build((None, cfg.d_model))
        track_layer(self, self.item_head)
        self.intent_score = None
        if cfg.intent_item_score and heads:
            self.intent_score = IntentItemScore(heads, cfg.item_vocab_size, use_alpha=cfg.hierarchical,
                                                name="intent_item_score")
            self.intent_score.build()
            track_layer(self, self.intent_score)
        self.repeat = None
        if cfg.repeat_score:
            self.repeat = RepeatScore(cfg.repeat_key_dim, name="repeat_score")
            gate_width = cfg.d_model + sum(h.num_classes for h in heads)
            self.repeat.build((None, None, cfg.d_model), (None, None, gate_width))
            track_layer(self, self.repeat)
        self.item_loss_tracker = keras.metrics.Mean(name="item_loss")
        self.intent_loss_trackers = {
            h.name: keras.metrics.Mean(name=f"intent_loss_{h.name}") for h in heads
        }

    # --- Training -----------------------------------------------------------

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """L = L_item + λ Σ_i L_intent_i (Eq. 4), each a duration-weighted mean over
        positions.

        `y` holds the next-step targets and, under `"weight"`, the per-position
        weight `[batch, seq]` (0 at padding and where there is no next step).
        The weight travels in `y` because Keras accepts only per-sample
        `sample_weight` for multi-output models.
        """
        del sample_weight
        if self.has_item_score_terms:
            item_loss = self._scored_item_loss(x, y, y_pred, training=training)
        else:
            item_loss = self.item_head.loss(y_pred["item_hidden"], y["item"], y["weight"], training=training)
        self.item_loss_tracker.update_state(item_loss)
        total = item_loss
        for head in self.intent_heads:
            name = head.name
            head_loss = intent_loss(
                head, y[name], y_pred[f"intent_logits_{name}"], y["weight"], self.config.multi_label_loss
            )
            self.intent_loss_trackers[name].update_state(head_loss)
            total = total + self.config.intent_loss_weight * head_loss
        if self.config.alpha_entropy_weight and "intent_attention" in y_pred:
            alpha = y_pred["intent_attention"]
            term = attention_entropy(alpha, y["weight"])
            if self.config.alpha_regularizer == "mutual_information":
                term = term - attention_entropy(alpha, y["weight"], pooled=True)
            total = total + self.config.alpha_entropy_weight * term
        return scale_loss_for_distribution(self, total)

    def _intent_signal(self, t):
        """An intent prediction as the item score reads it (`config.detach_intents`)."""
        return ops.stop_gradient(t) if self.config.detach_intents else t

    @property
    def has_item_score_terms(self) -> bool:
        """Whether items are scored by more than the item head (`item_scores`)."""
        return getattr(self, "intent_score", None) is not None or getattr(self, "repeat", None) is not None

    def _scored_item_loss(self, x, y, y_pred, training=True):
        """The weighted mean next-item cross-entropy of `item_scores`, over every position.

        With the copy score the softmax is a mixture: Σ_i exp(score_i) = Z_catalogue +
        Σ_{j ≤ k} exp(c_kj) (every history position's copy mass), and the target scores
        logaddexp(its catalogue score, its copy score). So only Z_catalogue involves the
        whole catalogue: exact under `item_loss="full"`, estimated from the sampled
        negatives (log-Q corrected, as `ItemHead`) under `"sampled"`.
        """
        head = self.item_head
        d = ops.shape(y_pred["item_hidden"])[-1]
        hidden = ops.reshape(y_pred["item_hidden"], (-1, d))
        labels = ops.reshape(ops.cast(y["item"], "int32"), (-1,))
        # An unknown (OOV) target cannot be recommended: no item loss for it.
        weights = ops.reshape(ops.cast(y["weight"], "float32"), (-1,)) * ops.cast(labels >= NUM_RESERVED_IDS, "float32")
        # Scored in float32 whatever the compute dtype: the extra terms are added in float32.
        hidden32 = ops.cast(hidden, "float32")
        true = head.target_logits(hidden32, labels)
        intent_logits = alpha = None
        if getattr(self, "intent_score", None) is not None:
            intent_logits = {h.name: ops.reshape(self._intent_signal(_score_logits(y_pred, h.name)),
                                                 (-1, h.num_classes)) for h in self.intent_heads}
            if "intent_attention" in y_pred:
                alpha = ops.reshape(y_pred["intent_attention"], (-1, len(self.intent_heads)))
            true = true + self.intent_score.at_items(intent_logits, alpha, labels, per_row=True)
        if self.config.item_loss == "sampled" and training:
            negatives = head.sample_negatives(labels, weights)
            neg = head.negative_logits(hidden32, labels, negatives)  # accidental hits stay at ~-1e9
            if intent_logits is not None:
                neg = neg + self.intent_score.at_items(intent_logits, alpha, negatives, per_row=False)
            log_partition = ops.logsumexp(ops.concatenate([true[:, None], neg], axis=-1), axis=-1)
        else:
            scores = ops.cast(head(hidden), "float32")
            if intent_logits is not None:
                scores = scores + self.intent_score(intent_logits, alpha)
            log_partition = ops.logsumexp(scores, axis=-1)
        if getattr(self, "repeat", None) is not None:
            copy, history = self._copy_logits(y_pred, x["item"])  # [rows, seq]
            log_partition = ops.logaddexp(log_partition, ops.logsumexp(copy, axis=-1))
            true = ops.logaddexp(true, ops.logsumexp(ops.where(ops.equal(history, labels[:, None]), copy, -1e9),
                                                     axis=-1))
        ce = log_partition - true
        return ops.sum(ce * weights) / ops.maximum(ops.sum(weights), 1e-6)

    def _copy_logits(self, outputs, items, last_only=False):
        """(copy logits c `[rows, seq]`, -1e9 where not copyable; the history ids `[rows, seq]`)."""
        items = ops.cast(items, "int32")
        hidden = outputs["item_hidden"]
        gate = [ops.cast(hidden, "float32")] + [ops.cast(self._intent_signal(outputs[f"intent_{h.name}"]), "float32")
                                                for h in self.intent_heads]
        # Unknown (OOV) history items are not copied: they cannot be recommended.
        copy = self.repeat(hidden, ops.concatenate(gate, axis=-1), ops.greater_equal(items, NUM_RESERVED_IDS))
        if last_only:
            return copy[:, -1], items
        seq = ops.shape(items)[1]
        return ops.reshape(copy, (-1, seq)), ops.reshape(ops.repeat(items[:, None, :], seq, axis=1), (-1, seq))

    def item_scores(self, outputs, items, last_only=False):
        """Full-catalogue next-item scores: the item head's, plus the intent and copy terms.

        Args:
            outputs: the model's outputs `[batch, seq, ...]`.
            items: int `[batch, seq]`, the input items (the copy score's history).
            last_only: score the last position only (serving, evaluation).

        Returns:
            float32 `[batch, |I|]` (last_only) or `[batch * seq, |I|]`.
        """
        hidden = outputs["item_hidden"]

        def rows(t):  # [batch, seq, ...] → the scored rows
            return t[:, -1] if last_only else ops.reshape(t, (-1,) + tuple(t.shape[2:]))

        scores = self.item_head(rows(hidden))
        if getattr(self, "intent_score", None) is not None:
            logits = {h.name: rows(_score_logits(outputs, h.name)) for h in self.intent_heads}
            alpha = rows(outputs["intent_attention"]) if "intent_attention" in outputs else None
            scores = scores + self.intent_score(logits, alpha)
        if getattr(self, "repeat", None) is not None:
            copy_rows, history = self._copy_logits(outputs, items, last_only)
            scores = mix_with_history(scores, copy_rows, history)
        return scores

    @property
    def metrics(self):
        return super().metrics + [self.item_loss_tracker, *self.intent_loss_trackers.values()]

    # --- Inference ----------------------------------------------------------

    def recommend(self, inputs, k=None, exclude_seen=False, seen=None):
        """Top-k items, intents, Z and α at the last position (the serving output).

        Args:
            inputs: encoded batch (only the model's input keys are used).
            k: number of items (default `config.top_k`).
            exclude_seen: drop items already in the history from the ranking.
            seen: with `exclude_seen`, more item ids to drop `[batch, H]` (0-padded), e.g.
                the user's whole history before the input window.

        Returns:
            dict with `top_k_ids` `[batch, k]` int, `top_k_scores` `[batch, k]`,
            `intent_<name>` `[batch, d_i]`, `intent_embedding` `[batch, d_proj]`,
            `intent_attention` `[batch, M]`. A history without any real
            interaction gets the popularity ranking.
        """
        k = k or self.config.top_k
        outputs = self(self.select_inputs(inputs), training=False)
        items = ops.convert_to_tensor(inputs["item"])
        reserved = ops.arange(self.config.item_vocab_size) < NUM_RESERVED_IDS
        logits = ops.where(reserved, -1e9, self.item_scores(outputs, items, last_only=True))
        empty = ops.logical_not(ops.any(ops.not_equal(items, 0), axis=-1))
        logits = ops.where(empty[:, None], self.item_head.popularity_logits()[None, :], logits)
        if exclude_seen:  # after the popularity answer: `seen` may hold items without a window
            excluded = items if seen is None else ops.concatenate(
                [ops.cast(items, "int32"), ops.cast(seen, "int32")], axis=1)
            logits = mask_seen_items(logits, excluded)
        scores, ids = ops.top_k(logits, k)
        result = {"top_k_ids": ids, "top_k_scores": scores}
        for key, value in outputs.items():
            if key.startswith("intent_") and not key.startswith("intent_logits_"):
                result[key] = value[:, -1]
        return result

    def select_inputs(self, batch):
        """Exactly the model's input keys (extra keys make Keras warn on every call)."""
        missing = [name for name in self.input_names if name not in batch]
        if missing:
            raise KeyError(f"batch lacks model inputs {missing}")
        return {name: batch[name] for name in self.input_names}

    @property
    def input_names(self):
        return list(self._inputs_struct.keys())

    # --- Config -------------------------------------------------------------

    def get_config(self):
        return {"config": self.config.to_dict(), "name": self.name, "trainable": self.trainable}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def _score_logits(outputs, name):
    """The logits of head `name` that the intent item score reads: the head's own where
    `intent_score_reads_prior` is off (`head_logits_<name>`), else the intent's."""
    return outputs.get(f"head_logits_{name}", outputs[f"intent_logits_{name}"])


def mask_seen_items(logits, items):
    """Sets the logits of items present in `items` `[batch, seq]` to -inf.

    logits `[batch, |I|]` float32.
    """
    items = ops.cast(items, "int32")
    batch, seq = ops.shape(items)[0], ops.shape(items)[1]
    rows = ops.repeat(ops.arange(batch, dtype="int32"), seq)
    indices = ops.stack([rows, ops.reshape(items, (-1,))], axis=-1)  # [batch*seq, 2]
    seen = ops.scatter(indices, ops.ones((batch * seq,), "float32"), ops.shape(logits))
    return ops.where(seen > 0, -1e9, logits)
