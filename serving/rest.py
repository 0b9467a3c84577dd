"""TF Serving's REST API (https://www.tensorflow.org/tfx/serving/api_rest) over ServingCore.

    GET  /v1/models/<name>[/versions/<v>]            -> GetModelStatus as JSON
    GET  /v1/models/<name>[/versions/<v>]/metadata   -> GetModelMetadata (signature_def)
    POST /v1/models/<name>[/versions/<v>]:predict    -> Predict

Request bodies: ``{"signature_name": ..., "instances": [...]}`` (row format: one entry per
example; an object of named inputs, or a bare value when the signature has one input)
or ``{"inputs": ...}`` (columnar: an object of named inputs, or a bare value). Binary
strings are ``{"b64": "<base64>"}``. Responses: ``{"predictions": [...]}`` for row
format (bare values with one output, else one object per row), ``{"outputs": ...}`` for
columnar; string outputs whose name ends in ``_bytes`` come back as ``{"b64": ...}``.
Errors: ``{"error": "<message>"}`` with TF Serving's HTTP status for the gRPC code.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
import numpy as np
from google.protobuf import json_format

from serving import tensor_codec
from serving.core import ServingCore
from serving.errors import ServingError, invalid

log = logging.getLogger(__name__)

_PATH_RE = re.compile(
    r"^/v1/models/(?P<name>[^/:]+)"
    r"(?:/versions/(?P<version>-?\d+)|/labels/(?P<label>[^/:]+))?"
    r"(?P<suffix>/metadata|:predict|:classify|:regress)?/?$"
)


# --- JSON -> numpy ---------------------------------------------------------------------------
def _decode_strings(value):
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, dict):
        if set(value) == {"b64"} and isinstance(value["b64"], str):
            try:
                return base64.b64decode(value["b64"], validate=True)
            except (ValueError, TypeError) as e:
                raise invalid(f"Unable to base64 decode: {e}") from None
        raise invalid(f"Expected a string or {{\"b64\": ...}} object, got an object with keys "
                      f"{sorted(value)}")
    if isinstance(value, list):
        return [_decode_strings(v) for v in value]
    raise invalid(f"Expected a string value for a DT_STRING input, got {type(value).__name__}: "
                  f"{str(value)[:50]}")


def json_to_array(value, spec, what: str) -> np.ndarray:
    """A JSON value -> numpy array of the signature input's dtype."""
    if spec.dtype == tensor_codec.DT.DT_STRING:
        nested = _decode_strings(value)
        try:
            arr = np.array(nested, dtype=object)
        except ValueError as e:
            raise invalid(f"{what}: {e}") from None
        if arr.size and not all(isinstance(v, bytes) for v in arr.flat):
            raise invalid(f"{what}: Expecting tensors of the same shape (ragged list)")
        return arr
    np_dtype = spec.np_dtype
    try:
        if np_dtype.kind in "iu" and _has_float(value):
            raise invalid(f"{what}: expected integers for {tensor_codec.dtype_name(spec.dtype)}")
        return np.array(value, dtype=np_dtype)
    except ServingError:
        raise
    except (ValueError, TypeError, OverflowError) as e:
        raise invalid(f"{what}: cannot convert to {tensor_codec.dtype_name(spec.dtype)}: {e}") from None


def _has_float(value) -> bool:
    if isinstance(value, float):
        return not value.is_integer()
    if isinstance(value, list):
        return any(_has_float(v) for v in value)
    return False


def _empty_input(spec) -> np.ndarray:
    dims = tuple(max(d, 0) for d in (spec.shape or (0,))[1:])
    return np.empty((0, *dims), dtype=spec.np_dtype or np.float32)


def parse_predict_body(body: dict, sig):
    """(inputs, dtypes, row_format) for a :predict body against a Signature."""
    if not isinstance(body, dict):
        raise invalid("Request body must be a JSON object")
    has_inst, has_inputs = "instances" in body, "inputs" in body
    if has_inst == has_inputs:
        raise invalid("Missing 'inputs' or 'instances' key" if not has_inst
                      else "Both 'instances' and 'inputs' specified in the request")
    specs = sig.inputs
    inputs = {}
    if has_inst:
        instances = body["instances"]
        if not isinstance(instances, list):
            raise invalid("'instances' must be a JSON list")
        named = bool(instances) and all(isinstance(i, dict) for i in instances) and not (
            len(specs) == 1 and all(set(i) == {"b64"} for i in instances))
        if named:
            keys = set(instances[0])
            for i, inst in enumerate(instances):
                if set(inst) != keys:
                    raise invalid(f"Failed to process element: {i} of 'instances' list. JSON object: "
                                  f"{json.dumps(inst)[:200]} keys {sorted(inst)} differ from element 0's "
                                  f"{sorted(keys)}")
            sig.check_input_names(list(keys))
            for name in keys:
                inputs[name] = json_to_array([inst[name] for inst in instances], specs[name],
                                             f"instances, input {name!r}")
        else:
            if len(specs) != 1:
                raise invalid(
                    f"'instances' entries must be JSON objects with the named inputs "
                    f"{sorted(specs)} (the signature has {len(specs)} inputs)")
            (name, spec), = specs.items()
            inputs[name] = (json_to_array(instances, spec, f"instances, input {name!r}")
                            if instances else _empty_input(spec))
        if not instances:
            for name, spec in specs.items():
                inputs.setdefault(name, _empty_input(spec))
    else:
        cols = body["inputs"]
        if isinstance(cols, dict) and not (len(specs) == 1 and set(cols) == {"b64"}):
            sig.check_input_names(list(cols))
            for name, value in cols.items():
                inputs[name] = json_to_array(value, specs[name], f"inputs, input {name!r}")
        else:
            if len(specs) != 1:
                raise invalid(f"'inputs' must be a JSON object with the named inputs {sorted(specs)}")
            (name, spec), = specs.items()
            inputs[name] = json_to_array(cols, spec, f"inputs, input {name!r}")
    dtypes = {n: specs[n].dtype for n in inputs}
    return inputs, dtypes, has_inst


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


