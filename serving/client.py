"""IntentRec client: TF Serving's PredictionService over gRPC.

Works unchanged against real TF Serving (``tensorflow/serving``) and against our server
(`serving.server`): it only uses Predict and GetModelMetadata(signature_def), plus two
optional sources of item titles and intent labels — the ``intentrec_metadata`` signature
(any server) and our server's ``intentrec_metadata`` metadata field — falling back to a
local titles/metadata file or to bare ids. The ``recommend`` command line is
`serving.cli` (and ``recommend update`` is `analysis.cli`).

    from serving.client import IntentRecClient
    with IntentRecClient("localhost", 8500, "intentrec") as client:
        rec = client.recommend(["1193", "661", "914"])
        print(rec.format())
"""

from __future__ import annotations

import dataclasses
import json
from typing import Mapping, Sequence

import grpc
import numpy as np

from serving import contract
from serving.history import History, load_history, load_titles  # noqa: F401 - part of the client API

DEFAULT_TIMEOUT = 10.0
DEFAULT_MAX_MESSAGE_SIZE = 64 * 1024 * 1024


# --- results ----------------------------------------------------------------------------------
@dataclasses.dataclass
class RecommendedItem:
    item_id: str
    score: float
    title: str | None = None


@dataclasses.dataclass
class IntentPrediction:
    head: str
    labels: list[str]
    probabilities: list[float]
    weight: float | None  # alpha of this head

    def top(self, n: int = 3) -> list[tuple[str, float]]:
        """The n most probable labels; the reserved padding/OOV slots are not intents."""
        probs = np.asarray(self.probabilities)
        order = [i for i in np.argsort(-probs, kind="stable") if i >= self.reserved]
        return [(self.labels[i], float(probs[i])) for i in order[:n]]

    @property
    def reserved(self) -> int:
        return contract.NUM_RESERVED_LABELS if len(self.probabilities) > contract.NUM_RESERVED_LABELS else 0

    def named(self) -> dict[str, float]:
        """label -> probability, without the reserved slots."""
        return dict(zip(self.labels[self.reserved:], self.probabilities[self.reserved:]))


@dataclasses.dataclass
class Recommendation:
    items: list[RecommendedItem]
    intents: dict[str, IntentPrediction]
    primary_intent: str | None
    primary_weight: float | None
    attention: dict[str, float]
    intent_embedding: list[float]
    model_name: str
    model_version: int | None
    signature_name: str
    outputs: dict = dataclasses.field(default_factory=dict, repr=False)  # raw arrays, one row

    def to_dict(self) -> dict:
        return {
            "model": {"name": self.model_name, "version": self.model_version,
                      "signature_name": self.signature_name},
            "items": [dataclasses.asdict(i) for i in self.items],
            "intents": {h: {"weight": p.weight, "probabilities": p.named()} for h, p in self.intents.items()},
            "primary_intent": {"head": self.primary_intent, "weight": self.primary_weight},
            "intent_attention": self.attention,
            "intent_embedding": self.intent_embedding,
        }

    def format(self, top_labels: int = 3) -> str:
        lines = [f"Model {self.model_name} v{self.model_version} ({self.signature_name})",
                 f"Top-{len(self.items)} recommendations:"]
        width = max((len(i.item_id) for i in self.items), default=4)
        for rank, item in enumerate(self.items, 1):
            title = f"  {item.title}" if item.title else ""
            lines.append(f"  {rank:>2}. {item.item_id:<{width}}  score {item.score:8.4f}{title}")
        if self.intents:
            lines.append("Predicted next intents:")
            for head, p in self.intents.items():
                tops = ", ".join(f"{label} {prob:.3f}" for label, prob in p.top(top_labels))
                w = f" (alpha {p.weight:.3f})" if p.weight is not None else ""
                lines.append(f"  {head}{w}: {tops}")
        if self.primary_intent is not None:
            w = f" (alpha = {self.primary_weight:.3f})" if self.primary_weight is not None else ""
            best = ""
            p = self.intents.get(self.primary_intent)
            if p is not None and p.probabilities:
                label, prob = p.top(1)[0]
                best = f" -> {label} ({prob:.3f})"
            lines.append(f"Primary intent: {self.primary_intent}{w}{best}")
        if self.intent_embedding:
            z = ", ".join(f"{v:.3f}" for v in self.intent_embedding[:6])
            more = ", ..." if len(self.intent_embedding) > 6 else ""
            lines.append(f"Intent embedding Z ({len(self.intent_embedding)} dims): [{z}{more}]")
        return "\n".join(lines)


