"""gRPC servicers (the generated tensorflow_serving.apis base classes) over ServingCore."""

from __future__ import annotations

import logging
import math
import time

import grpc
from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

from serving.core import ServingCore
from serving.errors import ServingError

log = logging.getLogger(__name__)


def _call(fn, request, context, *args):
    try:
        return fn(request, *args)
    except ServingError as e:
        context.abort(e.code, e.message)
    except Exception as e:  # noqa: BLE001 - the process never dies on a request
        log.exception("request failed")
        context.abort(grpc.StatusCode.INTERNAL, f"{type(e).__name__}: {e}")


def _unimplemented(what: str, context):
    context.abort(grpc.StatusCode.UNIMPLEMENTED,
                  f"{what} is not implemented by this server; use Predict")


def observed(fn, metrics, entrypoint: str):
    """fn(request, *args) counted in metrics (serving.metrics) by model and status code."""
    def run(request, *args):
        t0 = time.perf_counter()
        status = "OK"
        try:
            return fn(request, *args)
        except ServingError as e:
            status = e.code.name
            raise
        except Exception:
            status = "INTERNAL"
            raise
        finally:
            metrics.observe(request.model_spec.name, status, time.perf_counter() - t0, entrypoint)
    return run


class PredictionServicer(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, core: ServingCore):
        self.core = core
        self._predict = core.predict if core.metrics is None else observed(core.predict, core.metrics, "GRPC")

    def Predict(self, request, context):
        # The client's deadline bounds the model's work too (TF Serving passes it to the
        # session as RunOptions.timeout_in_ms); a cancelled or abandoned call stops early.
        remaining = context.time_remaining()
        deadline = (time.monotonic() + remaining
                    if remaining is not None and not math.isinf(remaining) else None)
        return _call(self._predict, request, context, deadline, lambda: not context.is_active())

    def GetModelMetadata(self, request, context):
        return _call(self.core.metadata, request, context)

    def Classify(self, request, context):
        _unimplemented("Classify", context)

    def Regress(self, request, context):
        _unimplemented("Regress", context)

    def MultiInference(self, request, context):
        _unimplemented("MultiInference", context)


class ModelServicer(model_service_pb2_grpc.ModelServiceServicer):
    def __init__(self, core: ServingCore):
        self.core = core

    def GetModelStatus(self, request, context):
        return _call(self.core.status, request, context)

    def HandleReloadConfigRequest(self, request, context):
        return _call(self.core.reload_config, request, context)
