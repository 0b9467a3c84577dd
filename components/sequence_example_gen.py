"""SequenceExampleGen: raw interaction logs -> one tf.Example per user and split.

A TFX ExampleGen (a `FileBasedExampleGen` subclass, so it keeps the span/version/
fingerprint driver that makes caching notice new data, and the Vertex AI step
builder) whose executor reads interaction logs through the dataset adapters
(`datasets.load`), groups the interactions by user, sorts them by time and writes
leave-one-out splits that never show a user's future to training:

==========  =====================================  ====================================
split       sequence written (oldest first)        what Transform makes of it
==========  =====================================  ====================================
``train``   t = s[:-2] (s when the user has 2)     inputs t[:-1], targets t[1:] everywhere
``eval``    s[:-1] (last n + 1)                    inputs s[:-2], target s[-2] at the end
``test``    s     (last n + 1)                     inputs s[:-1], target s[-1] at the end
==========  =====================================  ====================================

With ``train_windows="sliding"`` the train split also gets the earlier windows of t
(stride n, ``label_mode`` 3), as `datasets.encode(..., train_windows="sliding")`.

These are exactly the rows of the numpy reference encoder (`datasets.encoder`):
users with one interaction are dropped, users with two give a train row only, users
with three give eval/test rows only. The train sequence is written whole (not cut to
n) so that Transform fits vocabularies and statistics on the same *training portion*
as the numpy encoder; `max_train_history` caps it for very long histories.

Each tf.Example holds list features, one value per interaction (see
`serving/contract.py`): ``item_id`` (bytes), ``timestamp`` (int64), one bytes list
per categorical and multi-label column ("|"-joined labels), one float list per
numeric column (NaN = missing) and ``weight``; plus scalars ``label_mode``
(1 train, 2 eval/test; serving requests leave it out = 0), ``user_id``,
``history_length`` and ``history_bucket`` (for evaluation slices). Eval/test
examples also list in ``seen_item_id`` every distinct item of the user's whole history
before the target (not only the n written): the seen-item filter of the evaluation
(`datasets.encoder.Split.seen`). Train examples carry it empty, so that the schema
inferred from the train split has it.

Sources (``source_config``, a JSON string):

- ``{"mode": "adapter", "adapter": "movielens", "adapter_kwargs": {...}}``: the
  adapter loads the whole dataset in one Beam worker (needed when the adapter
  derives features from a user's whole history, as MovieLens' causal action type),
  then grouping and example building run in parallel.
- ``{"mode": "shards", "adapter": "generic", "adapter_kwargs": {...}}``: the adapter
  parses every file under ``input_base`` matching the input pattern separately, in
  parallel (``path`` is filled in per file); users may span files.

Malformed rows never stop the run: the adapters reject them with a reason, this
executor re-checks the canonical rows, and everything rejected is counted and
described in the ``rejected`` output (``summary.json`` + ``rejected-*.jsonl``). The
counts are also set as custom properties of the ``examples`` artifact.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any, Dict, Iterable, List, Optional

import apache_beam as beam
import numpy as np
import tensorflow as tf
from absl import logging

from tfx import types
from tfx.components.example_gen import component as example_gen_component
from tfx.components.example_gen import write_split
from tfx.components.example_gen.base_example_gen_executor import BaseExampleGenExecutor
from tfx.dsl.components.base import base_beam_component, executor_spec
from tfx.proto import example_gen_pb2
from tfx.types import artifact, artifact_utils, channel, standard_artifacts, standard_component_specs
from tfx.types.component_spec import ChannelParameter, ExecutionParameter
from tfx.utils import proto_utils

from datasets.schema import ITEM, TIMESTAMP, USER, WEIGHT, InteractionSchema

SPLITS = ("train", "eval", "test")
SOURCE_CONFIG_KEY = "source_config"
REJECTED_KEY = "rejected"

# Scalar features written besides the per-interaction lists.
LABEL_MODE = "label_mode"
LABEL_MODE_SERVE, LABEL_MODE_TRAIN, LABEL_MODE_EVAL = 0, 1, 2
# An earlier training window ("sliding" windows): trained on like LABEL_MODE_TRAIN, but
# its rows are already in the user's LABEL_MODE_TRAIN example, so Transform's
# analyzers skip it (vocabularies and statistics count every training row once).
LABEL_MODE_TRAIN_WINDOW = 3
USER_FEATURE = "user_id"
SEEN_ITEMS = "seen_item_id"
HISTORY_LENGTH = "history_length"
HISTORY_BUCKET = "history_bucket"
# Upper bounds (inclusive) of the history-length evaluation slices.
HISTORY_BUCKET_BOUNDS = (5, 20, 50, 200)

SUMMARY_FILE = "summary.json"
REJECTED_FILE_PREFIX = "rejected"
MAX_REJECTED_EXAMPLES_PER_REASON = 100


class RejectedRows(artifact.Artifact):
    """Rows the ExampleGen dropped: summary.json (counts by reason) + rejected-*.jsonl."""

    TYPE_NAME = "intentrec.RejectedRows"  # KFP v2 wants "<namespace>.<Name>"


class SequenceExampleGenSpec(standard_component_specs.FileBasedExampleGenSpec):
    PARAMETERS = {
        **standard_component_specs.FileBasedExampleGenSpec.PARAMETERS,
        SOURCE_CONFIG_KEY: ExecutionParameter(type=str),
    }
    INPUTS = {}
    OUTPUTS = {
        **standard_component_specs.FileBasedExampleGenSpec.OUTPUTS,
        REJECTED_KEY: ChannelParameter(type=RejectedRows),
    }


def history_bucket(length: int) -> str:
    lo = 1
    for hi in HISTORY_BUCKET_BOUNDS:
        if length <= hi:
            return f"{lo:03d}-{hi:03d}"
        lo = hi + 1
    return f"{lo:03d}+"


# --------------------------------------------------------------------------------------
# Per-user example building (pure python, unit-testable)
# --------------------------------------------------------------------------------------
def _bytes(values) -> tf.train.Feature:
    return tf.train.Feature(bytes_list=tf.train.BytesList(
        value=[("" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)).encode("utf-8")
               for v in values]))


def _ints(values) -> tf.train.Feature:
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(v) for v in values]))


def _floats(values) -> tf.train.Feature:
    return tf.train.Feature(float_list=tf.train.FloatList(value=[float(v) for v in values]))


def make_sequence_example(user_id: str, rows: Dict[str, np.ndarray], schema: InteractionSchema,
                          label_mode: int, history_length: int, seen=()) -> tf.train.Example:
    """One tf.Example from column arrays of one user's (already sliced) interactions;
    `seen`: the items of the user's history before the target (eval/test)."""
    f = {
        USER_FEATURE: _bytes([user_id]),
        ITEM: _bytes(rows[ITEM]),
        TIMESTAMP: _ints(rows[TIMESTAMP]),
        LABEL_MODE: _ints([label_mode]),
        HISTORY_LENGTH: _ints([history_length]),
        HISTORY_BUCKET: _bytes([history_bucket(history_length)]),
        SEEN_ITEMS: _bytes(dict.fromkeys(seen)),  # distinct, in order: a filter, not a sequence
    }
    for c in (*schema.categorical, *schema.multi_label):
        f[c] = _bytes(rows[c])
    for c in schema.numeric:
        f[c] = _floats(rows[c])
    if schema.has_weight:
        f[WEIGHT] = _floats(rows[WEIGHT])
    return tf.train.Example(features=tf.train.Features(feature=f))


