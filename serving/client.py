"""IntentRec client: TF Serving's PredictionService over gRPC, and the `recommend` CLI.

Works unchanged against real TF Serving (``tensorflow/serving``) and against our server
(`serving.server`): it only uses Predict and GetModelMetadata(signature_def), plus two
optional sources of item titles and intent labels — the ``intentrec_metadata`` signature
(any server) and our server's ``intentrec_metadata`` metadata field — falling back to a
local titles/metadata file or to bare ids.

    recommend --host localhost:8500 --model intentrec --history 1193,661,914,3408
    recommend --host localhost:8500 --model intentrec --history user42.csv --titles movies.dat

Python::

    from serving.client import IntentRecClient
    with IntentRecClient("localhost", 8500, "intentrec") as client:
        rec = client.recommend(["1193", "661", "914"])
        print(rec.format())
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import os
import sys
from typing import Mapping, Sequence

import grpc
import numpy as np

from serving import contract

DEFAULT_TIMEOUT = 10.0
DEFAULT_MAX_MESSAGE_SIZE = 64 * 1024 * 1024


# --- history -----------------------------------------------------------------------------------
@dataclasses.dataclass
class History:
    """One user's interactions, oldest first."""

    item_ids: list[str]
    timestamps: list[int] | None = None
    metadata: dict[str, list] = dataclasses.field(default_factory=dict)

    def __len__(self):
        return len(self.item_ids)


_ITEM_KEYS = ("item_id", "item", "movie_id", "movieId", "itemId")
_TIME_KEYS = ("timestamp", "time", "ts")
_USER_KEYS = ("user_id", "user", "userId")
_SKIP_KEYS = (*_USER_KEYS, "weight", "rating_weight")


def _pick(row: Mapping, keys) -> str | None:
    for k in keys:
        if k in row:
            return k
    return None


def _num(v):
    if isinstance(v, (int, float)) or v is None:
        return v
    s = str(v).strip()
    if s == "":
        return None
    try:
        f = float(s)
    except ValueError:
        return s
    return int(f) if f.is_integer() and "." not in s and "e" not in s.lower() else f


def history_from_rows(rows: Sequence[Mapping], user: str | None = None) -> History:
    """Interactions (dicts with item_id[, timestamp, user_id, metadata...]) -> History."""
    rows = list(rows)
    if not rows:
        raise ValueError("empty history")
    user_key = _pick(rows[0], _USER_KEYS)
    if user_key:
        users = list(dict.fromkeys(str(r.get(user_key)) for r in rows))
        if user is not None:
            rows = [r for r in rows if str(r.get(user_key)) == str(user)]
            if not rows:
                raise ValueError(f"user {user!r} not in the history file")
        elif len(users) > 1:
            raise ValueError(f"the history file holds {len(users)} users ({', '.join(users[:5])}"
                             f"{', ...' if len(users) > 5 else ''}); pick one with --user")
    item_key = _pick(rows[0], _ITEM_KEYS)
    if item_key is None:
        raise ValueError(f"no item id column (one of {_ITEM_KEYS}) in {sorted(rows[0])}")
    time_key = _pick(rows[0], _TIME_KEYS)
    if time_key:
        order = sorted(range(len(rows)), key=lambda i: (_num(rows[i].get(time_key)) or 0, i))
        rows = [rows[i] for i in order]
    meta_keys = [k for k in rows[0] if k not in (item_key, time_key, *_SKIP_KEYS)]
    items = [str(r[item_key]) for r in rows]
    timestamps = [int(_num(r.get(time_key)) or 0) for r in rows] if time_key else None
    metadata = {}
    for k in meta_keys:
        vals = [r.get(k) for r in rows]
        if all(v is None or isinstance(v, str) for v in vals):  # CSV text: numbers if all are
            conv = [_num(v) for v in vals]
            if any(v is not None for v in conv) and all(
                    v is None or isinstance(v, (int, float)) for v in conv):
                vals = conv
        metadata[k] = vals
    return History(items, timestamps, metadata)


def load_history(source: str, user: str | None = None) -> History:
    """A history from a CSV / JSON-lines / JSON file, or from comma-separated item ids."""
    if os.path.isfile(source):
        with open(source, encoding="utf-8") as f:
            text = f.read()
        stripped = text.lstrip()
        if source.endswith((".jsonl", ".json", ".ndjson")) or stripped.startswith(("{", "[")):
            if stripped.startswith("[") or (stripped.startswith("{") and "\n{" not in stripped.strip()):
                doc = json.loads(text)
                if isinstance(doc, dict) and ("item_ids" in doc or "items" in doc):
                    return History([str(i) for i in doc.get("item_ids", doc.get("items"))],
                                   doc.get("timestamps"), dict(doc.get("metadata") or {}))
                rows = doc if isinstance(doc, list) else [doc]
            else:
                rows = [json.loads(line) for line in text.splitlines() if line.strip()]
            return history_from_rows(rows, user)
        dialect = "excel-tab" if source.endswith(".tsv") else "excel"
        rows = list(csv.DictReader(text.splitlines(), dialect=dialect))
        if rows and _pick(rows[0], _ITEM_KEYS) is None:  # headerless: one id per line/field
            ids = [x.strip() for line in text.splitlines() for x in line.split(",") if x.strip()]
            return History(ids)
        return history_from_rows(rows, user)
    ids = [x.strip() for x in source.split(",") if x.strip()]
    if not ids:
        raise ValueError(f"{source!r} is neither a file nor a comma-separated list of item ids")
    return History(ids)