# --- client ------------------------------------------------------------------------------------
def split_host(host: str, port: int | None) -> tuple[str, int]:
    """(host, port) of the gRPC endpoint from ``host[:port]`` and an optional port.

    ValueError for a URL (the gRPC client takes no scheme; http://...:8501 is the REST API)
    and when the two ports disagree."""
    if "://" in host:
        raise ValueError(f"--host takes host[:port] of the gRPC endpoint (e.g. localhost:8500), not a URL: "
                         f"{host!r}")
    h, own = host, None
    if host.startswith("[") and "]:" in host:  # [::1]:8500
        h, p = host[1:].split("]:", 1)
        own = p
    elif host.count(":") == 1:
        h, own = host.split(":")
    if own is not None:
        if not own.isdigit():
            raise ValueError(f"--host {host!r}: port {own!r} is not a number")
        if port is not None and int(port) != int(own):
            raise ValueError(f"--host {host!r} has port {own} but --port is {port}: give the port once")
        return h, int(own)
    return host.strip("[]"), int(port or 8500)


class IntentRecClient:
    """Predict client for TF Serving or `serving.server`."""

    def __init__(self, host: str = "localhost", port: int | None = 8500,
                 model_name: str = contract.DEFAULT_MODEL_NAME,
                 signature: str = contract.SERVING_SIGNATURE, *, version: int | None = None,
                 timeout: float = DEFAULT_TIMEOUT, metadata: Mapping | str | None = None,
                 titles: Mapping[str, str] | str | None = None,
                 max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE, channel: grpc.Channel | None = None):
        from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

        self.host, self.port = split_host(host, port)
        self.model_name = model_name
        self.signature = signature
        self.version = version
        self.timeout = timeout
        self._own_channel = channel is None
        self.channel = channel or grpc.insecure_channel(
            f"{self.host}:{self.port}",
            options=[("grpc.max_receive_message_length", max_message_size),
                     ("grpc.max_send_message_length", max_message_size)])
        self.stub = prediction_service_pb2_grpc.PredictionServiceStub(self.channel)
        self.model_stub = model_service_pb2_grpc.ModelServiceStub(self.channel)
        if isinstance(metadata, str):
            with open(metadata, encoding="utf-8") as f:
                metadata = json.load(f)
        self._metadata = dict(metadata) if metadata is not None else None
        if isinstance(titles, str):
            titles = load_titles(titles)
        self._titles = dict(titles) if titles else None
        self._signature_defs = None

    def close(self):
        if self._own_channel:
            self.channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _spec(self, msg, signature: str | None = None):
        msg.model_spec.name = self.model_name
        if self.version is not None:
            msg.model_spec.version.value = int(self.version)
        if signature is not None:
            msg.model_spec.signature_name = signature

    # --- model information ------------------------------------------------------------------
    def signature_defs(self, refresh: bool = False) -> dict:
        """GetModelMetadata(signature_def) -> {signature name: SignatureDef}."""
        if self._signature_defs is None or refresh:
            from tensorflow_serving.apis import get_model_metadata_pb2

            req = get_model_metadata_pb2.GetModelMetadataRequest()
            self._spec(req)
            req.metadata_field.append("signature_def")
            resp = self.stub.GetModelMetadata(req, timeout=self.timeout)
            sdm = get_model_metadata_pb2.SignatureDefMap()
            resp.metadata["signature_def"].Unpack(sdm)
            self._signature_defs = dict(sdm.signature_def)
        return self._signature_defs

    def metadata(self) -> dict:
        """Intent heads, labels and item titles (contract.METADATA_FILE), best effort: the
        given file/dict, else the model's intentrec_metadata signature, else our server's
        metadata extension; {} when none is available."""
        if self._metadata is not None:
            return self._metadata
        meta = {}
        try:
            if contract.METADATA_SIGNATURE in self.signature_defs():
                from tensorflow_serving.apis import predict_pb2

                req = predict_pb2.PredictRequest()
                self._spec(req, contract.METADATA_SIGNATURE)
                resp = self.stub.Predict(req, timeout=self.timeout)
                meta = json.loads(resp.outputs[contract.METADATA_OUTPUT].string_val[0])
            else:
                from google.protobuf import wrappers_pb2
                from tensorflow_serving.apis import get_model_metadata_pb2

                req = get_model_metadata_pb2.GetModelMetadataRequest()
                self._spec(req)
                req.metadata_field.append(contract.METADATA_SIGNATURE)
                resp = self.stub.GetModelMetadata(req, timeout=self.timeout)
                sv = wrappers_pb2.StringValue()
                resp.metadata[contract.METADATA_SIGNATURE].Unpack(sv)
                meta = json.loads(sv.value)
        except (grpc.RpcError, ValueError, KeyError, IndexError):
            meta = {}  # real TF Serving without the signature: INVALID_ARGUMENT
        self._metadata = meta
        return meta

    def unknown_items(self, item_ids: Sequence[str]) -> list[str]:
        """The ids the model does not know (the served model maps them to OOV), judged by
        its catalogue (metadata item_titles); [] when the model publishes none."""
        catalogue = self.metadata().get(contract.META_ITEM_TITLES) or {}
        return list(dict.fromkeys(i for i in item_ids if i not in catalogue)) if catalogue else []

    def status(self) -> list[dict]:
        from tensorflow_serving.apis import get_model_status_pb2

        req = get_model_status_pb2.GetModelStatusRequest()
        self._spec(req)
        resp = self.model_stub.GetModelStatus(req, timeout=self.timeout)
        return [{"version": s.version,
                 "state": get_model_status_pb2.ModelVersionStatus.State.Name(s.state),
                 "error_code": s.status.error_code, "error_message": s.status.error_message}
                for s in resp.model_version_status]

    # --- requests ---------------------------------------------------------------------------
    def build_request(self, histories: Sequence[History]):
        from tensorflow_serving.apis import predict_pb2

        from serving.tensor_codec import ndarray_to_proto

        req = predict_pb2.PredictRequest()
        self._spec(req, self.signature)
        if self.signature == contract.SERVING_SIGNATURE:
            from serving.examples import make_example

            types = self.metadata().get(contract.META_EXAMPLE_FEATURES) if self._needs_types(histories) else None
            examples = [make_example(h.item_ids, h.timestamps, h.metadata, feature_types=types)
                        .SerializeToString() for h in histories]
            ndarray_to_proto(np.array(examples, dtype=object), out=req.inputs[contract.EXAMPLES_INPUT])
            return req
        for name, tensor in self._raw_inputs(histories).items():
            ndarray_to_proto(tensor[0], tensor[1], out=req.inputs[name])
        return req

    @staticmethod
    def _needs_types(histories) -> bool:
        return any(h.metadata for h in histories)

    def _raw_inputs(self, histories: Sequence[History]) -> dict:
        """Tensors for a raw signature (e.g. predict_raw), built from its SignatureDef."""
        from serving.examples import left_pad
        from serving.tensor_codec import DT, numpy_dtype

        sdef = self.signature_defs().get(self.signature)
        if sdef is None:
            raise ValueError(f"model {self.model_name} has no signature {self.signature!r}; it has "
                             f"{sorted(self.signature_defs())}")
        out = {}
        for name, info in sdef.inputs.items():
            dims = [d.size for d in info.tensor_shape.dim]
            length = dims[1] if len(dims) > 1 and dims[1] > 0 else None
            rows = []
            for h in histories:
                if name == contract.EXAMPLE_ITEM_ID:
                    rows.append(list(h.item_ids))
                elif name == contract.EXAMPLE_TIMESTAMP:
                    rows.append(list(h.timestamps) if h.timestamps is not None else list(range(len(h))))
                else:
                    rows.append(list(h.metadata.get(name, [None] * len(h))))
            np_dtype = numpy_dtype(info.dtype)
            if info.dtype == DT.DT_STRING:
                rows = [[b"" if v is None else (v if isinstance(v, bytes) else str(v).encode())
                         for v in r] for r in rows]
            else:
                rows = [[0 if v is None or v == "" else v for v in r] for r in rows]
            if length is None:
                length = max((len(r) for r in rows), default=0)
            out[name] = (left_pad(rows, length, np_dtype), info.dtype)
        return out

    def predict(self, histories: Sequence[History], output_filter: Sequence[str] = ()):
        """Raw Predict: ({output: numpy array}, PredictResponse.model_spec)."""
        from serving.tensor_codec import proto_to_ndarray

        req = self.build_request(histories)
        req.output_filter.extend(output_filter)
        resp = self.stub.Predict(req, timeout=self.timeout)
        return {k: proto_to_ndarray(v) for k, v in resp.outputs.items()}, resp.model_spec

    def recommend_batch(self, histories: Sequence[History]) -> list[Recommendation]:
        outputs, spec = self.predict(histories)
        version = spec.version.value if spec.HasField("version") else None
        return [self._decode(outputs, i, version, spec.signature_name or self.signature)
                for i in range(len(histories))]

    def recommend(self, item_ids: Sequence | History, timestamps: Sequence[int] | None = None,
                  metadata: Mapping[str, Sequence] | None = None) -> Recommendation:
        h = item_ids if isinstance(item_ids, History) else History(
            [str(i) for i in item_ids], list(timestamps) if timestamps is not None else None,
            dict(metadata or {}))
        return self.recommend_batch([h])[0]

    # --- decoding ---------------------------------------------------------------------------
    def _decode(self, outputs: dict, i: int, version, signature_name: str) -> Recommendation:
        meta = self.metadata()
        titles = self._titles or meta.get(contract.META_ITEM_TITLES) or {}
        ids = [_text(x) for x in outputs.get(contract.TOP_K_IDS, np.empty((i + 1, 0), object))[i]]
        scores = outputs.get(contract.TOP_K_SCORES)
        items = [RecommendedItem(item, float(scores[i][j]) if scores is not None else float("nan"),
                                 titles.get(item)) for j, item in enumerate(ids)]
        heads = list(meta.get(contract.META_INTENT_HEADS) or contract.intent_heads_from_outputs(outputs))
        att = outputs.get(contract.INTENT_ATTENTION)
        attention = ({h: float(att[i][m]) for m, h in enumerate(heads) if m < att.shape[1]}
                     if att is not None else {})
        labels = meta.get(contract.META_INTENT_LABELS) or {}
        intents = {}
        for h in heads:
            probs = outputs.get(contract.INTENT_PREFIX + h)
            if probs is None:
                continue
            p = [float(v) for v in probs[i]]
            names = list(labels.get(h) or [])
            if len(names) != len(p):
                names = [str(j) for j in range(len(p))]
            intents[h] = IntentPrediction(h, names, p, attention.get(h))
        prim = outputs.get(contract.PRIMARY_INTENT)
        primary = _text(prim[i]) if prim is not None else None
        z = outputs.get(contract.INTENT_EMBEDDING)
        return Recommendation(
            items=items, intents=intents, primary_intent=primary,
            primary_weight=attention.get(primary) if primary is not None else None,
            attention=attention, intent_embedding=[float(v) for v in z[i]] if z is not None else [],
            model_name=self.model_name, model_version=version, signature_name=signature_name,
            outputs={k: v[i] for k, v in outputs.items() if v.ndim and v.shape[0] > i})


def _text(v) -> str:
    return v.decode("utf-8", errors="replace") if isinstance(v, bytes) else str(v)


if __name__ == "__main__":  # `python -m serving.client` is the recommend CLI, as before
    import sys

    from serving.cli import main

    sys.exit(main())