def user_examples(user_id: str, rows: Dict[str, np.ndarray], schema: InteractionSchema, max_len: int,
                  max_train_history: Optional[int] = None, train_windows: str = "last") -> List[tuple]:
    """(split, tf.Example) pairs of one user; `rows` sorted oldest first.

    Mirrors `datasets.encoder.encode`: train_windows="last" trains on the last n
    positions of the training sequence; "sliding" adds the earlier non-overlapping
    windows (stride n) so that every training target is used.
    """
    if train_windows not in ("last", "sliding"):
        raise ValueError("train_windows must be 'last' or 'sliding'")
    m = len(rows[ITEM])
    n = int(max_len)
    out = []

    def take(lo, hi):
        return {k: v[lo:hi] for k, v in rows.items()}

    if m < 2:
        return out
    train_len = m - 2 if m >= 3 else m
    # Users with 3 interactions have a 1-row training sequence: no target, but its row
    # belongs to the training portion that vocabularies and statistics are fitted on
    # (the Trainer skips rows without any target).
    if train_len >= 1:
        lo = 0 if not max_train_history else max(0, train_len - int(max_train_history))
        out.append(("train", make_sequence_example(user_id, take(lo, train_len), schema, LABEL_MODE_TRAIN,
                                                   history_length=train_len - 1)))
        if train_windows == "sliding":
            # Window k ends its inputs at e = (train_len - 2) - k * n; its sequence is
            # t[e - n + 1 : e + 2] (inputs, then the last target).
            e = train_len - 2 - n
            while e >= 0:
                out.append(("train", make_sequence_example(
                    user_id, take(max(0, e - n + 1), e + 2), schema, LABEL_MODE_TRAIN_WINDOW,
                    history_length=e + 1)))
                e -= n
    if m >= 3:
        # eval: s[:-1] -> inputs s[:-2], target s[-2]; test: s -> inputs s[:-1], target s[-1].
        items = rows[ITEM]
        out.append(("eval", make_sequence_example(user_id, take(max(0, m - 1 - (n + 1)), m - 1), schema,
                                                  LABEL_MODE_EVAL, history_length=m - 2, seen=items[:m - 2])))
        out.append(("test", make_sequence_example(user_id, take(max(0, m - (n + 1)), m), schema,
                                                  LABEL_MODE_EVAL, history_length=m - 1, seen=items[:m - 1])))
    return out


