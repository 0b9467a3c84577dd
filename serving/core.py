"""Transport-independent serving logic shared by the gRPC and REST front ends.

`ServingCore` answers Predict, GetModelMetadata, GetModelStatus and
HandleReloadConfigRequest over the `ModelRegistry` (the configured models, their
versions and labels), with the optional batcher, the request policy and the optional
Prometheus counters. Every failure is a `ServingError` carrying the gRPC status code TF
Serving would answer with.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import grpc
import numpy as np
from google.protobuf import wrappers_pb2
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    predict_pb2,
)

from serving import contract, tensor_codec
from serving.batching import Batcher
from serving.errors import ServingError, invalid
from serving.models import ModelRegistry
from serving.request_policy import RequestPolicy
from serving.servable import ServableVersion

log = logging.getLogger(__name__)

# Work on more examples than this runs in chunks, with the deadline and cancellation
# checked between them: abandoned requests stop within one chunk (a few tens of ms).
CHUNK_EXAMPLES = 64

SIGNATURE_DEF_FIELD = "signature_def"
# Extension of GetModelMetadata (our server only; real TF Serving answers INVALID_ARGUMENT):
# the version's assets.extra/intentrec_metadata.json as a google.protobuf.StringValue.
INTENTREC_METADATA_FIELD = contract.METADATA_SIGNATURE

_STATE = get_model_status_pb2.ModelVersionStatus.State


@dataclass
class PredictResult:
    version: int
    signature_name: str
    outputs: dict  # name -> numpy array
    dtypes: dict  # name -> DataType enum


class ServingCore:
    def __init__(self, registry: ModelRegistry, *, batcher: Batcher | None = None,
                 max_expanded_bytes: int = tensor_codec.DEFAULT_MAX_EXPANDED_BYTES,
                 policy: RequestPolicy | None = None, metrics=None,
                 check_method_name: bool = False):
        self.registry = registry
        self.batcher = batcher
        self.max_expanded_bytes = max_expanded_bytes
        self.policy = policy or RequestPolicy()
        self.metrics = metrics  # serving.metrics.Metrics, or None (no per-request cost)
        self.check_method_name = check_method_name  # --enable_signature_method_name_check
        self._inflight = 0
        self._inflight_cv = threading.Condition()

    @property
    def manager(self):
        """The manager of the only model (tests and one-model tools)."""
        names = self.registry.names()
        if len(names) != 1:
            raise AttributeError(f"{len(names)} models are served; use core.registry.manager(name)")
        return self.registry.manager(names[0])

    # --- model spec ------------------------------------------------------------------------
    def acquire(self, name: str, version: int | None, label: str = "") -> ServableVersion:
        return self.registry.acquire(name, version, label)

    def acquire_spec(self, spec) -> ServableVersion:
        version = spec.version.value if spec.HasField("version") else None
        return self.acquire(spec.name, version, spec.version_label)

    # --- in-flight accounting (graceful shutdown of REST; gRPC drains itself) ------------
    def _enter(self):
        with self._inflight_cv:
            self._inflight += 1

    def _exit(self):
        with self._inflight_cv:
            self._inflight -= 1
            if self._inflight == 0:
                self._inflight_cv.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        with self._inflight_cv:
            return self._inflight_cv.wait_for(lambda: self._inflight == 0, timeout)

    # --- Predict ---------------------------------------------------------------------------
    def run_signature(self, sv: ServableVersion, sig, inputs: Mapping[str, np.ndarray],
                      output_names: Sequence[str], deadline: float | None = None,
                      cancelled: Callable[[], bool] | None = None) -> dict:
        """Runs sig on validated inputs. ``deadline`` (time.monotonic()) and ``cancelled``
        stop work whose caller has gone: checked before the model runs and between chunks."""
        if deadline is not None and time.monotonic() >= deadline:
            raise ServingError(grpc.StatusCode.DEADLINE_EXCEEDED,
                               "Deadline exceeded before the model ran")
        if not (sig.batchable and inputs):
            return sig.run(inputs, output_names)
        size = sig.batch_size(inputs)
        batcher = self.batcher
        if batcher is not None and size:
            key = (id(sv), sig.name, tuple(output_names),
                   tuple((n, a.dtype.str, a.shape[1:]) for n, a in sorted(inputs.items())))
            return batcher.run(key, inputs, size, lambda merged: sig.run(merged, output_names),
                               deadline=deadline)
        if size <= CHUNK_EXAMPLES:
            return sig.run(inputs, output_names)
        parts = []
        for start in range(0, size, CHUNK_EXAMPLES):
            if start:
                _check_abandoned(deadline, cancelled)
            parts.append(sig.run({n: a[start:start + CHUNK_EXAMPLES] for n, a in inputs.items()},
                                 output_names))
        return {n: np.concatenate([p[n] for p in parts]) for n in output_names}

    def predict_arrays(self, name: str, version: int | None, signature_name: str,
                       inputs, output_filter: Sequence[str] = (), label: str = "",
                       dtypes: Mapping[str, int] | None = None, deadline: float | None = None,
                       cancelled: Callable[[], bool] | None = None) -> PredictResult:
        """Predict on numpy inputs (REST, in-process callers).

        ``inputs``: name -> numpy array, or a callable ``(signature) -> (inputs, dtypes)``
        that builds them once the signature is known (REST converts JSON by the signature's
        dtypes). ``dtypes``: the request's DataType per input when it came typed; otherwise
        they are read off the arrays.
        """
        sv = self.acquire(name, version, label)
        self._enter()
        try:
            sig = sv.signature(signature_name)
            if callable(inputs):
                inputs, dtypes = inputs(sig)
            sig.check_input_names(list(inputs))
            names = sig.check_output_filter(output_filter)
            for n, arr in inputs.items():
                enum = dtypes[n] if dtypes else _enum_of(arr)
                sig.check_input(n, arr, enum)
            self._check_method(sig)
            self.policy.check(sig, inputs, _abandon_check(deadline, cancelled))
            outputs = self.run_signature(sv, sig, inputs, names, deadline, cancelled)
            return PredictResult(sv.version, sig.name, outputs,
                                 {n: sig.outputs[n].dtype for n in names})
        finally:
            self._exit()
            sv.manager.release(sv)

    def predict(self, request: predict_pb2.PredictRequest, deadline: float | None = None,
                cancelled: Callable[[], bool] | None = None) -> predict_pb2.PredictResponse:
        if not request.HasField("model_spec"):
            raise invalid("Missing ModelSpec")
        spec = request.model_spec
        sv = self.acquire_spec(spec)
        self._enter()
        try:
            sig = sv.signature(spec.signature_name)
            req_inputs = request.inputs
            sig.check_input_names(list(req_inputs))
            names = sig.check_output_filter(request.output_filter)
            inputs = {}
            for n in req_inputs:  # (a protobuf map's items() goes through collections.abc: slower)
                tp = req_inputs[n]
                arr = tensor_codec.proto_to_ndarray(tp, name=n, max_expanded_bytes=self.max_expanded_bytes)
                sig.check_input(n, arr, tp.dtype)
                inputs[n] = arr
            self._check_method(sig)
            self.policy.check(sig, inputs, _abandon_check(deadline, cancelled))
            outputs = self.run_signature(sv, sig, inputs, names, deadline, cancelled)
            resp = predict_pb2.PredictResponse()
            ms = resp.model_spec
            ms.name = sv.model_name
            ms.version.value = sv.version
            ms.signature_name = sig.name
            out = resp.outputs
            specs = sig.outputs
            for n in names:
                tensor_codec.ndarray_to_proto(outputs[n], specs[n].dtype or None, out=out[n])
            return resp
        finally:
            self._exit()
            sv.manager.release(sv)

    def _check_method(self, sig) -> None:
        if self.check_method_name and sig.method_name != contract.PREDICT_METHOD_NAME:
            raise invalid(f"Expected prediction signature method_name to be "
                          f"{contract.PREDICT_METHOD_NAME}. Was: {sig.method_name}")

    # --- GetModelMetadata --------------------------------------------------------------------
    def metadata(self, request) -> get_model_metadata_pb2.GetModelMetadataResponse:
        if not request.HasField("model_spec"):
            raise invalid("Missing ModelSpec")
        fields = list(request.metadata_field)
        if not fields:
            raise invalid("GetModelMetadataRequest must specify at least one metadata_field")
        for f in fields:
            if f not in (SIGNATURE_DEF_FIELD, INTENTREC_METADATA_FIELD):
                raise invalid(f"Metadata field {f} is not supported")
        sv = self.acquire_spec(request.model_spec)
        try:
            resp = get_model_metadata_pb2.GetModelMetadataResponse()
            resp.model_spec.name = sv.model_name
            resp.model_spec.version.value = sv.version
            if SIGNATURE_DEF_FIELD in fields:
                resp.metadata[SIGNATURE_DEF_FIELD].Pack(sv.signature_def_map)
            if INTENTREC_METADATA_FIELD in fields:
                if sv.metadata is None:
                    raise ServingError(
                        grpc.StatusCode.NOT_FOUND,
                        f"version {sv.version} has no {contract.ASSETS_EXTRA_DIR}/{contract.METADATA_FILE}")
                import json

                resp.metadata[INTENTREC_METADATA_FIELD].Pack(
                    wrappers_pb2.StringValue(value=json.dumps(sv.metadata, ensure_ascii=False)))
            return resp
        finally:
            sv.manager.release(sv)

    # --- GetModelStatus ----------------------------------------------------------------------
    def status(self, request) -> get_model_status_pb2.GetModelStatusResponse:
        if not request.HasField("model_spec"):
            raise invalid("Missing ModelSpec")
        spec = request.model_spec
        # TF Serving's GetModelStatusImpl reads name and version only (a label is ignored).
        version = spec.version.value if spec.HasField("version") else None
        return self.status_for(spec.name, version)

    def status_for(self, name: str, version: int | None) -> get_model_status_pb2.GetModelStatusResponse:
        manager = self.registry.manager(name)
        if manager is None:
            raise ServingError(grpc.StatusCode.NOT_FOUND, f"Could not find any versions of model {name}")
        versions = manager.statuses(version)
        if not versions:
            if version is None:
                raise ServingError(grpc.StatusCode.NOT_FOUND,
                                   f"Could not find any versions of model {name}")
            raise ServingError(grpc.StatusCode.NOT_FOUND,
                               f"Could not find version {version} of model {name}")
        resp = get_model_status_pb2.GetModelStatusResponse()
        for sv in versions:
            st = resp.model_version_status.add()
            st.version = sv.version
            st.state = _STATE.Value(sv.state)
            st.status.SetInParent()  # error_code OK, as TF Serving reports it
            err = sv.error
            if err is not None:
                st.status.error_code = err.code.value[0]
                st.status.error_message = err.message
            elif sv.state == "START":
                st.status.error_message = "waiting for saved_model.pb"
        return resp

    # --- HandleReloadConfigRequest ------------------------------------------------------------
    def reload_config(self, request):
        """ModelService.HandleReloadConfigRequest: serve request.config (a ModelServerConfig)."""
        from tensorflow_serving.apis import model_management_pb2

        if request.config.WhichOneof("config") != "model_config_list":
            raise invalid("ServerModelConfig type not supported by HandleReloadConfigRequest. Only "
                          "ModelConfigList is currently supported")
        self.registry.apply(request.config)
        return model_management_pb2.ReloadConfigResponse()


def _abandon_check(deadline, cancelled):
    if deadline is None and cancelled is None:
        return None
    return lambda: _check_abandoned(deadline, cancelled)


def _check_abandoned(deadline: float | None, cancelled: Callable[[], bool] | None) -> None:
    if deadline is not None and time.monotonic() >= deadline:
        raise ServingError(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline exceeded")
    if cancelled is not None and cancelled():
        raise ServingError(grpc.StatusCode.CANCELLED, "Request cancelled by the client")


def _enum_of(arr: np.ndarray) -> int:
    if arr.dtype == object:
        return tensor_codec.DT.DT_STRING
    return tensor_codec.dtype_enum(arr.dtype)

