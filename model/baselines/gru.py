"""GRU baseline (paper §4.1.2 (1))."""

import keras

from model.baselines.recurrent import RecurrentRec


@keras.saving.register_keras_serializable(package="intentrec")
class GRURec(RecurrentRec):
    """GRU sequence encoder with next-item and next-intent heads (simple MTL), item ids only."""

    cell = "gru"