# --- HTTP server -----------------------------------------------------------------------------
class RestServer:
    def __init__(self, core: ServingCore, host: str, port: int, *, max_body_bytes: int):
        self.core = core
        self.max_body_bytes = max_body_bytes
        self.shutting_down = False
        handler = type("Handler", (_Handler,), {"rest": self})
        self.httpd = (_HTTPServer6 if ":" in host else _HTTPServer)((host.strip("[]"), port), handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="rest",
                                        kwargs={"poll_interval": 0.2}, daemon=True)

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        """Stops accepting connections (in-flight requests finish; see ServingCore.wait_idle)."""
        self.shutting_down = True
        self.httpd.shutdown()
        self.httpd.server_close()


class _HTTPServer(ThreadingHTTPServer):
    request_queue_size = 1024  # listen backlog (socketserver's default of 5 drops bursts)
    daemon_threads = True


class _HTTPServer6(_HTTPServer):
    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "IntentRecModelServer/1"
    wbufsize = 1 << 16  # flushed once per request by handle_one_request
    timeout = 120  # seconds a connection may sit idle (or trickle a request) before it is closed
    rest: RestServer

    def setup(self):
        super().setup()
        # One write per response and no Nagle delay (else delayed ACKs add ~40 ms).
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, fmt, *args):  # quiet; errors are logged explicitly
        log.debug("%s - " + fmt, self.address_string(), *args)

    def _send(self, status: int, obj):
        data = json.dumps(obj, ensure_ascii=False).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if self.rest.shutting_down:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(data)  # buffered (wbufsize): headers and body leave in one send

    def _error(self, status: int, message: str):
        self._send(status, {"error": message})

    def _route(self):
        m = _PATH_RE.match(self.path.split("?", 1)[0])
        if not m:
            raise ServingError(grpc.StatusCode.NOT_FOUND, f"Malformed request: {self.command} {self.path}")
        version = int(m["version"]) if m["version"] is not None else None
        return m["name"], version, m["label"] or "", m["suffix"] or ""

    def _handle(self, fn):
        try:
            if self.rest.shutting_down:
                raise ServingError(grpc.StatusCode.UNAVAILABLE, "Server is shutting down")
            fn()
        except ServingError as e:
            self._error(e.http_status, e.message)
        except Exception as e:  # noqa: BLE001 - never let a request kill the server
            log.exception("REST request failed")
            self._error(500, f"{type(e).__name__}: {e}")

    def do_GET(self):
        self._handle(self._get)

    def do_POST(self):
        self._handle(self._post)

    def _get(self):
        name, version, label, suffix = self._route()
        core = self.rest.core
        if label:
            raise invalid(f"Unrecognized servable version label: {label}")
        if suffix == "":
            resp = core.status_for(name, version)
            self._send(200, json_format.MessageToDict(
                resp, preserving_proto_field_name=True, including_default_value_fields=True))
        elif suffix == "/metadata":
            from tensorflow_serving.apis import get_model_metadata_pb2

            req = get_model_metadata_pb2.GetModelMetadataRequest()
            req.model_spec.name = name
            if version is not None:
                req.model_spec.version.value = version
            req.metadata_field.append("signature_def")
            resp = core.metadata(req)
            sdm = get_model_metadata_pb2.SignatureDefMap()
            resp.metadata["signature_def"].Unpack(sdm)
            self._send(200, {
                "model_spec": {"name": name, "signature_name": "",
                               "version": str(resp.model_spec.version.value)},
                "metadata": {"signature_def": json_format.MessageToDict(
                    sdm, preserving_proto_field_name=True)},
            })
        else:
            raise ServingError(grpc.StatusCode.NOT_FOUND, f"Malformed request: GET {self.path}")

    def _read_body(self) -> bytes:
        length = self.headers.get("Content-Length")
        if length is None:
            raise invalid("Missing Content-Length")
        try:
            n = int(length)
        except ValueError:
            raise invalid("Bad Content-Length") from None
        if n > self.rest.max_body_bytes:
            self.close_connection = True  # the body is not read
            raise ServingError(grpc.StatusCode.RESOURCE_EXHAUSTED,
                               f"Request body of {n} bytes exceeds the limit of "
                               f"{self.rest.max_body_bytes} bytes", http=413)
        return self.rfile.read(n)

    def _post(self):
        name, version, label, suffix = self._route()
        body_bytes = self._read_body()
        if suffix != ":predict":
            if suffix in (":classify", ":regress"):
                raise ServingError(grpc.StatusCode.UNIMPLEMENTED,
                                   f"{suffix[1:]} is not implemented by this server; use :predict")
            raise ServingError(grpc.StatusCode.NOT_FOUND, f"Malformed request: POST {self.path}")
        try:
            body = json.loads(body_bytes)
        except (ValueError, UnicodeDecodeError) as e:
            raise invalid(f"JSON Parse error: {e}") from None
        if not isinstance(body, dict):
            raise invalid("Request body must be a JSON object")
        sig_name = body.get("signature_name", "")
        if not isinstance(sig_name, str):
            raise invalid("'signature_name' must be a string")
        row_format = []

        def build(sig):
            inputs, dtypes, row = parse_predict_body(body, sig)
            row_format.append(row)
            return inputs, dtypes

        result = self.rest.core.predict_arrays(name, version, sig_name, build, label=label)
        self._send(200, format_predictions(result.outputs, row_format[0]))
