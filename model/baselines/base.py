"""Common contract of the baseline recommenders (the IntentRec training contract)."""

import keras

from model import training as training_lib
from model.baselines.config import BaselineConfig
from model.intent_loss import intent_loss
from model.intentrec import IntentRec
from model.item_head import ItemHead
from model.keras_compat import track_layer
from model.tied_item_head import TiedItemHead


def build_item_head(cfg: BaselineConfig, tied_embedding=None):
    """The next-item head of `cfg`, built for width `d_model`: its own weights, or the
    model's input item embeddings when `tied_embedding` is given (SASRec, BERT4Rec)."""
    kwargs = dict(loss_mode=cfg.item_loss, num_sampled_negatives=cfg.num_sampled_negatives,
                  chunk_size=cfg.item_chunk_size, max_label_positions=cfg.max_label_positions, name="item_head")
    if tied_embedding is not None:
        head = TiedItemHead(tied_embedding, cfg.item_vocab_size, **kwargs)
    else:
        head = ItemHead(cfg.item_vocab_size, **kwargs)
    head.build((None, cfg.d_model))
    return head


class SequenceBaseline(keras.Model):
    """Base class: a functional Keras model following IntentRec's training contract.

    Subclasses implement `build_graph(config)`, returning
    `(inputs, outputs, intent_heads, item_head)`: a dict of `keras.Input`s (a
    subset of the encoded batch keys), an output dict with `item_hidden`
    `[batch, seq, d]` (and `intent_<name>` / `intent_logits_<name>` per intent
    head), the list of intent head specs, and an `ItemHead`. The base class adds
    the loss (`L_item + λ Σ L_intent`, duration-weighted, as IntentRec), the
    metric trackers, `input_names`, `select_inputs`, `recommend` and
    (de)serialisation from the config alone. `model.training.fit_and_evaluate`
    trains and evaluates any subclass.

    Args:
        config: a `BaselineConfig` (or its dict form).
    """

    def __init__(self, config, **kwargs):
        if isinstance(config, dict):
            config = BaselineConfig(**config)
        inputs, outputs, heads, item_head = self.build_graph(config)
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)
        self.config = config
        self.intent_heads = list(heads)
        self.item_head = item_head
        track_layer(self, item_head)
        self.item_loss_tracker = keras.metrics.Mean(name="item_loss")
        self.intent_loss_trackers = {
            h.name: keras.metrics.Mean(name=f"intent_loss_{h.name}") for h in self.intent_heads
        }

    def build_graph(self, config):  # pragma: no cover - abstract
        raise NotImplementedError

    # --- Training -----------------------------------------------------------

    def item_targets(self, x, y, y_pred):
        """(labels `[batch, seq]`, weights `[batch, seq]`) of the item loss: the
        next-step targets by default (BERT4Rec overrides: cloze targets)."""
        return y["item"], y["weight"]

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """L_item + λ Σ_i L_intent_i, each a weighted mean over labelled positions."""
        del sample_weight
        labels, item_weights = self.item_targets(x, y, y_pred)
        item_loss = self.item_head.loss(y_pred["item_hidden"], labels, item_weights, training=training)
        self.item_loss_tracker.update_state(item_loss)
        total = item_loss
        for head in self.intent_heads:
            name = head.name
            loss = intent_loss(
                head, y[name], y_pred[f"intent_logits_{name}"], y["weight"], self.config.multi_label_loss
            )
            self.intent_loss_trackers[name].update_state(loss)
            total = total + self.config.intent_loss_weight * loss
        # Same gradient under tf.distribute as on one device (model.training).
        return training_lib.scale_loss_for_distribution(self, total)

    @property
    def metrics(self):
        return super().metrics + [self.item_loss_tracker, *self.intent_loss_trackers.values()]

    # --- Inference ----------------------------------------------------------

    # Top-k items and intents at the last position, exactly as IntentRec serves them.
    recommend = IntentRec.recommend
    item_scores = IntentRec.item_scores
    has_item_score_terms = IntentRec.has_item_score_terms
    select_inputs = IntentRec.select_inputs
    input_names = IntentRec.input_names

    # --- Config (a config dataclass with `to_dict`, as IntentRec) -----------
    get_config = IntentRec.get_config
    from_config = IntentRec.__dict__["from_config"]  # the classmethod itself, bound to cls
