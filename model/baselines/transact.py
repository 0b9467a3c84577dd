"""TransAct (Xia et al., KDD 2023), adapted to next-item and next-intent prediction."""

import keras
from keras import layers, ops

from model import masks
from model.baselines import multitask
from model.baselines.base import SequenceBaseline, build_item_head
from model.baselines.random_window_mask import RandomWindowMask
from model.feature_constructor import InputFeatureConstructor
from model.inputs import sequence_inputs
from model.transformer_encoder import TransformerEncoder

_NEG = -1e9


def _shift_right(x, steps, fill=0.0):
    """x `[batch, seq, d]` → x moved `steps` positions later (towards the end), `fill` in front."""
    if steps == 0:
        return x
    front = ops.full_like(x[:, :steps], fill)
    return ops.concatenate([front, x[:, :-steps]], axis=1)


def prefix_max(x, valid, max_len):
    """Causal max-pool: out[k] = max over real positions i <= k of x[i] (0 where none).

    log2(max_len) doubling steps (enough for any window of at most `max_len`), so no
    `[batch, seq, seq, d]` block is built.
    """
    seq = max_len
    m = ops.where(valid[..., None], x, _NEG)
    step = 1
    while step < seq:
        m = ops.maximum(m, _shift_right(m, step, _NEG))
        step *= 2
    return ops.where(m <= _NEG / 2, 0.0, m)


@keras.saving.register_keras_serializable(package="intentrec")
class TransAct(SequenceBaseline):
    """Pinterest's realtime user-action model, following `transact_code/transact.py`.

    Kept from the original:
    * early fusion: per position, the action-type embedding concatenated with
      the item embedding (`action_feature`, default `action_type`; item only
      when the data has no such column);
    * a Transformer encoder without positional encoding;
    * a random time-window mask in training: r ~ U[0, W] per batch hides the
      actions less than r before the request, never the latest one
      (`RandomWindowMask`; W = `time_window_days`, 1 hour as the original, or
      `time_window_positions` positions without timestamps); nothing but
      padding is hidden at inference;
    * the output: a linear layer on the max-pool over the sequence, concatenated
      with the flattened last `latest_k` Transformer outputs.

    Changed to predict the next item (and next intents) at every position, as
    the paper did ("modify the architecture to predict the next item and action
    together"):
    * each position k is a request at time T_k: attention is causal, the
      max-pool runs over positions <= k and the last-k outputs are k, k-1, …
      (zeros before the window), so one pass trains every next-step target;
    * no candidate-item concatenation (`concat_candidate_emb`): the model
      scores the whole catalogue with an item head instead of one candidate;
    * the pooled vector goes through a dense layer + LayerNorm to `d_model`
      (the original feeds it to Pinterest's ranking model), then to the item
      head and to one FC head per intent (all the data's intents, as the
      paper's Table 1 reports TransAct on every intent);
    * IntentRec's pre-LN GELU Transformer blocks (original: PyTorch post-LN
      ReLU layers with feed-forward width 32).
    """

    def build_graph(self, cfg):
        n = cfg.max_len
        action = cfg.action_feature if cfg.action_feature in cfg.categorical else None
        inputs = sequence_inputs(cfg.feature_spec, ["item", "time", *([action] if action else [])])
        item_dim = cfg.d_model - cfg.action_embedding_dim if action else cfg.d_model
        fuse = InputFeatureConstructor(
            cfg.item_vocab_size, item_dim, categorical={action: cfg.categorical[action]} if action else {},
            feature_embedding_dim=cfg.action_embedding_dim, name="input_features",
        )
        window = cfg.time_window_days if cfg.has_timestamps else float(cfg.time_window_positions)
        window_mask = RandomWindowMask(window, name="random_window_mask")
        encoder = TransformerEncoder(cfg.num_layers, cfg.d_model, cfg.num_heads,
                                     cfg.ffn_multiplier * cfg.d_model, cfg.dropout, name="encoder")
        valid = masks.padding_mask(inputs["item"])
        x = layers.Dropout(cfg.dropout, name="input_dropout")(fuse(inputs))
        out = encoder(x, window_mask(inputs["time"], valid))  # [batch, seq, d]
        out = out * ops.cast(valid, out.dtype)[..., None]
        parts = [layers.Dense(cfg.d_model, name="max_pool_linear")(prefix_max(out, valid, n))]
        parts += [_shift_right(out, j) for j in range(min(cfg.latest_k, n))]
        hidden = layers.Dense(cfg.d_model, name="output_projection")(ops.concatenate(parts, axis=-1))
        hidden = layers.LayerNormalization(epsilon=1e-6, name="output_norm")(hidden)
        hidden = layers.Dropout(cfg.dropout, name="output_dropout")(hidden)
        heads = list(cfg.intents)
        outputs = {"item_hidden": hidden, **multitask.intent_head_outputs(hidden, heads)}
        item_head = build_item_head(cfg)
        return inputs, outputs, heads, item_head
