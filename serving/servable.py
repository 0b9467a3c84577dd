"""One version of a model: its load state and, while loaded, its signatures."""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Callable, Sequence

import grpc

from serving import contract
from serving.errors import ServingError, code_from_int

log = logging.getLogger(__name__)

# ModelVersionStatus.State names (tensorflow_serving/apis/get_model_status.proto).
START, LOADING, AVAILABLE, UNLOADING, END = "START", "LOADING", "AVAILABLE", "UNLOADING", "END"


class ServableVersion:
    """One version directory: its state and, while loaded, its signatures."""

    def __init__(self, model_name: str, version: int, path: str):
        self.model_name = model_name
        self.version = version
        self.path = path
        self.state = START
        self.error: ServingError | None = None
        self.fingerprint: tuple | None = None
        self.loaded = None
        self.signatures: dict = {}
        self.signature_def_map = None  # tensorflow_serving.apis SignatureDefMap
        self.metadata: dict | None = None  # assets.extra/intentrec_metadata.json
        self.manager = None  # the ModelManager that hands it out (requests release through it)
        self.refs = 0
        self.retired = False
        self.drained = threading.Event()
        self.load_seconds = 0.0

    def __repr__(self):
        return f"<{self.model_name} v{self.version} {self.state}>"

    def signature(self, name: str):
        sig = self.signatures.get(name or contract.SERVING_SIGNATURE)
        if sig is None:
            raise ServingError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f'Serving signature name: "{name or contract.SERVING_SIGNATURE}" not found in '
                f"signature def")
        return sig

    # --- loading ---------------------------------------------------------------------------
    def load(self, warmup: Callable[["ServableVersion"], None] | None = None,
             tags: Sequence[str] = (contract.SAVED_MODEL_TAG,)) -> None:
        """Loads the meta graph with exactly ``tags`` (--saved_model_tags) and replays
        warm-up; raises ServingError on any failure."""
        import tensorflow as tf
        from tensorflow.core.protobuf import saved_model_pb2
        from tensorflow_serving.apis import get_model_metadata_pb2

        from serving.signature import Signature

        t0 = time.perf_counter()
        pb_path = os.path.join(self.path, contract.SAVED_MODEL_PB)
        try:
            sm = saved_model_pb2.SavedModel()
            if os.path.exists(pb_path):
                with open(pb_path, "rb") as f:
                    sm.ParseFromString(f.read())
            else:
                from google.protobuf import text_format

                with open(os.path.join(self.path, contract.SAVED_MODEL_PBTXT)) as f:
                    text_format.Parse(f.read(), sm)
        except Exception as e:  # DecodeError, OSError, ...
            raise ServingError(grpc.StatusCode.DATA_LOSS,
                               f"Could not parse SavedModel {pb_path}: {type(e).__name__}: {e}") from None
        if not sm.meta_graphs:
            raise ServingError(grpc.StatusCode.DATA_LOSS,
                               f"Could not parse SavedModel {pb_path}: no MetaGraphDef in it")
        want = set(tags)
        meta = [mg for mg in sm.meta_graphs if set(mg.meta_info_def.tags) == want]
        if not meta:
            raise ServingError(
                grpc.StatusCode.NOT_FOUND,
                f"Could not find meta graph def matching supplied tags: {{ {' '.join(sorted(want))} }}. "
                f"To inspect available tag-sets in the SavedModel, please use the SavedModel CLI: "
                f"`saved_model_cli`")
        sig_defs = meta[0].signature_def
        try:
            loaded = tf.saved_model.load(self.path, tags=sorted(want))
        except tf.errors.OpError as e:
            raise ServingError(code_from_int(e.error_code), f"Failed to load {self.path}: {e.message}") from None
        except Exception as e:  # noqa: BLE001
            raise ServingError(grpc.StatusCode.DATA_LOSS,
                               f"Failed to load {self.path}: {type(e).__name__}: {e}") from None
        sigs = {}
        for name, sdef in sig_defs.items():
            fn = loaded.signatures.get(name) if hasattr(loaded, "signatures") else None
            if fn is None:
                continue  # e.g. __saved_model_init_op: listed in metadata, not callable
            sigs[name] = Signature(name, sdef, fn)
        sdm = get_model_metadata_pb2.SignatureDefMap()
        for name, sdef in sig_defs.items():
            sdm.signature_def[name].CopyFrom(sdef)
        try:
            self.metadata = contract.read_metadata(self.path)
        except (OSError, ValueError) as e:
            log.warning("%s v%d: unreadable %s: %s", self.model_name, self.version,
                        contract.METADATA_FILE, e)
            self.metadata = None
        self.loaded, self.signatures, self.signature_def_map = loaded, sigs, sdm
        if warmup is not None:
            try:
                warmup(self)
            except ServingError as e:
                self.unload()
                raise ServingError(e.code, f"Failed to warm up model: {e.message}") from None
        self.load_seconds = time.perf_counter() - t0

    def unload(self) -> None:
        self.signatures = {}
        self.loaded = None
