"""Fast TensorProto <-> numpy conversion for the request path.

`tf.make_tensor_proto` / `tf.make_ndarray` are general but slow (per-element Python work,
especially for DT_STRING); this module does the common dtypes with one numpy/protobuf
bulk call each: numeric tensors go through ``tensor_content`` (what TF Serving emits),
strings through ``string_val.extend``. Decoding accepts every encoding TF accepts:
``tensor_content``, the typed ``*_val`` fields, and fewer values than elements (the last
value repeats; none -> zeros), like ``Tensor::FromProto``. Strings decode to numpy
object arrays of ``bytes``.
"""

from __future__ import annotations

import grpc
import numpy as np
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2

from serving.errors import ServingError, invalid

DT = types_pb2

# dtype enum -> (numpy dtype, repeated field name)
_NUMERIC = {
    DT.DT_FLOAT: (np.dtype(np.float32), "float_val"),
    DT.DT_DOUBLE: (np.dtype(np.float64), "double_val"),
    DT.DT_INT32: (np.dtype(np.int32), "int_val"),
    DT.DT_INT16: (np.dtype(np.int16), "int_val"),
    DT.DT_INT8: (np.dtype(np.int8), "int_val"),
    DT.DT_UINT8: (np.dtype(np.uint8), "int_val"),
    DT.DT_UINT16: (np.dtype(np.uint16), "int_val"),
    DT.DT_INT64: (np.dtype(np.int64), "int64_val"),
    DT.DT_UINT32: (np.dtype(np.uint32), "uint32_val"),
    DT.DT_UINT64: (np.dtype(np.uint64), "uint64_val"),
    DT.DT_BOOL: (np.dtype(np.bool_), "bool_val"),
    DT.DT_HALF: (np.dtype(np.float16), "half_val"),
}
_NP_TO_DT = {np_dtype: enum for enum, (np_dtype, _) in _NUMERIC.items()}
_NP_TO_DT[np.dtype(object)] = DT.DT_STRING

# Decoding a tensor whose values expand (fewer values than elements) past this many bytes
# is refused: a few bytes of request must not allocate gigabytes.
DEFAULT_MAX_EXPANDED_BYTES = 1 << 28

_Dim = tensor_shape_pb2.TensorShapeProto.Dim


def dtype_name(enum: int) -> str:
    try:
        return DT.DataType.Name(enum)
    except ValueError:
        return f"DataType({enum})"


def numpy_dtype(enum: int) -> np.dtype:
    if enum == DT.DT_STRING:
        return np.dtype(object)
    try:
        return _NUMERIC[enum][0]
    except KeyError:
        raise invalid(f"unsupported tensor dtype {dtype_name(enum)}") from None


def dtype_enum(np_dtype) -> int:
    np_dtype = np.dtype(np_dtype)
    if np_dtype.kind in "SU":
        return DT.DT_STRING
    try:
        return _NP_TO_DT[np_dtype]
    except KeyError:
        raise invalid(f"unsupported numpy dtype {np_dtype}") from None


def proto_shape(tp: tensor_pb2.TensorProto) -> tuple[int, ...]:
    ts = tp.tensor_shape
    if ts.unknown_rank:
        raise invalid("tensor parsing error: tensor shape has unknown rank")
    shape = tuple(d.size for d in ts.dim)
    for d in shape:
        if d < 0:
            raise invalid(f"tensor parsing error: negative dimension in shape {list(shape)}")
    return shape


def proto_to_ndarray(tp: tensor_pb2.TensorProto, *, name: str = "",
                     max_expanded_bytes: int = DEFAULT_MAX_EXPANDED_BYTES) -> np.ndarray:
    """Decodes a TensorProto; raises ServingError(INVALID_ARGUMENT) when malformed."""
    shape = proto_shape(tp)
    n = 1
    for d in shape:
        n *= d
    what = f" for input {name!r}" if name else ""
    enum = tp.dtype
    if enum == DT.DT_STRING:
        vals = tp.string_val
        m = len(vals)
        if m == n:
            arr = np.empty(n, dtype=object)
            if n:
                arr[:] = list(vals)
            return arr.reshape(shape)
        if m > n:
            raise invalid(f"tensor parsing error{what}: {m} string values for shape {list(shape)}")
        _check_expand(n, 8, max_expanded_bytes, what)
        arr = np.empty(n, dtype=object)
        arr[:m] = list(vals)
        arr[m:] = vals[-1] if m else b""
        return arr.reshape(shape)
    if enum not in _NUMERIC:
        raise invalid(f"tensor parsing error{what}: unsupported dtype {dtype_name(enum)}")
    np_dtype, field = _NUMERIC[enum]
    content = tp.tensor_content
    if content:
        if len(content) != n * np_dtype.itemsize:
            raise invalid(
                f"tensor parsing error{what}: tensor_content has {len(content)} bytes, "
                f"shape {list(shape)} of {dtype_name(enum)} needs {n * np_dtype.itemsize}")
        return np.frombuffer(content, dtype=np_dtype).reshape(shape)
    vals = getattr(tp, field)
    m = len(vals)
    if m > n:
        raise invalid(f"tensor parsing error{what}: {m} values for shape {list(shape)}")
    if enum == DT.DT_HALF:
        flat = np.array(vals, dtype=np.uint16).view(np.float16)
    else:
        try:
            flat = np.array(vals, dtype=np_dtype)
        except (OverflowError, ValueError) as e:
            raise invalid(f"tensor parsing error{what}: {e}") from None
    if m == n:
        return flat.reshape(shape)
    _check_expand(n, np_dtype.itemsize, max_expanded_bytes, what)
    out = np.empty(n, dtype=np_dtype)
    out[:m] = flat
    out[m:] = flat[-1] if m else 0
    return out.reshape(shape)


def _check_expand(n: int, itemsize: int, limit: int, what: str):
    if n * itemsize > limit:
        raise ServingError(
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            f"tensor{what} expands to {n} elements ({n * itemsize} bytes), over the limit of "
            f"{limit} bytes")


def ndarray_to_proto(arr, dtype: int | None = None,
                     out: tensor_pb2.TensorProto | None = None) -> tensor_pb2.TensorProto:
    """Encodes a numpy array (or TF eager tensor's .numpy()) as TF Serving does.

    ``dtype``: the DataType enum, when the numpy dtype is ambiguous (object -> DT_STRING).
    ``out``: a TensorProto to fill (e.g. ``response.outputs[name]``) instead of a new one.
    """
    arr = np.asarray(arr)
    tp = tensor_pb2.TensorProto() if out is None else out
    enum = dtype if dtype is not None else dtype_enum(arr.dtype)
    tp.dtype = enum
    if arr.ndim:
        dims = tp.tensor_shape.dim
        for d in arr.shape:  # add() is a third faster than extend() of new Dim messages
            dims.add(size=d)
    if enum == DT.DT_STRING:
        flat = arr.ravel().tolist()
        try:
            tp.string_val.extend(flat)
        except TypeError:  # str (or other) elements: encode them as UTF-8
            del tp.string_val[:]
            tp.string_val.extend(
                [v if isinstance(v, bytes) else str(v).encode("utf-8") for v in flat])
    else:
        np_dtype = _NUMERIC[enum][0]
        if arr.dtype != np_dtype:
            arr = arr.astype(np_dtype)
        tp.tensor_content = arr.tobytes()
    return tp
