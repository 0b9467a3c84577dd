"""IntentRec: hierarchical multi-task next-intent and next-item model (paper §3)."""

import keras
from keras import layers, ops

from model import masks
from model.config import IntentRecConfig
from model.feature_constructor import InputFeatureConstructor
from model.intent_aggregation import IntentAggregation
from model.intent_loss import intent_loss
from model.item_head import ItemHead
from model.short_term_encoder import ShortTermEncoder
from model.time_encoding import TimeEncoding
from model.training import replica_gradient_scale
from model.transformer_encoder import TransformerEncoder


def track_layer(model, layer):
    """Makes `layer`'s weights part of the functional `model`'s weights (idempotent).

    Keras 3.6's `Functional.__init__` replaces `model._layers` after the attribute
    tracker was bound to the old list, so a layer assigned as an attribute *after*
    `super().__init__(inputs, outputs)` (the item head, kept outside the graph) is
    silently left out of `trainable_variables` and the saved weights: it would
    never train. tests/model/test_intentrec.py checks that it does.
    """
    if not any(existing is layer for existing in model._layers):
        model._layers.append(layer)
    return model


@keras.saving.register_keras_serializable(package="intentrec")
class IntentRec(keras.Model):
    """The IntentRec model and its V0–V3 ablations, as one functional Keras model.

    Reading top to bottom (paper Fig. 2):
    1. F_k: embeddings of the item and its metadata plus numeric features;
    2. S_k: a short-term encoder over each position's time window (v3);
    3. E^intent: FC + LayerNorm on F ⊕ S, timestamp encoding, causal Transformer;
    4. intent heads: softmax (single-label) or sigmoid (multi-label) per intent;
    5. Z, α: attention aggregation of the projected head predictions (v2, v3);
    6. E^item: FC + LayerNorm on F ⊕ S ⊕ Z, timestamp encoding, a second causal
       Transformer (v2, v3; v0/v1 share the first encoder);
    7. next-item scores from `item_head` over the whole catalogue.

    Every output at position k depends on interactions 1..k only, so one forward
    pass trains all next-step targets and serves the last position.

    Inputs are a dict of left-padded `[batch, max_len]` tensors (see
    docs/ARCHITECTURE.md §2). Outputs are a dict:
    - `item_hidden`: E^item `[batch, seq, d_model]`;
    - `intent_<name>`: head probabilities `[batch, seq, d_i]`, and
      `intent_logits_<name>` (for the loss);
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
            config = IntentRecConfig(**config)
        cfg = config
        n = cfg.max_len
        heads = list(cfg.intents) if cfg.use_intents else []

        # === Inputs ===
        inputs = {
            "item": keras.Input((n,), dtype="int32", name="item"),
            "time": keras.Input((n,), dtype="float32", name="time"),
        }
        for name in cfg.categorical:
            inputs[name] = keras.Input((n,), dtype="int32", name=name)
        for name, size in cfg.multi_hot.items():
            inputs[name] = keras.Input((n, size), dtype="float32", name=name)
        for name in cfg.numeric:
            inputs[name] = keras.Input((n,), dtype="float32", name=name)

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

        def encoder_stack(prefix, num_layers):
            return (
                layers.Dense(cfg.d_model, name=f"{prefix}_input_fc"),
                layers.LayerNormalization(epsilon=1e-6, name=f"{prefix}_input_norm"),
                TimeEncoding(cfg.d_model, time_unit_hours=time_unit_hours, name=f"{prefix}_time_encoding"),
                TransformerEncoder(
                    num_layers=num_layers,
                    d_model=cfg.d_model,
                    num_heads=cfg.num_heads,
                    ffn_dim=cfg.ffn_multiplier * cfg.d_model,
                    dropout=cfg.dropout,
                    name=f"{prefix}_encoder",
                ),
            )

        intent_stack = encoder_stack("intent", cfg.intent_layers)
        item_stack = encoder_stack("item", cfg.item_layers) if cfg.hierarchical else None
        head_layers = {h["name"]: layers.Dense(h["num_classes"], name=f"intent_head_{h['name']}") for h in heads}
        aggregation = IntentAggregation(len(heads), cfg.d_proj, name="intent_aggregation") if cfg.hierarchical else None
        input_dropout = layers.Dropout(cfg.dropout, name="input_dropout")

        # === Functional Model ===
        valid = masks.padding_mask(inputs["item"])
        causal = masks.causal_mask(valid)
        time = inputs["time"]

        def encode(stack, x):
            fc, norm, time_encoding, encoder = stack
            x = norm(fc(x)) + time_encoding(time, valid)
            return encoder(input_dropout(x), causal)

        features = feature_constructor(inputs)  # F: [batch, seq, d_full]
        if short_term_encoder is not None:
            short_term = short_term_encoder(features, time, valid)  # S: [batch, seq, d_short]
            features = ops.concatenate([features, short_term], axis=-1)
        intent_hidden = encode(intent_stack, features)  # E^intent: [batch, seq, d_model]

        outputs = {}
        probabilities = []
        for head in heads:
            logits = layers.Activation("linear", dtype="float32", name=f"intent_logits_{head['name']}")(
                head_layers[head["name"]](intent_hidden)
            )
            activation = "softmax" if head["kind"] == "single" else "sigmoid"
            probs = layers.Activation(activation, dtype="float32", name=f"intent_{head['name']}")(logits)
            outputs[f"intent_logits_{head['name']}"] = logits
            outputs[f"intent_{head['name']}"] = probs
            probabilities.append(probs)

        if cfg.hierarchical:
            intent_embedding, intent_attention = aggregation(probabilities)
            outputs["intent_embedding"] = intent_embedding
            outputs["intent_attention"] = intent_attention
            item_input = ops.concatenate([features, ops.cast(intent_embedding, features.dtype)], axis=-1)
            item_hidden = encode(item_stack, item_input)  # E^item
        else:
            item_hidden = intent_hidden  # v0/v1: one shared encoder
        outputs["item_hidden"] = item_hidden

        super().__init__(inputs=inputs, outputs=outputs, **kwargs)

        # === Config ===
        self.config = cfg
        self.intent_heads = heads
        # Outside the graph: training scores only labelled positions (or samples),
        # serving only the last position, so [batch, seq, |I|] is never built.
        self.item_head = ItemHead(
            cfg.item_vocab_size, loss_mode=cfg.item_loss, num_sampled_negatives=cfg.num_sampled_negatives,
            chunk_size=cfg.item_chunk_size, max_label_positions=cfg.max_label_positions, name="item_head",
        )
        self.item_head.build((None, cfg.d_model))
        track_layer(self, self.item_head)
        self.item_loss_tracker = keras.metrics.Mean(name="item_loss")
        self.intent_loss_trackers = {
            h["name"]: keras.metrics.Mean(name=f"intent_loss_{h['name']}") for h in heads
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
        item_loss = self.item_head.loss(y_pred["item_hidden"], y["item"], y["weight"], training=training)
        self.item_loss_tracker.update_state(item_loss)
        total = item_loss
        for head in self.intent_heads:
            name = head["name"]
            head_loss = intent_loss(
                head, y[name], y_pred[f"intent_logits_{name}"], y["weight"], self.config.multi_label_loss
            )
            self.intent_loss_trackers[name].update_state(head_loss)
            total = total + self.config.intent_loss_weight * head_loss
        return replica_gradient_scale(self, total)

    @property
    def metrics(self):
        return super().metrics + [self.item_loss_tracker, *self.intent_loss_trackers.values()]

    # --- Inference ----------------------------------------------------------

    def recommend(self, inputs, k=None, exclude_seen=False):
        """Top-k items, intents, Z and α at the last position (the serving output).

        Args:
            inputs: encoded batch (only the model's input keys are used).
            k: number of items (default `config.top_k`).
            exclude_seen: drop items already in the history from the ranking.

        Returns:
            dict with `top_k_ids` `[batch, k]` int, `top_k_scores` `[batch, k]`,
            `intent_<name>` `[batch, d_i]`, `intent_embedding` `[batch, d_proj]`,
            `intent_attention` `[batch, M]`. A history without any real
            interaction gets the popularity ranking.
        """
        k = k or self.config.top_k
        outputs = self(self.select_inputs(inputs), training=False)
        logits = self.item_head.masked_logits(outputs["item_hidden"][:, -1])
        items = ops.convert_to_tensor(inputs["item"])
        if exclude_seen:
            logits = mask_seen_items(logits, items)
        empty = ops.logical_not(ops.any(ops.not_equal(items, 0), axis=-1))
        logits = ops.where(empty[:, None], self.item_head.popularity_logits()[None, :], logits)
        scores, ids = ops.top_k(logits, k)
        result = {"top_k_ids": ids, "top_k_scores": scores}
        for key, value in outputs.items():
            if key.startswith("intent_") and not key.startswith("intent_logits_"):
                result[key] = value[:, -1]
        return result

    def select_inputs(self, batch):
        """Exactly the model's input keys (Keras 3.6 can misalign extra keys)."""
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
