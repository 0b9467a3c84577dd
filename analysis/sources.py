"""Where intents come from: a trained Keras IntentRec or a pushed TF-Serving SavedModel.

Both loaders return an object with one interface (`IntentModel`), so that the
clustering, the export and the real-time update do not care which one they talk to:

- `heads`, `kinds`, `labels`: the intent heads in `intent_attention` order, their kind
  ("single" softmax / "multi" sigmoid) and their label names (index-aligned with the
  probabilities; slots 0/1 are the reserved padding / OOV labels);
- `infer(histories)`: last-position outputs of a batch of raw histories (each a
  DataFrame / list of canonical row dicts, oldest first): `intent_embedding` Z
  `[B, d_proj]`, `intent_attention` α `[B, M]`, `intent_<head>` `[B, d_h]` and, for
  Keras models, `item_hidden` `[B, d_model]` (E^item, the V0 baseline embedding);
- `recommend(histories, k)`: the same plus `top_k_ids` (item id strings) and
  `top_k_scores`.

    model = load_intent_model("runs/synthetic/v3-seed0", dataset=ds)    # run dir
    model = load_intent_model("runs/synthetic/v3-seed0/model.keras", dataset=ds)
    model = load_intent_model("serving_root/intentrec")                 # latest version
    out = model.infer([history_df])

A Keras model needs the data preprocessor it was trained with (vocabularies and
statistics). It is taken, in order, from the `preprocessor=` argument, a
`preprocessor.json` next to the model, or refitted with `datasets.encode(dataset,
max_len)` — deterministic, so it reproduces the training vocabularies when the
dataset is the one the model was trained on (checked against the model config).
A SavedModel carries its own preprocessing (the TFT graph), so it only needs raw
histories; its heads, labels and feature types come from
`assets.extra/intentrec_metadata.json` (serving/contract.py).
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
from typing import Optional, Sequence

import numpy as np
import pandas as pd

from datasets.schema import ITEM, NUM_RESERVED_IDS, TIMESTAMP, USER
from datasets.encoder import history_frame

INTENT_EMBEDDING = "intent_embedding"
INTENT_ATTENTION = "intent_attention"
ITEM_HIDDEN = "item_hidden"
TOP_K_IDS = "top_k_ids"
TOP_K_SCORES = "top_k_scores"


def intent_key(head: str) -> str:
    return f"intent_{head}"


@dataclasses.dataclass
class ModelInfo:
    """What is known about a loaded model besides its weights."""

    path: str
    kind: str  # "keras" | "saved_model"
    variant: Optional[str] = None
    dataset: Optional[str] = None
    seed: Optional[int] = None
    exclude_seen: bool = False


class IntentModel:
    """Common interface (see the module docstring)."""

    info: ModelInfo
    heads: list
    kinds: dict
    labels: dict
    max_len: int
    hierarchical: bool

    def infer(self, histories: Sequence) -> dict:
        raise NotImplementedError

    def recommend(self, histories: Sequence, k: int = 10) -> dict:
        raise NotImplementedError

    @property
    def d_proj(self) -> int:
        raise NotImplementedError

    def describe(self) -> str:
        v = f" {self.info.variant}" if self.info.variant else ""
        return f"{self.info.kind}{v} model {self.info.path} (heads {', '.join(self.heads) or 'none'})"


# --------------------------------------------------------------------------------------
# Keras (.keras file or model.train run dir)
# --------------------------------------------------------------------------------------
class KerasIntentModel(IntentModel):
    """A trained `model.IntentRec` plus the preprocessor of its training data."""

    def __init__(self, model, preprocessor, info: ModelInfo, item_titles: Optional[dict] = None):
        self.model = model
        self.preprocessor = preprocessor
        self.info = info
        cfg = model.config
        self.max_len = int(cfg.max_len)
        self.heads = [h.name for h in model.intent_heads]
        self.kinds = {h.name: h.kind for h in model.intent_heads}
        self.hierarchical = bool(cfg.hierarchical)
        vocabs = {**preprocessor.categorical_vocabs, **preprocessor.multi_vocabs}
        self.labels = {h: list(vocabs[h].tokens) for h in self.heads}
        self.item_titles = dict(item_titles or {})
        _check_compatible(cfg, preprocessor)

    @property
    def d_proj(self) -> int:
        return int(self.model.config.d_proj) if self.hierarchical else 0

    def encode(self, histories: Sequence) -> dict:
        from datasets.encoder import encode_histories

        return encode_histories(self.preprocessor, list(histories), max_len=self.max_len)

    def infer_encoded(self, x: dict) -> dict:
        """Last-position outputs for already encoded inputs `[B, n]`."""
        # predict_on_batch runs the compiled predict function (much faster than eager
        # calls). Batches are padded to a power of two with empty histories, so that a
        # run over many users traces the function a handful of times, not once per size.
        x = self.model.select_inputs(x)
        b = len(x["item"])
        size = 1 << max(0, (b - 1).bit_length())
        if size != b:
            x = {k: np.concatenate([v, np.zeros((size - b,) + v.shape[1:], v.dtype)]) for k, v in x.items()}
        outputs = self.model.predict_on_batch(x)
        result = {}
        for key, value in outputs.items():
            if key.startswith("intent_logits_"):
                continue
            result[key] = np.asarray(value[:b, -1], dtype=np.float32)
        return result

    def infer(self, histories: Sequence) -> dict:
        return self.infer_encoded(self.encode(histories))

    def recommend_encoded(self, x: dict, k: int = 10) -> dict:
        from keras import ops

        out = self.model.recommend(x, k=k, exclude_seen=self.info.exclude_seen)
        result = {key: np.asarray(ops.convert_to_numpy(v)) for key, v in out.items()}
        ids = result.pop(TOP_K_IDS).astype(np.int64)
        tokens = np.asarray(self.preprocessor.item_vocab.tokens, dtype=object)
        result[TOP_K_IDS] = tokens[ids]
        result[TOP_K_SCORES] = result[TOP_K_SCORES].astype(np.float32)
        return result

    def recommend(self, histories: Sequence, k: int = 10) -> dict:
        return self.recommend_encoded(self.encode(histories), k=k)


def _check_compatible(cfg, preprocessor) -> None:
    spec = preprocessor.feature_spec()
    problems = []
    if spec.item_vocab_size != cfg.item_vocab_size:
        problems.append(f"item vocabulary {spec.item_vocab_size} vs model {cfg.item_vocab_size}")
    for name, size in cfg.categorical.items():
        if dict(spec.categorical).get(name) != size:
            problems.append(f"categorical {name!r}: {dict(spec.categorical).get(name)} vs model {size}")
    for name, size in cfg.multi_hot.items():
        if dict(spec.multi_hot).get(name) != size:
            problems.append(f"multi-label {name!r}: {dict(spec.multi_hot).get(name)} vs model {size}")
    if problems:
        raise ValueError("the data preprocessor does not match the model (wrong --dataset or dataset "
                         "arguments?): " + "; ".join(problems))


def _read_run_info(run_dir: pathlib.Path) -> dict:
    path = run_dir / "metrics.json"
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def load_keras_model(path, dataset=None, preprocessor=None) -> KerasIntentModel:
    """`.keras` file (or a run dir holding `model.keras`) → `KerasIntentModel`."""
    import keras

    import model as _model  # noqa: F401  (registers IntentRec for deserialisation)

    path = pathlib.Path(path)
    file = path / "model.keras" if path.is_dir() else path
    if not file.exists():
        raise FileNotFoundError(f"no model.keras at {path}")
    run = _read_run_info(file.parent)
    net = keras.saving.load_model(str(file), compile=False)
    if not hasattr(net, "intent_heads"):
        raise ValueError(f"{file} is not an IntentRec model")
    pre = _resolve_preprocessor(preprocessor, file.parent, dataset, int(net.config.max_len))
    info = ModelInfo(path=str(file), kind="keras", variant=run.get("variant", net.config.variant),
                     dataset=run.get("dataset"), seed=run.get("seed"),
                     exclude_seen=bool(run.get("exclude_seen", False)))
    titles = _titles_from_dataset(dataset)
    return KerasIntentModel(net, pre, info, item_titles=titles)


def _resolve_preprocessor(preprocessor, model_dir: pathlib.Path, dataset, max_len: int):
    from datasets.preprocessor import Preprocessor

    if preprocessor is not None:
        if isinstance(preprocessor, (str, os.PathLike)):
            return Preprocessor.load(preprocessor)
        return getattr(preprocessor, "preprocessor", preprocessor)  # EncodedData or Preprocessor
    saved = model_dir / "preprocessor.json"
    if saved.exists():
        return Preprocessor.load(saved)
    if dataset is None:
        raise ValueError("a Keras model needs its data preprocessor: pass the dataset it was trained on "
                         "(--dataset) or a preprocessor.json")
    import datasets

    return datasets.encode(dataset, max_len=max_len).preprocessor


def _titles_from_dataset(dataset) -> dict:
    items = getattr(dataset, "items", None)
    if items is None or not len(items) or ITEM not in items.columns or "title" not in items.columns:
        return {}
    return dict(zip(items[ITEM].astype(str), items["title"].fillna("").astype(str)))


# --------------------------------------------------------------------------------------
# TF-Serving SavedModel (pipeline/export.py layout)
# --------------------------------------------------------------------------------------
class SavedModelIntentModel(IntentModel):
    """A pushed SavedModel called through its `serving_default` (tf.Example) signature.

    Raw histories are turned into the serving tf.Examples exactly as the client does
    (`serving.examples.make_example`), so the analysis sees what production sees.
    """

    def __init__(self, version_dir: str, dataset=None, signature: Optional[str] = None):
        import tensorflow as tf

        from serving import contract

        self.version_dir = version_dir
        self._loaded = tf.saved_model.load(version_dir)
        self.signature_name = signature or contract.SERVING_SIGNATURE
        self._fn = self._loaded.signatures[self.signature_name]
        meta = contract.read_metadata(version_dir) or {}
        if not meta and contract.METADATA_SIGNATURE in self._loaded.signatures:
            out = self._loaded.signatures[contract.METADATA_SIGNATURE]()
            meta = json.loads(out[contract.METADATA_OUTPUT].numpy().decode("utf-8"))
        self.metadata = meta
        outputs = list(self._fn.structured_outputs)
        self.heads = list(meta.get(contract.META_INTENT_HEADS) or contract.intent_heads_from_outputs(outputs))
        self.labels = {h: list((meta.get(contract.META_INTENT_LABELS) or {}).get(h) or []) for h in self.heads}
        self.feature_types = dict(meta.get(contract.META_EXAMPLE_FEATURES) or {})
        self.max_len = int(meta.get(contract.META_HISTORY_LENGTH) or 0)
        self.k = int(meta.get(contract.META_K) or 10)
        self.item_titles = dict(meta.get(contract.META_ITEM_TITLES) or {})
        self.kinds = _kinds_from_schema(dataset, self.heads)
        spec = self._fn.structured_outputs.get(contract.INTENT_EMBEDDING)
        self._d_proj = int(spec.shape[-1]) if spec is not None and spec.shape[-1] is not None else None
        self.hierarchical = self._d_proj != 0
        version = os.path.basename(os.path.normpath(version_dir))
        self.info = ModelInfo(path=version_dir, kind="saved_model",
                              variant=f"v{version}" if version.isdigit() else None)

    @property
    def d_proj(self) -> int:
        return int(self._d_proj or 0)

    def examples(self, histories: Sequence) -> list[bytes]:
        from serving.examples import make_example

        out = []
        for h in histories:
            frame = history_frame(h)
            items = frame[ITEM].astype(str).tolist() if ITEM in frame.columns else []
            ts = (pd.to_numeric(frame[TIMESTAMP], errors="coerce").fillna(0).astype(np.int64).tolist()
                  if TIMESTAMP in frame.columns else None)
            meta = {}
            for col in frame.columns:
                if col in (ITEM, TIMESTAMP, USER, "weight"):
                    continue
                if self.feature_types and col not in self.feature_types:
                    continue
                meta[col] = frame[col].tolist()
            out.append(make_example(items, ts, meta, feature_types=self.feature_types).SerializeToString())
        return out

    def _call(self, histories: Sequence) -> dict:
        import tensorflow as tf

        from serving import contract

        examples = self.examples(histories)
        raw = self._fn(**{contract.EXAMPLES_INPUT: tf.constant(examples, dtype=tf.string)})
        out = {}
        for key, value in raw.items():
            arr = value.numpy()
            if arr.dtype.kind in "SO":
                arr = np.array([v.decode("utf-8", "replace") if isinstance(v, bytes) else v
                                for v in arr.reshape(-1)], dtype=object).reshape(arr.shape)
            out[key] = arr
        if not self.kinds:
            self.kinds = {h: _guess_kind(out.get(intent_key(h))) for h in self.heads}
        for h in self.heads:
            if not self.labels.get(h) and intent_key(h) in out:
                self.labels[h] = [str(i) for i in range(out[intent_key(h)].shape[-1])]
        return out

    def infer(self, histories: Sequence) -> dict:
        out = self._call(histories)
        return {k: v for k, v in out.items() if k not in (TOP_K_IDS, TOP_K_SCORES, "primary_intent")}

    def recommend(self, histories: Sequence, k: int = 10) -> dict:
        out = self._call(histories)
        out[TOP_K_IDS] = out[TOP_K_IDS][:, :k]
        out[TOP_K_SCORES] = out[TOP_K_SCORES][:, :k].astype(np.float32)
        out.pop("primary_intent", None)
        return out


def _kinds_from_schema(dataset, heads) -> dict:
    schema = getattr(dataset, "schema", None)
    if schema is None:
        return {}
    kinds = {spec.column: spec.kind for spec in schema.intents}
    return {h: kinds[h] for h in heads if h in kinds} if all(h in kinds for h in heads) else {}


def _guess_kind(probs) -> str:
    if probs is None or not len(probs):
        return "single"
    return "single" if np.allclose(probs.sum(-1), 1.0, atol=1e-3) else "multi"


def find_saved_model(path) -> Optional[str]:
    """The version dir to load from a version dir, `<root>/<name>` or `<root>` (one
    model): the highest numeric version holding a saved_model.pb. None if not one."""
    from serving import contract
    from serving.versions import latest_version

    path = str(path)
    if not os.path.isdir(path):
        return None
    if os.path.exists(os.path.join(path, contract.SAVED_MODEL_PB)):
        return path

    def versions(d):
        # The highest version holding a saved_model.pb, by TF Serving's rule (int64 names).
        v = latest_version(d, complete=True)
        return [(v, os.path.join(d, str(v)))] if v is not None else []

    found = versions(path)
    if found:
        return found[-1][1]
    subdirs = [os.path.join(path, d) for d in sorted(os.listdir(path)) if os.path.isdir(os.path.join(path, d))]
    candidates = [versions(d) for d in subdirs]
    candidates = [c for c in candidates if c]
    if len(candidates) == 1:
        return candidates[0][-1][1]
    if len(candidates) > 1:
        names = [os.path.basename(os.path.dirname(c[-1][1])) for c in candidates]
        raise ValueError(f"{path} holds several models ({', '.join(names)}); pass <root>/<name>")
    return None


def load_intent_model(path, dataset=None, preprocessor=None) -> IntentModel:
    """A `.keras` file, a model.train run dir, or a TF-Serving SavedModel (version dir,
    `<root>/<name>` or `<root>`) → `IntentModel`."""
    p = pathlib.Path(path)
    if p.is_file() and p.suffix == ".keras":
        return load_keras_model(p, dataset, preprocessor)
    if p.is_dir() and (p / "model.keras").exists():
        return load_keras_model(p, dataset, preprocessor)
    version_dir = find_saved_model(p)
    if version_dir is not None:
        return SavedModelIntentModel(version_dir, dataset=dataset)
    raise FileNotFoundError(f"{path}: neither a .keras file, a run dir with model.keras, nor a SavedModel "
                            f"(<root>/<name>/<version>/saved_model.pb)")


# --------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------
def label_names(labels: Sequence[str]) -> list[str]:
    """Labels without the reserved padding / OOV slots."""
    return list(labels)[NUM_RESERVED_IDS:]
