"""One SignatureDef of a loaded version: request validation and execution.

Validation follows TF Serving's Predict pre-processing (predict_util.cc) and its error
messages, then adds the dtype/shape checks that TF Serving leaves to the session (which
would answer with an INVALID_ARGUMENT too), so every bad input gets INVALID_ARGUMENT with
the reason before anything runs. Execution calls the restored signature's concrete
function directly with numpy inputs.
"""

from __future__ import annotations

import logging
from typing import Mapping, Sequence

import grpc
import numpy as np

from serving import contract, tensor_codec
from serving.errors import ServingError, invalid

log = logging.getLogger(__name__)


def _fmt_set(names) -> str:
    return "{" + ",".join(sorted(names)) + "}"


def _shape_str(shape) -> str:
    return "[" + ",".join(str(d) for d in shape) + "]"


class TensorSpecInfo:
    __slots__ = ("name", "dtype", "np_dtype", "shape", "rank", "tf_dtype")

    def __init__(self, name: str, tensor_info):
        self.name = name
        self.dtype = tensor_info.dtype
        self.np_dtype = tensor_codec.numpy_dtype(self.dtype) if self.dtype else None
        if tensor_info.tensor_shape.unknown_rank:
            self.shape = None
            self.rank = None
        else:
            self.shape = tuple(int(d.size) for d in tensor_info.tensor_shape.dim)  # -1: unknown
            self.rank = len(self.shape)

    @property
    def batched(self) -> bool:
        return self.rank is not None and self.rank >= 1 and self.shape[0] == -1


class Signature:
    """A signature of a loaded version: ``run(inputs) -> outputs`` on numpy arrays."""

    def __init__(self, name: str, signature_def, fn):
        self.name = name
        self.signature_def = signature_def
        self.method_name = signature_def.method_name
        self.fn = fn
        self.inputs = {k: TensorSpecInfo(k, v) for k, v in signature_def.inputs.items()}
        self.outputs = {k: TensorSpecInfo(k, v) for k, v in signature_def.outputs.items()}
        self.input_order = sorted(self.inputs)
        self.output_names = tuple(sorted(self.outputs))
        self._flat = _flat_call_plan(fn, self.inputs)
        # Server-side batching needs every input and output batched along dim 0.
        self.batchable = bool(self.inputs) and all(s.batched for s in self.inputs.values()) and all(
            s.batched for s in self.outputs.values())
        self._input_set = frozenset(self.inputs)
        # The contract's tf.Example input (one DT_STRING [batch] input named "examples"):
        # RequestPolicy checks each example's feature lengths.
        spec = self.inputs.get(contract.EXAMPLES_INPUT)
        self.example_input = contract.EXAMPLES_INPUT if (
            spec is not None and len(self.inputs) == 1 and spec.dtype == tensor_codec.DT.DT_STRING
            and spec.rank == 1) else None

    # --- validation (transport-independent) ----------------------------------------------
    def check_input_names(self, names: Sequence[str]) -> None:
        names = set(names)
        if names == self._input_set:
            return
        for n in sorted(names):
            if n not in self._input_set:
                raise invalid(
                    f"input tensor alias not found in signature: {n}. Inputs expected to be in "
                    f"the set {_fmt_set(self.inputs)}.")
        missing = self._input_set - names
        raise invalid(
            f"input size does not match signature: {len(names)}!={len(self.inputs)} "
            f"len({_fmt_set(names)}) != len({_fmt_set(self.inputs)}). Sent extra: {{}}. "
            f"Missing but required: {_fmt_set(missing)}.")

    def check_output_filter(self, output_filter: Sequence[str]) -> tuple[str, ...]:
        if not output_filter:
            return self.output_names
        seen = set()
        for name in output_filter:
            if name not in self.outputs:
                raise invalid(
                    f"output tensor alias not found in signature: {name} Outputs expected to be "
                    f"in the set {_fmt_set(self.outputs)}.")
            if name in seen:
                raise invalid(f"duplicate output tensor alias: {name}")
            seen.add(name)
        return tuple(output_filter)

    def check_input(self, name: str, arr: np.ndarray, dtype_enum: int) -> None:
        spec = self.inputs[name]
        if dtype_enum != spec.dtype:
            raise invalid(
                f"Expects arg[{self.input_order.index(name)}] ({name!r}) to be "
                f"{tensor_codec.dtype_name(spec.dtype)} but {tensor_codec.dtype_name(dtype_enum)} "
                f"is provided")
        if spec.shape is None:
            return
        shape = arr.shape
        if len(shape) != spec.rank or any(
                want != -1 and want != got for want, got in zip(spec.shape, shape)):
            raise invalid(
                f"input {name!r} has shape {_shape_str(shape)}, which is incompatible with the "
                f"signature's {_shape_str(spec.shape)} (-1: any size)")

    def batch_size(self, inputs: Mapping[str, np.ndarray]) -> int | None:
        """The common dim-0 size of the batched inputs (INVALID_ARGUMENT if they differ)."""
        size = None
        for name, arr in inputs.items():
            if not self.inputs[name].batched:
                return None
            b = arr.shape[0]
            if size is None:
                size = b
            elif b != size:
                sizes = ", ".join(f"{n}: {a.shape[0]}" for n, a in sorted(inputs.items()))
                raise invalid(f"inputs have different batch sizes (dimension 0): {sizes}")
        return size

    # --- execution -----------------------------------------------------------------------
    def run(self, inputs: Mapping[str, np.ndarray], output_names: Sequence[str]) -> dict:
        """Runs the signature; ``inputs`` already validated. Returns name -> numpy array."""
        if inputs and self.batchable and self.batch_size(inputs) == 0:
            return self.empty_outputs(output_names)
        try:
            flat = self._flat
            if flat is not None:
                # Same as fn(**inputs) minus the per-call structured-signature binding
                # (~0.1-0.2 ms): positional tensors in the function's flat order.
                import tensorflow as tf

                order, np_dtypes, tf_dtypes = flat
                tensors = []
                for n, npd, tfd in zip(order, np_dtypes, tf_dtypes):
                    a = inputs[n]
                    # tf.constant is fastest without a dtype when numpy's already matches.
                    tensors.append(tf.constant(a) if a.dtype == npd else tf.constant(a, dtype=tfd))
                result = self.fn._call_flat(tensors, self.fn.captured_inputs)
            else:
                result = self.fn(**inputs)
        except ServingError:
            raise
        except UnicodeDecodeError:
            # TF could not decode its own error message, which quotes the offending bytes
            # (ParseExample on corrupt tf.Example input does that).
            raise _diagnose_binary_error(inputs) from None
        except Exception as e:  # noqa: BLE001 - every model error is answered, never raised
            raise model_error(e) from None
        return {name: result[name].numpy() for name in output_names}

    def empty_outputs(self, output_names: Sequence[str]) -> dict:
        """Outputs of an empty batch, shaped from the signature (unknown dims -> 0)."""
        out = {}
        for name in output_names:
            spec = self.outputs[name]
            shape = tuple(max(d, 0) for d in (spec.shape or (0,)))
            shape = (0, *shape[1:]) if shape else (0,)
            out[name] = np.empty(shape, dtype=spec.np_dtype or np.float32)
        return out