# --------------------------------------------------------------------------------------
# Canonical row checks (defence in depth: the adapters already validate)
# --------------------------------------------------------------------------------------
def check_canonical(frame, schema: InteractionSchema, source: str):
    """-> (kept frame, list of rejected dicts). Missing canonical columns raise."""
    import pandas as pd

    missing = [c for c in schema.columns if c not in frame.columns]
    if missing:
        raise ValueError(
            f"{source}: the data lacks columns {missing} of the configured interaction schema "
            f"(columns: {list(frame.columns)}). Check the pipeline's interaction_schema / adapter.")
    bad_reason = pd.Series("", index=frame.index, dtype=object)

    def mark(mask, reason):
        nonlocal bad_reason
        mask = mask & (bad_reason == "")
        bad_reason = bad_reason.where(~mask, reason)

    def is_missing(s):
        return s.isna() | (s.astype(str).str.strip() == "")

    mark(is_missing(frame[USER]), "missing_user")
    mark(is_missing(frame[ITEM]), "missing_item")
    ts = pd.to_numeric(frame[TIMESTAMP], errors="coerce")
    mark(ts.isna() | ~np.isfinite(ts.astype(float)), "bad_timestamp")
    for c in schema.numeric:
        x = pd.to_numeric(frame[c], errors="coerce")
        mark(x.isna() & ~frame[c].isna() & ~is_missing(frame[c].astype(object)), f"bad_numeric:{c}")
    if schema.has_weight:
        w = pd.to_numeric(frame[WEIGHT], errors="coerce")
        mark((w < 0) | np.isinf(w), "bad_weight")
    bad = bad_reason != ""
    rejected = []
    if bad.any():
        for idx in np.flatnonzero(bad.to_numpy()):
            row = frame.iloc[idx]
            rejected.append({"reason": bad_reason.iloc[idx], "source": source,
                             "row": {c: _jsonable(row[c]) for c in schema.columns}})
    return frame.loc[~bad], rejected


def _jsonable(v):
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating, float)):
        return None if math.isnan(v) else float(v)
    return v if isinstance(v, (int, str)) or v is None else str(v)


def frame_to_user_chunks(frame, schema: InteractionSchema, order_base: int) -> Iterable[tuple]:
    """(user_id, chunk) per user of a canonical frame; chunk = column arrays + `_order`."""
    import pandas as pd

    frame = frame.reset_index(drop=True)
    cols = {ITEM: frame[ITEM].astype(str).str.strip().to_numpy(dtype=object),
            TIMESTAMP: pd.to_numeric(frame[TIMESTAMP]).to_numpy(dtype=np.int64)}
    for c in (*schema.categorical, *schema.multi_label):
        cols[c] = frame[c].where(~frame[c].isna(), "").astype(str).to_numpy(dtype=object)
    for c in schema.numeric:
        cols[c] = pd.to_numeric(frame[c], errors="coerce").to_numpy(dtype=np.float64)
    if schema.has_weight:
        cols[WEIGHT] = pd.to_numeric(frame[WEIGHT], errors="coerce").to_numpy(dtype=np.float64)
    cols["_order"] = order_base + np.arange(len(frame), dtype=np.int64)
    users = frame[USER].astype(str).str.strip().to_numpy(dtype=object)
    codes, uniques = pd.factorize(users)
    order = np.argsort(codes, kind="stable")
    bounds = np.flatnonzero(np.diff(codes[order])) + 1
    for part in np.split(order, bounds):
        if len(part) == 0:
            continue
        yield str(uniques[codes[part[0]]]), {k: v[part] for k, v in cols.items()}


