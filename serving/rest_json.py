"""JSON <-> numpy for TF Serving's REST predict API (tensorflow_serving/util/json_tensor.cc).

Request bodies: ``{"signature_name": ..., "instances": [...]}`` (row format: one entry per
example; an object of named inputs, or a bare value when the signature has one input)
or ``{"inputs": ...}`` (columnar: an object of named inputs, or a bare value). Binary
strings are ``{"b64": "<base64>"}``. Responses: ``{"predictions": [...]}`` for row
format (bare values with one output, else one object per row), ``{"outputs": ...}`` for
columnar; string outputs whose name ends in ``_bytes`` come back as ``{"b64": ...}``.

Values are typed strictly, as TF Serving's rapidjson converter does: a float input takes
JSON numbers only (not ``null``, ``"1.5"`` or ``true``, which numpy would quietly turn
into NaN, 1.5 and 1.0), an integer input takes integral numbers in its range, a bool
input ``true``/``false``, a string input strings or ``{"b64": ...}``. Every mistake is
INVALID_ARGUMENT with TF Serving's wording plus the element and input it concerns.
"""

from __future__ import annotations

import base64
import binascii
import json

import grpc
import numpy as np

from serving import tensor_codec
from serving.errors import ServingError, invalid

DT = tensor_codec.DT
MAX_DEPTH = 64  # nesting of one tensor value; deeper is refused before any recursion

_FLOATS = {DT.DT_FLOAT: (np.float32, 2 ** 24 - 1), DT.DT_DOUBLE: (np.float64, 2 ** 53 - 1),
           DT.DT_HALF: (np.float16, 2 ** 11 - 1)}
_TF_NAMES = {DT.DT_FLOAT: "float", DT.DT_DOUBLE: "double", DT.DT_HALF: "half", DT.DT_INT8: "int8",
             DT.DT_INT16: "int16", DT.DT_INT32: "int32", DT.DT_INT64: "int64", DT.DT_UINT8: "uint8",
             DT.DT_UINT16: "uint16", DT.DT_UINT32: "uint32", DT.DT_UINT64: "uint64",
             DT.DT_BOOL: "bool", DT.DT_STRING: "string"}


def _json_type(v) -> str:
    if v is None:
        return "Null"
    if v is True:
        return "True"
    if v is False:
        return "False"
    if isinstance(v, (int, float)):
        return "Number"
    if isinstance(v, str):
        return "String"
    return "Object" if isinstance(v, dict) else "Array"


def _type_error(v, dtype: int) -> ServingError:
    shown = json.dumps(v, ensure_ascii=False)
    shown = shown if len(shown) <= 100 else shown[:100] + "..."
    return invalid(f"JSON Value: {shown} Type: {_json_type(v)} is not of expected type: "
                   f"{_TF_NAMES.get(dtype, tensor_codec.dtype_name(dtype))}")


def _flatten(value) -> tuple[list, tuple[int, ...]]:
    """(leaves, shape) of a rectangular nested list; INVALID_ARGUMENT when ragged or too deep."""
    shape = []
    probe = value
    while isinstance(probe, list):
        shape.append(len(probe))
        if len(shape) > MAX_DEPTH:
            raise invalid(f"JSON value nested deeper than {MAX_DEPTH} levels")
        if not probe:
            break
        probe = probe[0]
    level = [value]
    for depth, size in enumerate(shape):
        nxt = []
        for item in level:
            if not isinstance(item, list) or len(item) != size:
                got = f"size: {len(item)}" if isinstance(item, list) else f"a {_json_type(item)}"
                raise invalid(f"Encountered list at unexpected {got} at level: {depth} expected "
                              f"size: {size} (a tensor's lists must all have the same shape)")
            nxt.extend(item)
        level = nxt
    for leaf in level:
        if isinstance(leaf, list):
            raise invalid(f"Encountered list at unexpected level: {len(shape)} expected < {len(shape)}")
    return level, tuple(shape)


