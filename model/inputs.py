"""The model inputs of a feature spec, shared by IntentRec and the baselines."""

import keras

from datasets.feature_spec import FeatureSpec


def sequence_inputs(spec: FeatureSpec, names=None) -> dict:
    """`keras.Input`s for the model inputs of `spec` (all of them, or `names`).

    The sequence dimension is dynamic (`None`): a model accepts any window of at
    most `spec.max_len` positions, so a training batch can be cut to its longest
    history (`model.batching`) and serving still sends `max_len`.

    Returns:
        {name: keras.Input}: `item`, categorical ids int32 `[batch, seq]`; `time`,
        numeric float32 `[batch, seq]`; multi-hot float32 `[batch, seq, size]`.
    """
    multi_hot = dict(spec.multi_hot)
    categorical = dict(spec.categorical)
    names = spec.input_names if names is None else names
    inputs = {}
    for name in names:
        if name == "item" or name in categorical:
            inputs[name] = keras.Input((None,), dtype="int32", name=name)
        elif name in multi_hot:
            inputs[name] = keras.Input((None, multi_hot[name]), dtype="float32", name=name)
        elif name == "time" or name in spec.numeric:
            inputs[name] = keras.Input((None,), dtype="float32", name=name)
        else:
            raise ValueError(f"{name!r} is not an input of the feature spec ({list(spec.input_names)})")
    return inputs
