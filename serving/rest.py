"""TF Serving's REST API (https://www.tensorflow.org/tfx/serving/api_rest) over ServingCore.

    GET  /v1/models/<name>[/versions/<v> | /labels/<l>]            -> GetModelStatus as JSON
    GET  /v1/models/<name>[/versions/<v> | /labels/<l>]/metadata   -> GetModelMetadata
    POST /v1/models/<name>[/versions/<v> | /labels/<l>]:predict    -> Predict

Routing follows tensorflow_serving/model_servers/http_rest_api_util.cc: paths match
case-insensitively, model names and labels are URL-decoded, a /v1/ path that matches no
route (or a method other than GET/POST) is 400 "Malformed request: <method> <path>",
other paths 404. Bodies are converted by `serving.rest_json`. Every error is
``{"error": "<message>"}`` with TF Serving's HTTP status for the gRPC code; the
transport (`serving.http_server`) never answers a client mistake with a 500.
"""

from __future__ import annotations

import json
import logging
import re
import time
from urllib.parse import unquote

import grpc
from google.protobuf import json_format

from serving.errors import ServingError, invalid
from serving.http_server import HttpRequest, HttpServer, Response
from serving.rest_json import format_predictions, parse_predict_body
from serving.versions import INT64_MAX

log = logging.getLogger(__name__)

_V1 = re.compile(r"/v1/.*", re.I)
_PREDICT = re.compile(
    r"/v1/models/([^/:]+)(?:/versions/(\d+)|/labels/([^/:]+))?:(classify|regress|predict)", re.I)
_STATUS = re.compile(r"/v1/models(?:/([^/:]+))?(?:/versions/(\d+)|/labels/([^/:]+))?(?:/(metadata))?", re.I)
_JSON = ("Content-Type", "application/json")
# TF Serving's AddCORSHeaders (--rest_api_enable_cors_support).
CORS_HEADERS = [("Access-Control-Allow-Origin", "*"), ("Access-Control-Allow-Methods", "POST, GET"),
                ("Access-Control-Allow-Headers", "Content-Type")]


def error_body(message: str) -> bytes:
    return json.dumps({"error": message}, ensure_ascii=False).encode("utf-8")


