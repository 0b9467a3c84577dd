"""A status-carrying error, mapped to a gRPC status code (and an HTTP one for REST)."""

from __future__ import annotations

import grpc

# TF Serving's REST status mapping (tensorflow_serving/model_servers/http_rest_api_handler
# uses ToHTTPStatusCode); codes not listed map to 500.
_HTTP = {
    grpc.StatusCode.OK: 200,
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
}

# TensorFlow's error codes are numerically gRPC's (tensorflow/core/protobuf/error_codes.proto).
_BY_VALUE = {code.value[0]: code for code in grpc.StatusCode}


class ServingError(Exception):
    """An error answered to the caller with ``code`` and ``message``; never a crash."""

    def __init__(self, code: grpc.StatusCode, message: str, http: int | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self._http = http

    @property
    def http_status(self) -> int:
        return self._http or http_status(self.code)

    def __repr__(self):
        return f"ServingError({self.code.name}, {self.message!r})"


def http_status(code: grpc.StatusCode) -> int:
    return _HTTP.get(code, 500)


def code_from_int(value: int) -> grpc.StatusCode:
    return _BY_VALUE.get(int(value), grpc.StatusCode.UNKNOWN)


def invalid(message: str) -> ServingError:
    return ServingError(grpc.StatusCode.INVALID_ARGUMENT, message)


def not_found(message: str) -> ServingError:
    return ServingError(grpc.StatusCode.NOT_FOUND, message)