# --------------------------------------------------------------------------------------
# Beam
# --------------------------------------------------------------------------------------
def _report_rejections(report, source: str) -> List[dict]:
    """Adapter IngestReport -> rejected entries (the adapter keeps a few examples per reason)."""
    out = []
    if report is None:
        return out
    for reason, count in sorted(getattr(report, "rejected", {}).items()):
        examples = list(getattr(report, "examples", {}).get(reason, []))
        out.append({"reason": str(reason), "source": source, "count": int(count),
                    "examples": examples, "from": "adapter"})
    return out


class _LoadSource(beam.DoFn):
    """Loads one source (whole dataset or one file) through the adapter."""

    def __init__(self, adapter: str, adapter_kwargs: dict, schema: dict, path_key: Optional[str]):
        self._adapter = adapter
        self._kwargs = dict(adapter_kwargs)
        self._schema = schema
        self._path_key = path_key

    def process(self, element):
        import datasets

        index, path = element
        schema = InteractionSchema.from_dict(self._schema)
        kwargs = dict(self._kwargs)
        source = self._adapter
        if self._path_key:
            kwargs[self._path_key] = path
            source = path
        from datasets import registry

        try:
            ds = registry.get_loader(self._adapter)(**kwargs)  # kwargs may hold "name"
        except datasets.DatasetError as e:  # a whole unusable file: count it, keep going
            yield beam.pvalue.TaggedOutput("rejected", {"reason": "unreadable_source", "source": source,
                                                        "count": 1, "examples": [str(e)[:2000]]})
            yield beam.pvalue.TaggedOutput("counts", ("sources_unreadable", 1))
            return
        if ds.schema.to_dict() != schema.to_dict():
            raise ValueError(
                f"{source}: the adapter's interaction schema {ds.schema.to_dict()} differs from the "
                f"pipeline's configured schema {schema.to_dict()}; regenerate the pipeline config.")
        rep = ds.report
        for r in _report_rejections(rep, source):
            yield beam.pvalue.TaggedOutput("rejected", r)
        yield beam.pvalue.TaggedOutput("counts", ("rows_read", int(getattr(rep, "rows_read", len(ds)))))
        yield beam.pvalue.TaggedOutput("counts", ("rows_rejected_by_adapter", int(rep.rows_rejected)))
        frame, rejected = check_canonical(ds.interactions, schema, source)
        for r in rejected[:MAX_REJECTED_EXAMPLES_PER_REASON * 10]:
            yield beam.pvalue.TaggedOutput("rejected", r)
        yield beam.pvalue.TaggedOutput("counts", ("rows_rejected_by_examplegen", len(rejected)))
        yield beam.pvalue.TaggedOutput("counts", ("rows_kept", len(frame)))
        for user, chunk in frame_to_user_chunks(frame, schema, order_base=int(index) << 40):
            yield user, chunk


class _BuildExamples(beam.DoFn):
    def __init__(self, schema: dict, max_len: int, max_train_history: Optional[int], train_windows: str):
        self._schema = schema
        self._max_len = max_len
        self._max_train_history = max_train_history
        self._train_windows = train_windows

    def setup(self):
        self._s = InteractionSchema.from_dict(self._schema)

    def process(self, element):
        user, chunks = element
        chunks = list(chunks)
        rows = {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}
        order = np.lexsort((rows["_order"], rows[TIMESTAMP]))
        rows = {k: v[order] for k, v in rows.items() if k != "_order"}
        m = len(rows[ITEM])
        yield beam.pvalue.TaggedOutput("counts", ("users", 1))
        if m < 2:
            yield beam.pvalue.TaggedOutput("counts", ("users_dropped_single_interaction", 1))
            return
        for split, ex in user_examples(user, rows, self._s, self._max_len, self._max_train_history,
                                       self._train_windows):
            yield beam.pvalue.TaggedOutput("counts", (f"examples_{split}", 1))
            yield beam.pvalue.TaggedOutput(split, ex.SerializeToString())


def _write_json(obj, path):
    with tf.io.gfile.GFile(path, "w") as f:
        f.write(json.dumps(obj, indent=1, sort_keys=True))


