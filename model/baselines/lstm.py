"""LSTM baseline (paper §4.1.2 (1))."""

import keras

from model.baselines.recurrent import RecurrentRec


@keras.saving.register_keras_serializable(package="intentrec")
class LSTMRec(RecurrentRec):
    """LSTM sequence encoder with next-item and next-intent heads (simple MTL), item ids only.

    Example:
    ```python
    config = BaselineConfig.from_feature_spec(encoded.feature_spec)
    result = training.fit_and_evaluate(LSTMRec(config), encoded, TrainConfig())
    ```
    """

    cell = "lstm"
