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
import os
from typing import Any, Dict, List, Optional

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

from components.sequence_examples import (  # noqa: F401  (re-exported: the component's public names)
    HISTORY_BUCKET,
    HISTORY_BUCKET_BOUNDS,
    HISTORY_LENGTH,
    LABEL_MODE,
    LABEL_MODE_EVAL,
    LABEL_MODE_SERVE,
    LABEL_MODE_TRAIN,
    LABEL_MODE_TRAIN_WINDOW,
    SEEN_ITEMS,
    USER_FEATURE,
    check_canonical,
    frame_to_user_chunks,
    history_bucket,
    make_sequence_example,
    user_examples,
)
from datasets.schema import ITEM, TIMESTAMP, InteractionSchema

SPLITS = ("train", "eval", "test")
SOURCE_CONFIG_KEY = "source_config"
REJECTED_KEY = "rejected"


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