@beam.ptransform_fn
def _WriteSummary(counts, path: str, source: str):  # pylint: disable=invalid-name
    def to_dict(pairs):
        d = {}
        for k, v in pairs:
            d[k] = d.get(k, 0) + int(v)
        d["source"] = source
        return d

    return (counts
            | "SumPerKey" >> beam.CombinePerKey(sum)
            | "ToList" >> beam.combiners.ToList()
            | "ToDict" >> beam.Map(to_dict)
            | "Write" >> beam.Map(_write_json, path))


def _cap_per_reason(rejected):
    """Keep at most MAX_REJECTED_EXAMPLES_PER_REASON entries per reason (counts stay exact)."""
    return (rejected
            | "KeyByReason" >> beam.Map(lambda r: (r["reason"], r))
            | "Sample" >> beam.combiners.Sample.FixedSizePerKey(MAX_REJECTED_EXAMPLES_PER_REASON)
            | "Flatten" >> beam.FlatMap(lambda kv: kv[1]))


def list_source_files(input_base: str, pattern: str) -> List[str]:
    files = sorted(tf.io.gfile.glob(os.path.join(input_base, pattern)))
    return [f for f in files if not tf.io.gfile.isdir(f)]


class Executor(BaseExampleGenExecutor):
    """Beam executor of SequenceExampleGen."""

    def GetInputSourceToExamplePTransform(self) -> beam.PTransform:  # pragma: no cover - unused
        raise NotImplementedError("SequenceExampleGen builds its splits in GenerateExamplesByBeam")

    def GenerateExamplesByBeam(self, pipeline, exec_properties):
        """-> ({split: PCollection[bytes]}, rejected PCollection, counts PCollection)."""
        source = json.loads(exec_properties[SOURCE_CONFIG_KEY])
        schema = source["schema"]
        mode = source.get("mode", "adapter")
        input_base = exec_properties[standard_component_specs.INPUT_BASE_KEY]
        input_config = example_gen_pb2.Input()
        proto_utils.json_to_proto(exec_properties[standard_component_specs.INPUT_CONFIG_KEY], input_config)
        if mode == "shards":
            files = list_source_files(input_base, input_config.splits[0].pattern)
            if not files:
                raise ValueError(f"no input files match {input_config.splits[0].pattern!r} under {input_base}")
            elements = list(enumerate(files))
            path_key = source.get("path_key", "path")
        elif mode == "adapter":
            elements = [(0, input_base)]
            path_key = None
        else:
            raise ValueError(f"unknown source mode {mode!r} (expected 'adapter' or 'shards')")

        loaded = (pipeline
                  | "Sources" >> beam.Create(elements)
                  | "Reshuffle" >> beam.Reshuffle()
                  | "Load" >> beam.ParDo(_LoadSource(source["adapter"], source.get("adapter_kwargs", {}),
                                                     schema, path_key)).with_outputs(
                      "rejected", "counts", main="chunks"))
        built = (loaded.chunks
                 | "GroupByUser" >> beam.GroupByKey()
                 | "BuildExamples" >> beam.ParDo(_BuildExamples(
                     schema, int(source["max_len"]), source.get("max_train_history"),
                     source.get("train_windows", "last"))).with_outputs(
                         "counts", *SPLITS))
        counts = (loaded.counts, built.counts) | "FlattenCounts" >> beam.Flatten()
        return {s: built[s] for s in SPLITS}, loaded.rejected, counts

    def Do(self, input_dict: Dict[str, List[types.Artifact]], output_dict: Dict[str, List[types.Artifact]],
           exec_properties: Dict[str, Any]) -> None:
        self._log_startup(input_dict, output_dict, exec_properties)
        examples = artifact_utils.get_single_instance(output_dict[standard_component_specs.EXAMPLES_KEY])
        examples.split_names = artifact_utils.encode_split_names(list(SPLITS))
        rejected_artifact = artifact_utils.get_single_instance(output_dict[REJECTED_KEY])
        summary_path = os.path.join(rejected_artifact.uri, SUMMARY_FILE)
        source = json.loads(exec_properties[SOURCE_CONFIG_KEY])
        with self._make_beam_pipeline() as p:
            splits, rejected, counts = self.GenerateExamplesByBeam(p, exec_properties)
            for split, pcoll in splits.items():
                _ = pcoll | f"WriteSplit[{split}]" >> write_split.WriteSplit(
                    artifact_utils.get_split_uri([examples], split),
                    example_gen_pb2.FORMAT_TFRECORDS_GZIP, exec_properties)
            rejected_counts = rejected | "RejectedCounts" >> beam.Map(
                lambda r: (f"rejected:{r['reason']}", int(r.get("count", 1))))
            all_counts = (counts, rejected_counts) | "AllCounts" >> beam.Flatten()
            _ = all_counts | "Summary" >> _WriteSummary(summary_path, source.get("adapter", ""))
            _ = (_cap_per_reason(rejected)
                 | "ToJson" >> beam.Map(lambda r: json.dumps(r, sort_keys=True, default=str))
                 | "WriteRejected" >> beam.io.WriteToText(
                     os.path.join(rejected_artifact.uri, REJECTED_FILE_PREFIX), file_name_suffix=".jsonl"))

        with tf.io.gfile.GFile(summary_path) as f:
            summary = json.load(f)
        rows_rejected = sum(v for k, v in summary.items() if k.startswith("rejected:"))
        summary["rows_rejected"] = rows_rejected
        summary["rejected_by_reason"] = {k.split(":", 1)[1]: v for k, v in summary.items()
                                         if k.startswith("rejected:")}
        _write_json(summary, summary_path)
        for key in ("rows_read", "rows_kept", "rows_rejected", "users", "users_dropped_single_interaction",
                    "examples_train", "examples_eval", "examples_test"):
            examples.set_int_custom_property(key, int(summary.get(key, 0)))
            rejected_artifact.set_int_custom_property(key, int(summary.get(key, 0)))
        examples.set_string_custom_property("interaction_schema", json.dumps(source["schema"], sort_keys=True))
        for split in SPLITS:
            if not summary.get(f"examples_{split}"):
                raise ValueError(f"SequenceExampleGen wrote no {split} examples (summary: {summary}); "
                                 "the data needs users with at least 4 interactions.")
        _set_formats(examples)
        logging.info("SequenceExampleGen: %s", json.dumps(summary, sort_keys=True))


