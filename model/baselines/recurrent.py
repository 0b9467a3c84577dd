"""Recurrent next-item + intent model (shared by `LSTMRec` and `GRURec`)."""

from keras import layers

from model import masks
from model.baselines import multitask
from model.baselines.base import SequenceBaseline, build_item_head
from model.feature_constructor import InputFeatureConstructor
from model.inputs import sequence_inputs


class RecurrentRec(SequenceBaseline):
    """Item embeddings → stacked LSTM/GRU → next-item head and one FC head per intent.

    The paper's "LSTM / GRU + intent heads" baselines (§4.1.2): the original
    encoder with extra fully connected heads for multi-task learning. As the
    paper states these baselines take no interaction metadata: the input is the
    item id only. Recurrence is causal by construction; left padding is masked
    (the state does not move over padding).

    Subclasses set `cell` to `"lstm"` or `"gru"`.
    """

    cell = None

    def build_graph(self, cfg):
        inputs = sequence_inputs(cfg.feature_spec, ["item"])
        embed = InputFeatureConstructor(cfg.item_vocab_size, cfg.d_model, name="input_features")
        rnn_cls = {"lstm": layers.LSTM, "gru": layers.GRU}[self.cell]
        recurrent = [
            rnn_cls(cfg.d_model, return_sequences=True, name=f"{self.cell}_{i}") for i in range(cfg.rnn_layers)
        ]
        valid = masks.padding_mask(inputs["item"])
        x = layers.Dropout(cfg.dropout, name="input_dropout")(embed(inputs))
        for rnn in recurrent:
            x = rnn(x, mask=valid)
        hidden = layers.Dropout(cfg.dropout, name="output_dropout")(x)
        heads = list(cfg.intents)
        outputs = {"item_hidden": hidden, **multitask.intent_head_outputs(hidden, heads)}
        item_head = build_item_head(cfg)
        return inputs, outputs, heads, item_head
