"""TF Serving's configuration protos, read as TF Serving reads them (text format).

``tensorflow-serving-api`` ships ModelServerConfig (``tensorflow_serving.config``) but not
the messages of --ssl_config_file, --monitoring_config_file and
--batching_parameters_file, so those are declared here with TF Serving's package, names
and field numbers (tensorflow_serving/config/ssl_config.proto,
monitoring_config.proto, servables/tensorflow/session_bundle_config.proto) and parsed
with protobuf's own text_format: a file written for tensorflow/serving reads the same.
"""

from __future__ import annotations

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, text_format
from google.protobuf import wrappers_pb2  # noqa: F401 - registers google/protobuf/wrappers.proto

_F = descriptor_pb2.FieldDescriptorProto
_OPTIONAL, _REPEATED = _F.LABEL_OPTIONAL, _F.LABEL_REPEATED
_I64, _STR, _BOOL = ".google.protobuf.Int64Value", ".google.protobuf.StringValue", ".google.protobuf.BoolValue"

# A private pool: the default pool may one day get TF Serving's own definitions.
_pool = descriptor_pool.DescriptorPool()
_pool.Add(descriptor_pb2.FileDescriptorProto.FromString(wrappers_pb2.DESCRIPTOR.serialized_pb))
_factory = message_factory.MessageFactory(_pool)


def declare(file_name: str, package: str, messages: dict) -> dict:
    """Message classes from declarations {message: [(field, number, type, label, type_name)]}
    (FieldDescriptorProto's TYPE_* and LABEL_* values; type_name for message fields)."""
    fdp = descriptor_pb2.FileDescriptorProto(name=file_name, package=package, syntax="proto3")
    fdp.dependency.append("google/protobuf/wrappers.proto")
    for name, fields in messages.items():
        m = fdp.message_type.add(name=name)
        for field_name, number, kind, label, type_name in fields:
            f = m.field.add(name=field_name, number=number, type=kind, label=label)
            if type_name:
                f.type_name = type_name
    _pool.Add(fdp)
    return {name: _factory.GetPrototype(_pool.FindMessageTypeByName(f"{package}.{name}")) for name in messages}


_CONFIG = declare("intentrec/tensorflow_serving_config.proto", "tensorflow.serving", {
    "SSLConfig": [
        ("server_key", 1, _F.TYPE_STRING, _OPTIONAL, None),
        ("server_cert", 2, _F.TYPE_STRING, _OPTIONAL, None),
        ("custom_ca", 3, _F.TYPE_STRING, _OPTIONAL, None),
        ("client_verify", 4, _F.TYPE_BOOL, _OPTIONAL, None)],
    "PrometheusConfig": [
        ("enable", 1, _F.TYPE_BOOL, _OPTIONAL, None),
        ("path", 2, _F.TYPE_STRING, _OPTIONAL, None)],
    "MonitoringConfig": [
        ("prometheus_config", 1, _F.TYPE_MESSAGE, _OPTIONAL, ".tensorflow.serving.PrometheusConfig")],
    "BatchingParameters": [
        ("max_batch_size", 1, _F.TYPE_MESSAGE, _OPTIONAL, _I64),
        ("batch_timeout_micros", 2, _F.TYPE_MESSAGE, _OPTIONAL, _I64),
        ("max_enqueued_batches", 3, _F.TYPE_MESSAGE, _OPTIONAL, _I64),
        ("num_batch_threads", 4, _F.TYPE_MESSAGE, _OPTIONAL, _I64),
        ("thread_pool_name", 5, _F.TYPE_MESSAGE, _OPTIONAL, _STR),
        ("allowed_batch_sizes", 6, _F.TYPE_INT64, _REPEATED, None),
        ("pad_variable_length_inputs", 7, _F.TYPE_BOOL, _OPTIONAL, None),
        ("enable_large_batch_splitting", 8, _F.TYPE_MESSAGE, _OPTIONAL, _BOOL),
        ("max_execution_batch_size", 9, _F.TYPE_MESSAGE, _OPTIONAL, _I64)],
})
SSLConfig = _CONFIG["SSLConfig"]
MonitoringConfig = _CONFIG["MonitoringConfig"]
BatchingParameters = _CONFIG["BatchingParameters"]


def read_text_proto(path: str, message_class, *, allow_unknown_field: bool = False):
    """Parses a text-format proto file; ValueError naming the file on any problem (TF
    Serving: "Invalid protobuf file: '<path>'")."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise ValueError(f"cannot read {path}: {e.strerror}") from None
    msg = message_class()
    try:
        text_format.Parse(text, msg, allow_unknown_field=allow_unknown_field)
    except text_format.ParseError as e:
        raise ValueError(f"Invalid protobuf file: '{path}': {e}") from None
    return msg
