"""What one Predict may ask of the server: size caps and the contract's consistency rules.

Without batching nothing bounded the work of one request: a 3.8 MB request of 10,000
examples took 11.5 s and 1.3 GB, and a 1,000,000-interaction history was accepted. And
inputs that break the contract were answered silently: a tf.Example whose ``timestamp``
list was one short shifted every timestamp against its item and changed the ranking,
because the model aligns the lists from the right. These checks run before the model:

- ``max_examples_per_request`` (``--max_examples_per_request``, default 1000): dimension 0
  of a batched signature's inputs;
- ``max_history_length`` (``--max_history_length``, default 10,000): interactions in one
  history (values per tf.Example feature; dimension 1 of ``predict_raw``'s inputs);
- every list feature of one tf.Example holds one value per interaction, so they have the
  same length (docs/serving.md); ``predict_raw``'s ``[batch, n]`` inputs share n.

Every violation is INVALID_ARGUMENT naming the example, the feature or input, the
lengths and the flag. 0 disables a cap.

Counting the values of a tf.Example's features is on every request's path, so it reads the
example through a wire-compatible view (`_LITE`: the feature map as repeated entries whose
lists stay serialized) and parses each list into a reused per-thread BytesList/Int64List/
FloatList: ~30 us for a 200-interaction history of three features, against ~90 us for
``tf.train.Example.FromString`` and a walk over its map.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Callable, Mapping

import numpy as np
from google.protobuf import descriptor_pb2
from google.protobuf.message import DecodeError
from tensorflow.core.example import feature_pb2

from serving import contract
from serving.config_protos import declare
from serving.errors import invalid

_F = descriptor_pb2.FieldDescriptorProto
# tf.train.Example on the wire: Example{features=1: Features{feature=1: map<string, Feature>}},
# a map being repeated {key=1, value=2} entries; Feature{bytes_list=1 | float_list=2 |
# int64_list=3}. Declaring the lists as bytes keeps them serialized until counted.
_LITE = declare("intentrec/example_lengths.proto", "intentrec.lite", {
    "Feature": [("bytes_list", 1, _F.TYPE_BYTES, _F.LABEL_OPTIONAL, None),
                ("float_list", 2, _F.TYPE_BYTES, _F.LABEL_OPTIONAL, None),
                ("int64_list", 3, _F.TYPE_BYTES, _F.LABEL_OPTIONAL, None)],
    "Entry": [("key", 1, _F.TYPE_BYTES, _F.LABEL_OPTIONAL, None),
              ("value", 2, _F.TYPE_MESSAGE, _F.LABEL_OPTIONAL, ".intentrec.lite.Feature")],
    "Features": [("feature", 1, _F.TYPE_MESSAGE, _F.LABEL_REPEATED, ".intentrec.lite.Entry")],
    "Example": [("features", 1, _F.TYPE_MESSAGE, _F.LABEL_OPTIONAL, ".intentrec.lite.Features")],
})["Example"]
_lists = threading.local()  # reused list messages: parsing into one keeps its allocations


def feature_lengths(serialized: bytes) -> dict[str, int]:
    """{feature: number of values} of a serialized tf.train.Example; DecodeError if malformed."""
    try:
        bytes_list, int64_list, float_list = _lists.messages
    except AttributeError:
        bytes_list, int64_list, float_list = _lists.messages = (
            feature_pb2.BytesList(), feature_pb2.Int64List(), feature_pb2.FloatList())
    lengths = {}
    for entry in _LITE.FromString(serialized).features.feature:
        f = entry.value
        if f.bytes_list:
            bytes_list.ParseFromString(f.bytes_list)
            n = len(bytes_list.value)
        elif f.int64_list:
            int64_list.ParseFromString(f.int64_list)
            n = len(int64_list.value)
        elif f.float_list:
            float_list.ParseFromString(f.float_list)
            n = len(float_list.value)
        else:
            n = 0
        lengths[entry.key.decode("utf-8", "replace")] = n
    return lengths

DEFAULT_MAX_EXAMPLES_PER_REQUEST = 1000
DEFAULT_MAX_HISTORY_LENGTH = 10_000
CHECK_EVERY = 64


@dataclass(frozen=True)
class RequestPolicy:
    max_examples_per_request: int = DEFAULT_MAX_EXAMPLES_PER_REQUEST
    max_history_length: int = DEFAULT_MAX_HISTORY_LENGTH

    def check(self, sig, inputs: Mapping[str, np.ndarray],
              still_wanted: Callable[[], None] | None = None) -> None:
        """Raises INVALID_ARGUMENT when ``inputs`` (already shape-checked against ``sig``)
        exceed a cap or break the contract. Parsing tf.Examples in Python costs ~0.2 us per
        value (40 us for a 200-interaction history), so on large requests ``still_wanted``
        (raises when the caller's deadline passed or it cancelled) is called every
        ``CHECK_EVERY`` examples."""
        if not inputs:
            return
        cap = self.max_examples_per_request
        if cap and sig.batchable:
            n = next(iter(inputs.values())).shape[0]
            if n > cap:
                raise invalid(f"the request holds {n} examples; this server accepts at most {cap} "
                              f"(--max_examples_per_request)")
        if sig.name == contract.RAW_SIGNATURE:
            self._check_raw(inputs)
        elif sig.example_input is not None:
            self._check_examples(sig.example_input, inputs[sig.example_input], still_wanted)

    def _check_raw(self, inputs: Mapping[str, np.ndarray]) -> None:
        widths = {name: arr.shape[1] for name, arr in inputs.items() if arr.ndim == 2}
        if not widths:
            return
        ref = contract.EXAMPLE_ITEM_ID if contract.EXAMPLE_ITEM_ID in widths else min(widths)
        for name, width in sorted(widths.items()):
            if width != widths[ref]:
                raise invalid(
                    f"{contract.RAW_SIGNATURE} input '{name}' has length {width} but '{ref}' has "
                    f"{widths[ref]} (dimension 1); every input holds one value per interaction")
        cap = self.max_history_length
        if cap and widths[ref] > cap:
            raise invalid(f"{contract.RAW_SIGNATURE} inputs hold {widths[ref]} interactions per history; "
                          f"this server accepts at most {cap} per history (--max_history_length)")

    def _check_examples(self, name: str, examples: np.ndarray, still_wanted) -> None:
        cap = self.max_history_length
        for i, serialized in enumerate(examples.ravel()):
            if still_wanted is not None and i and not i % CHECK_EVERY:
                still_wanted()
            try:
                lengths = feature_lengths(serialized)
            except (DecodeError, TypeError):
                raise invalid(f"Could not parse example input {name!r}[{i}]: not a serialized "
                              f"tf.train.Example") from None
            if not lengths:
                continue
            ref = contract.EXAMPLE_ITEM_ID if contract.EXAMPLE_ITEM_ID in lengths else min(lengths)
            n = lengths[ref]
            for key, length in sorted(lengths.items()):
                if length != n:
                    raise invalid(
                        f"{name}[{i}]: feature '{key}' has {length} values but '{ref}' has {n}; every "
                        f"feature of a history holds one value per interaction")
            if cap and n > cap:
                raise invalid(f"{name}[{i}] holds {n} interactions; this server accepts at most {cap} "
                              f"per history (--max_history_length)")
