"""Baseline sequence recommenders of the paper's Table 1, on IntentRec's training contract.

    from model.baselines import build_baseline
    model = build_baseline("sasrec", encoded.feature_spec, dropout=0.3)
    result = model.training.fit_and_evaluate(model, encoded, TrainConfig())

Every model takes the encoded input dict, returns `item_hidden` (+ intent heads
where the design has them), exposes `item_head`, `intent_heads`,
`input_names`, and trains with `model.training.fit_and_evaluate`. See
docs/experiments.md for each design and its deviations from the original.
"""

from model.baselines.base import SequenceBaseline
from model.baselines.bert4rec import BERT4Rec
from model.baselines.config import BaselineConfig
from model.baselines.gru import GRURec
from model.baselines.lstm import LSTMRec
from model.baselines.sasrec import SASRec
from model.baselines.transact import TransAct
from model.baselines.transformer import TransformerRec

BASELINES = {
    "lstm": LSTMRec,
    "gru": GRURec,
    "transformer": TransformerRec,
    "sasrec": SASRec,
    "bert4rec": BERT4Rec,
    "transact": TransAct,
}


def build_baseline(name, feature_spec, intents=None, **overrides):
    """Baseline `name` (a key of `BASELINES`) configured from a data feature spec."""
    try:
        cls = BASELINES[name]
    except KeyError:
        raise ValueError(f"unknown baseline {name!r}; available: {sorted(BASELINES)}") from None
    return cls(BaselineConfig.from_feature_spec(feature_spec, intents=intents, **overrides))


__all__ = ["BASELINES", "BERT4Rec", "BaselineConfig", "GRURec", "LSTMRec", "SASRec", "SequenceBaseline",
           "TransAct", "TransformerRec", "build_baseline"]