class RestApi:
    """Request -> (status, headers, body) on a worker thread of the HTTP server."""

    def __init__(self, core, *, enable_cors: bool = False, metrics=None):
        self.core = core
        self.extra_headers = list(CORS_HEADERS) if enable_cors else []
        self.metrics = metrics  # serving.metrics.Metrics when Prometheus export is on

    def handle(self, req: HttpRequest) -> Response:
        try:
            if self.metrics is not None and req.path == self.metrics.path:
                return 200, [("Content-Type", "text/plain; version=0.0.4")], self.metrics.page().encode()
            return self._route(req)
        except ServingError as e:
            return e.http_status, [_JSON, *self.extra_headers], error_body(e.message)
        except RecursionError:
            return 400, [_JSON, *self.extra_headers], error_body("JSON Parse error: nesting too deep")

    def _route(self, req: HttpRequest) -> Response:
        path, method = req.path, req.method
        malformed = f"Malformed request: {method} {path}"
        if not _V1.fullmatch(path):  # TF Serving's dispatcher leaves these to the 404 handler
            raise ServingError(grpc.StatusCode.NOT_FOUND, malformed)
        if method == "OPTIONS" and self.extra_headers:  # CORS preflight
            return 200, list(self.extra_headers), b""
        m = (_PREDICT if method == "POST" else _STATUS).fullmatch(path) if method in ("GET", "POST") else None
        if m is None:
            raise invalid(malformed)
        name = unquote(m[1] or "")
        label = unquote(m[3]) if m[3] else ""
        version = None
        if m[2]:
            version = int(m[2])
            if version > INT64_MAX:
                raise invalid(f"Failed to convert version: {m[2]} to numeric.")
        if method == "POST":
            verb = m[4].lower()
            if verb != "predict":
                raise ServingError(grpc.StatusCode.UNIMPLEMENTED,
                                   f"{verb} is not implemented by this server; use :predict")
            return self._predict(req, name, version, label)
        if not name:
            raise invalid("Missing model name in request.")
        if m[4]:
            return self._ok(self._metadata(name, version, label))
        # TF Serving's GetModelStatus ignores labels: all versions, as for /v1/models/<name>.
        resp = self.core.status_for(name, version)
        return self._ok(json_format.MessageToDict(
            resp, preserving_proto_field_name=True, including_default_value_fields=True))

    def _ok(self, doc) -> Response:
        return 200, [_JSON, *self.extra_headers], json.dumps(doc, ensure_ascii=False).encode("utf-8")

    def _metadata(self, name: str, version, label: str) -> dict:
        from tensorflow_serving.apis import get_model_metadata_pb2

        req = get_model_metadata_pb2.GetModelMetadataRequest()
        req.model_spec.name = name
        if version is not None:
            req.model_spec.version.value = version
        req.model_spec.version_label = label
        req.metadata_field.append("signature_def")
        resp = self.core.metadata(req)
        sdm = get_model_metadata_pb2.SignatureDefMap()
        resp.metadata["signature_def"].Unpack(sdm)
        return {
            "model_spec": {"name": name, "signature_name": "", "version": str(resp.model_spec.version.value)},
            "metadata": {"signature_def": json_format.MessageToDict(sdm, preserving_proto_field_name=True)},
        }

    def _predict(self, req: HttpRequest, name: str, version, label: str) -> Response:
        body = parse_json(req.body)
        sig_name = body.get("signature_name", "")
        if not isinstance(sig_name, str):
            raise invalid("JSON Value: 'signature_name' not formatted correctly. 'signature_name' key "
                          "must be a string value.")
        row_format = []

        def build(sig):
            inputs, dtypes, row = parse_predict_body(body, sig)
            row_format.append(row)
            return inputs, dtypes

        predict = self.core.predict_arrays
        if self.metrics is not None:
            t0, status = time.perf_counter(), "OK"
            try:
                result = predict(name, version, sig_name, build, label=label, deadline=req.deadline,
                                 cancelled=req.disconnected)
            except ServingError as e:
                status = e.code.name
                raise
            finally:
                self.metrics.observe(name, status, time.perf_counter() - t0, "REST")
        else:
            result = predict(name, version, sig_name, build, label=label, deadline=req.deadline,
                             cancelled=req.disconnected)
        return self._ok(format_predictions(result.outputs, row_format[0]))


def parse_json(raw: bytes) -> dict:
    """The request body as a JSON object, with TF Serving's ParseJson errors."""
    if not raw.strip():
        raise invalid("JSON Parse error: The document is empty")
    try:
        doc = json.loads(raw)
    except RecursionError:
        raise invalid("JSON Parse error: nesting too deep") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise invalid(f"JSON Parse error: {e}") from None
    if not isinstance(doc, dict):
        raise invalid(f"JSON Value: {json.dumps(doc)[:100]} Is not object")
    return doc


class RestServer:
    """The REST front end: `HttpServer` (transport) + `RestApi` (routes)."""

    def __init__(self, core, host: str, port: int, *, max_body_bytes: int, num_threads: int,
                 timeout_ms: int = 30_000, enable_cors: bool = False, metrics=None,
                 max_connections: int = 4096):
        self.api = RestApi(core, enable_cors=enable_cors, metrics=metrics)
        # TF Serving: a timeout <= 0 leaves the call unbounded.
        timeout = timeout_ms / 1000 if timeout_ms > 0 else 365 * 86400.0
        self.http = HttpServer(self.api.handle, host, port, num_threads=num_threads,
                               max_body_bytes=max_body_bytes, request_timeout=timeout,
                               error_body=error_body, max_connections=max_connections)
        self.port = self.http.port

    def start(self) -> "RestServer":
        self.http.start()
        return self

    def stop(self) -> None:
        """Stops accepting requests (in-flight ones finish; see ServingCore.wait_idle)."""
        self.http.stop()

    def close(self) -> None:
        self.http.close()