def _b64(v) -> bytes:
    try:
        return base64.b64decode(v["b64"], validate=True)
    except (binascii.Error, ValueError, TypeError):
        raise invalid("Unable to base64 decode") from None


def json_to_array(value, spec) -> np.ndarray:
    """A JSON value -> numpy array of the signature input's dtype (strictly typed)."""
    dtype = spec.dtype
    leaves, shape = _flatten(value)
    if dtype == DT.DT_STRING:
        out = np.empty(len(leaves), dtype=object)
        for i, v in enumerate(leaves):
            if isinstance(v, str):
                out[i] = v.encode("utf-8")
            elif isinstance(v, dict) and len(v) == 1 and isinstance(v.get("b64"), str):
                out[i] = _b64(v)
            else:
                raise _type_error(v, dtype)
        return out.reshape(shape)
    if dtype == DT.DT_BOOL:
        for v in leaves:
            if not isinstance(v, bool):
                raise _type_error(v, dtype)
        return np.array(leaves, dtype=np.bool_).reshape(shape)
    if dtype in _FLOATS:
        np_dtype, max_int = _FLOATS[dtype]
        for v in leaves:
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise _type_error(v, dtype)
            if isinstance(v, int) and abs(v) > max_int:
                raise invalid(f"Cannot convert JSON value: {v} to {_TF_NAMES[dtype]} without loss of "
                              f"precision.")
        arr = np.array(leaves, dtype=np.float64)
        limit = np.finfo(np_dtype).max
        bad = np.isfinite(arr) & (np.abs(arr) > limit)
        if bad.any():
            raise invalid(f"Cannot convert JSON value: {arr[bad][0]!r} to {_TF_NAMES[dtype]} without "
                          f"loss of precision.")
        return arr.astype(np_dtype).reshape(shape)
    np_dtype = tensor_codec.numpy_dtype(dtype)
    if np_dtype.kind not in "iu":
        raise ServingError(grpc.StatusCode.UNIMPLEMENTED,
                           f"Conversion of JSON values to type: {tensor_codec.dtype_name(dtype)}")
    info = np.iinfo(np_dtype)
    for v in leaves:
        if isinstance(v, bool) or not isinstance(v, int) or not info.min <= v <= info.max:
            error = _type_error(v, dtype)
            raise invalid(f"{error.message} (integers in [{info.min}, {info.max}])")
    return np.array(leaves, dtype=np_dtype).reshape(shape)


def _empty_input(spec) -> np.ndarray:
    dims = tuple(max(d, 0) for d in (spec.shape or (0,))[1:])
    return np.empty((0, *dims), dtype=spec.np_dtype or np.float32)


def _is_b64(v) -> bool:
    return isinstance(v, dict) and len(v) == 1 and isinstance(v.get("b64"), str)


