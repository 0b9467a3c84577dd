"""IntentRec datasets: adapters to one canonical interaction log, and the numpy encoder.

    import datasets
    ds = datasets.load("synthetic", num_users=500, seed=0)
    enc = datasets.encode(ds)          # max_len = datasets.DEFAULT_MAX_LEN

See docs/datasets.md.
"""

from datasets.dataset import Dataset, DatasetError, IngestReport
from datasets.feature_spec import DEFAULT_MAX_LEN, FeatureSpec, IntentHead
from datasets.registry import aliases, available, load, register, resolve
from datasets.schema import IntentSpec, InteractionSchema

__all__ = [
    "Dataset", "DatasetError", "IngestReport", "IntentSpec", "InteractionSchema",
    "DEFAULT_MAX_LEN", "FeatureSpec", "IntentHead",
    "aliases", "available", "load", "register", "resolve", "encode", "encode_history", "EncodedData",
]


def __getattr__(name):  # lazy: the encoder pulls in nothing heavy, but keep import cheap
    if name in ("encode", "encode_history", "encode_histories", "EncodedData"):
        from datasets import encoder

        return getattr(encoder, name)
    if name == "Preprocessor":
        from datasets.preprocessor import Preprocessor

        return Preprocessor
    raise AttributeError(f"module 'datasets' has no attribute {name!r}")