def load_titles(path: str) -> dict[str, str]:
    """Item titles from a JSON dict / metadata file, a CSV/TSV (item_id,title) or MovieLens
    movies.dat (``id::title::genres``)."""
    with open(path, encoding="utf-8", errors="replace") as f:
        text = f.read()
    if path.endswith(".json") or text.lstrip().startswith("{"):
        doc = json.loads(text)
        return {str(k): str(v) for k, v in doc.get(contract.META_ITEM_TITLES, doc).items()}
    if "::" in text.split("\n", 1)[0]:
        out = {}
        for line in text.splitlines():
            parts = line.split("::")
            if len(parts) >= 2:
                out[parts[0].strip()] = parts[1].strip()
        return out
    rows = list(csv.reader(text.splitlines(), dialect="excel-tab" if path.endswith(".tsv") else "excel"))
    if rows and rows[0] and rows[0][0].strip().lower() in _ITEM_KEYS:
        rows = rows[1:]
    return {r[0].strip(): r[1].strip() for r in rows if len(r) >= 2}


# --- results -----------------------------------------------------------------------------------
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
        order = np.argsort(-np.asarray(self.probabilities), kind="stable")[:n]
        return [(self.labels[i], float(self.probabilities[i])) for i in order]


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
            "intents": {h: {"weight": p.weight, "probabilities": dict(zip(p.labels, p.probabilities))}
                        for h, p in self.intents.items()},
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
    if host.startswith("[") and "]:" in host:  # [::1]:8500
        h, p = host[1:].split("]:", 1)
        return h, int(p)
    if host.count(":") == 1:
        h, p = host.split(":")
        return h, int(p)
    return host, int(port or 8500)


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


# --- CLI ---------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="recommend", description="Top-k recommendations and predicted intents for one user "
        "history from an IntentRec model behind TF Serving or serving.server.")
    p.add_argument("--host", default="localhost:8500", help="host[:port] of the gRPC endpoint")
    p.add_argument("--port", type=int, default=None, help="port, when --host has none (default 8500)")
    p.add_argument("--model", "--model_name", dest="model", default=contract.DEFAULT_MODEL_NAME)
    p.add_argument("--version", type=int, default=None, help="model version (default: latest)")
    p.add_argument("--signature", default=contract.SERVING_SIGNATURE,
                   help=f"{contract.SERVING_SIGNATURE} (tf.Example) or {contract.RAW_SIGNATURE} (raw tensors)")
    p.add_argument("--history", required=True,
                   help="comma-separated item ids (oldest first), or a CSV / JSON-lines file of "
                        "interactions (item_id[, timestamp, user_id, metadata columns])")
    p.add_argument("--user", default=None, help="user id to pick from a multi-user history file")
    p.add_argument("--titles", default=None, help="item titles: JSON, CSV (item_id,title) or movies.dat")
    p.add_argument("--metadata", default=None, help=f"a {contract.METADATA_FILE} to use instead of the server's")
    p.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT)
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--event", default=None,
                   help="real-time update (also `recommend update ...`): a new interaction, key=value,... "
                        "or JSON (e.g. item_id=1193,action_type=continue); prints the intents, α and "
                        "recommendations before and after it, from one model call")
    return p


def _light_tensorflow_protos() -> None:
    """Lets the CLI import the TF Serving / TF protos without initialising TensorFlow.

    ``tensorflow_serving.apis`` imports ``tensorflow.core.framework.*_pb2``, which runs
    ``tensorflow/__init__.py`` (10-20 s here). The client only needs the generated protos,
    so for a process that has not imported TensorFlow yet, ``tensorflow`` is registered as
    a bare package over its directory: the ``*_pb2`` modules load, TF itself does not (the
    process cannot use TF afterwards — only the CLI does this). INTENTREC_CLIENT_FULL_TF=1
    disables it.
    """
    if "tensorflow" in sys.modules or os.environ.get("INTENTREC_CLIENT_FULL_TF") == "1":
        return
    import importlib.util
    import types

    spec = importlib.util.find_spec("tensorflow")
    if spec is None or not spec.submodule_search_locations:
        return
    pkg = types.ModuleType("tensorflow")
    pkg.__path__ = list(spec.submodule_search_locations)
    pkg.__spec__ = spec
    pkg.__file__ = spec.origin
    sys.modules["tensorflow"] = pkg


def main(argv=None) -> int:
    raw = list(sys.argv[1:] if argv is None else argv)
    update = bool(raw) and raw[0] == "update"
    args = build_parser().parse_args(raw[1:] if update else raw)
    if update and not args.event:
        print("error: `recommend update` needs --event", file=sys.stderr)
        return 2
    if argv is None:  # the `recommend` / `python -m serving.client` process
        _light_tensorflow_protos()
    try:
        history = load_history(args.history, args.user)
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    try:
        with IntentRecClient(args.host, args.port, args.model, args.signature, version=args.version,
                             timeout=args.timeout, metadata=args.metadata, titles=args.titles) as client:
            if args.event:
                return _print_update(client, history, args)
            rec = client.recommend(history)
    except grpc.RpcError as e:
        print(f"error: {e.code().name}: {e.details()}", file=sys.stderr)
        return 1
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(rec.to_dict(), indent=2, ensure_ascii=False))
    else:
        print(f"History: {len(history)} interactions (latest: {', '.join(history.item_ids[-5:])})")
        print(rec.format())
    return 0


def _print_update(client, history, args) -> int:
    """`recommend update`: the served model on [history, history + event] (paper §4.5:
    intents follow a new event without retraining)."""
    from analysis.realtime import ServedBackend, history_rows, parse_event, update_intents

    upd = update_intents(ServedBackend(client), history_rows(history), parse_event(args.event))
    print(json.dumps(upd.to_dict(), indent=2, default=str, ensure_ascii=False) if args.json else upd.format())
    return 0


if __name__ == "__main__":
    sys.exit(main())