def parse_predict_body(body: dict, sig):
    """(inputs, dtypes, row_format) of a :predict body against a Signature."""
    specs = sig.inputs
    if not specs:
        raise invalid(f"Failed to get input map for signature: {sig.name or 'DEFAULT'}")
    has_inst, has_inputs = "instances" in body, "inputs" in body
    if has_inst and has_inputs:
        raise invalid("Not formatted correctly expecting only one of 'inputs' or 'instances' keys to exist")
    if not (has_inst or has_inputs):
        raise invalid("Missing 'inputs' or 'instances' key")
    inputs = {}
    if has_inst:
        instances = body["instances"]
        if not isinstance(instances, list):
            raise invalid("Excepting 'instances' to be an list/array")
        if not instances:
            raise invalid("No values in 'instances' array")
        named = isinstance(instances[0], dict) and not _is_b64(instances[0])
        if not named and len(specs) > 1:
            raise invalid(f"instances is a plain list, but expecting list of objects as multiple input "
                          f"tensors required as per tensorinfo_map ({', '.join(sorted(specs))})")
        names = sorted(specs)
        for i, inst in enumerate(instances):
            is_obj = isinstance(inst, dict) and not _is_b64(inst)
            if is_obj != named:
                raise invalid(f"Expecting {'object' if named else 'value/list'} but got "
                              f"{'object' if is_obj else 'list'} at item {i} of input list")
            if named and sorted(inst) != names:
                raise invalid(f"Failed to process element: {i} of 'instances' list. JSON object: "
                              f"{json.dumps(inst)[:200]} keys must be equal to: {','.join(names)}")
        for name in names:
            column = [inst[name] for inst in instances] if named else instances
            try:
                inputs[name] = json_to_array(column, specs[name])
            except ServingError as e:
                raise _locate(e, instances, name if named else None, specs[name]) from None
    else:
        cols = body["inputs"]
        if isinstance(cols, dict) and not _is_b64(cols):
            for name in sorted(specs):
                if name not in cols:
                    raise invalid(f"Missing named input: {name} in 'inputs' object.")
            extra = sorted(set(cols) - set(specs))
            if extra:
                sig.check_input_names(list(cols))
            for name in sorted(specs):
                try:
                    inputs[name] = json_to_array(cols[name], specs[name])
                except ServingError as e:
                    raise invalid(f"'inputs' key: {name}. Error: {e.message}") from None
        else:
            if len(specs) > 1:
                raise invalid(f"inputs is a plain value/list, but expecting an object as multiple input "
                              f"tensors required as per tensorinfo_map ({', '.join(sorted(specs))})")
            (name, spec), = specs.items()
            inputs[name] = json_to_array(cols, spec)
    return inputs, {n: specs[n].dtype for n in inputs}, has_inst


def _locate(error: ServingError, instances: list, name: str | None, spec) -> ServingError:
    """The row-format error with the element it comes from, in TF Serving's wording."""
    for i, inst in enumerate(instances):
        try:
            json_to_array([inst[name] if name is not None else inst], spec)
        except ServingError as e:
            key = f" key: {name}" if name is not None else ""
            return invalid(f"Failed to process element: {i}{key} of 'instances' list. Error: {e.message}")
    key = f" key: {name}" if name is not None else ""
    return invalid(f"Failed to process 'instances'{key}: {error.message}")


# --- numpy -> JSON ---------------------------------------------------------------------------
def _bytes_to_json(b: bytes, as_b64: bool):
    if as_b64:
        return {"b64": base64.b64encode(b).decode("ascii")}
    return b.decode("utf-8", errors="replace")


def array_to_json(name: str, arr: np.ndarray):
    if arr.dtype == object:
        as_b64 = name.endswith("_bytes")

        def conv(v):
            if isinstance(v, list):
                return [conv(x) for x in v]
            return _bytes_to_json(v, as_b64)

        return conv(arr.tolist())
    if arr.dtype == np.float16:
        arr = arr.astype(np.float32)
    return arr.tolist()


def format_predictions(outputs: dict, row_format: bool):
    if not row_format:
        if len(outputs) == 1:
            ((name, arr),) = outputs.items()
            return {"outputs": array_to_json(name, arr)}
        return {"outputs": {n: array_to_json(n, a) for n, a in outputs.items()}}
    sizes = {n: (a.shape[0] if a.ndim else None) for n, a in outputs.items()}
    distinct = set(sizes.values())
    if None in distinct or len(distinct) > 1:
        raise invalid(
            "Tensor outputs have inconsistent batch sizes (dimension 0) for the row format "
            f"{sizes}; use the columnar format ('inputs')")
    if len(outputs) == 1:
        ((name, arr),) = outputs.items()
        return {"predictions": array_to_json(name, arr)}
    cols = {n: array_to_json(n, a) for n, a in outputs.items()}
    rows = distinct.pop()
    return {"predictions": [{n: cols[n][i] for n in cols} for i in range(rows)]}