def _flat_call_plan(fn, inputs: Mapping[str, TensorSpecInfo]):
    """(flat input order, tf dtypes) when fn's flat calling convention is known to match
    the signature (checked three ways), else None (the public keyword call is used).
    Set INTENTREC_SERVING_FLAT_CALL=0 to always use the public call."""
    import os

    if os.environ.get("INTENTREC_SERVING_FLAT_CALL", "1") == "0":
        return None
    try:
        import tensorflow as tf

        params = list(fn.function_type.parameters)
        keywords = list(fn._arg_keywords)
        placeholders = [t.name.split(":")[0] for t in fn.inputs[: len(params)]]
        if not (params == keywords == placeholders and set(params) == set(inputs)
                and callable(getattr(fn, "_call_flat", None))):
            return None
        tf_dtypes, np_dtypes = [], []
        for name, ph in zip(params, fn.inputs):
            want = tf.dtypes.as_dtype(inputs[name].dtype) if inputs[name].dtype else None
            if want is None or ph.dtype != want or inputs[name].np_dtype is None:
                return None
            tf_dtypes.append(want)
            np_dtypes.append(inputs[name].np_dtype)
        return params, np_dtypes, tf_dtypes
    except Exception:  # noqa: BLE001 - any surprise: use the public call
        return None


def _diagnose_binary_error(inputs: Mapping[str, np.ndarray]) -> ServingError:
    from google.protobuf.message import DecodeError
    from tensorflow.core.example import example_pb2

    for name, arr in inputs.items():
        if arr.dtype != object:
            continue
        for i, value in enumerate(arr.ravel()):
            try:
                example_pb2.Example.FromString(value)
            except (DecodeError, TypeError):
                return invalid(f"Could not parse example input {name!r}[{i}]: not a serialized "
                               f"tf.train.Example")
    return invalid("The model rejected the input; its error message quoted binary data that is "
                   "not UTF-8")


def model_error(e: Exception) -> ServingError:
    """Maps an exception raised while running the model to a ServingError."""
    import tensorflow as tf
    from serving.errors import code_from_int

    if isinstance(e, tf.errors.OpError):
        code = code_from_int(e.error_code)
        if code in (grpc.StatusCode.OK, grpc.StatusCode.UNKNOWN):
            code = grpc.StatusCode.INTERNAL
        return ServingError(code, _first_line(e.message))
    if isinstance(e, (TypeError, ValueError)):
        return invalid(_first_line(str(e)))
    log.exception("model raised an unexpected error")
    return ServingError(grpc.StatusCode.INTERNAL, f"{type(e).__name__}: {_first_line(str(e))}")


def _first_line(msg: str, limit: int = 2000) -> str:
    # TF messages carry long graph-node tracebacks; keep the reason.
    msg = msg.strip()
    for marker in ("\n\t [[", "\n\n\t [["):
        idx = msg.find(marker)
        if idx > 0:
            msg = msg[:idx]
    return msg[:limit]