def _set_formats(examples):
    from tfx.components.util import examples_utils

    examples_utils.set_payload_format(examples, example_gen_pb2.FORMAT_TF_EXAMPLE)
    examples_utils.set_file_format(examples, write_split.to_file_format_str(example_gen_pb2.FORMAT_TFRECORDS_GZIP))


class SequenceExampleGen(example_gen_component.FileBasedExampleGen):
    """Per-user leave-one-out tf.Examples from interaction logs read through `datasets` adapters.

    Args:
        input_base: directory of the raw files (fingerprinted by the driver, so new data
            invalidates the cache; in "shards" mode also the files to read).
        source: dict with "mode" ("adapter" | "shards"), "adapter", "adapter_kwargs",
            "schema" (`InteractionSchema.to_dict()`), "max_len" and optionally
            "max_train_history", "train_windows" ("last" | "sliding") and "path_key"
            (adapter argument that takes the file).
        input_pattern: files under `input_base` to fingerprint (and read, "shards").
    """

    SPEC_CLASS = SequenceExampleGenSpec
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(Executor)

    def __init__(self, input_base: str, source: dict, input_pattern: str = "*"):
        input_config = example_gen_pb2.Input(splits=[
            example_gen_pb2.Input.Split(name="raw", pattern=input_pattern)])
        output_config = example_gen_pb2.Output(split_config=example_gen_pb2.SplitConfig(splits=[
            example_gen_pb2.SplitConfig.Split(name=s, hash_buckets=1) for s in SPLITS]))
        spec = SequenceExampleGenSpec(
            input_base=input_base,
            input_config=input_config,
            output_config=output_config,
            output_data_format=example_gen_pb2.FORMAT_TF_EXAMPLE,
            output_file_format=example_gen_pb2.FORMAT_TFRECORDS_GZIP,
            source_config=json.dumps(source, sort_keys=True),
            examples=channel.Channel(type=standard_artifacts.Examples),
            rejected=channel.Channel(type=RejectedRows))
        base_beam_component.BaseBeamComponent.__init__(self, spec=spec)


__all__ = ["SequenceExampleGen", "RejectedRows", "user_examples", "make_sequence_example", "SPLITS",
           "LABEL_MODE", "LABEL_MODE_SERVE", "LABEL_MODE_TRAIN", "LABEL_MODE_EVAL", "LABEL_MODE_TRAIN_WINDOW", "HISTORY_BUCKET",
           "HISTORY_LENGTH", "USER_FEATURE", "SEEN_ITEMS"]
