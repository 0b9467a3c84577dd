"""Data sources for the pipeline: adapter configs, sharded canonical logs, schema lookup."""

from __future__ import annotations

import importlib
import json
import os
from typing import Any, Dict, Optional

from pipeline.configs import DataConfig

SOURCE_FILE = "source.json"


def synthetic_source(data_dir: str, **kwargs) -> DataConfig:
    """The synthetic generator (datasets.synthetic) as a source.

    The adapter needs no files, but the ExampleGen driver fingerprints `input_base`:
    a small `source.json` holding the generator arguments is that input, so changing
    them is new data for the cache.
    """
    os.makedirs(data_dir, exist_ok=True)
    path = os.path.join(data_dir, SOURCE_FILE)
    doc = {"adapter": "synthetic", "adapter_kwargs": kwargs}
    text = json.dumps(doc, sort_keys=True)
    if not os.path.exists(path) or open(path).read() != text:
        with open(path, "w") as f:
            f.write(text)
    return DataConfig(input_base=data_dir, adapter="synthetic", adapter_kwargs=dict(kwargs), mode="adapter",
                      input_pattern=SOURCE_FILE)


def movielens_source(path: str) -> DataConfig:
    """A MovieLens directory (read in place; never copied)."""
    return DataConfig(input_base=path, adapter="movielens", adapter_kwargs={"path": path}, mode="adapter",
                      input_pattern="u.*" if os.path.exists(os.path.join(path, "u.data")) else "*")


def generic_kwargs_for(schema, name: str = "log") -> Dict[str, Any]:
    """`datasets.generic` arguments that read canonical columns back as they are."""
    from datasets.schema import ITEM, TIMESTAMP, USER, WEIGHT

    cols = {"user": USER, "item": ITEM, "timestamp": TIMESTAMP}
    for c in (*schema.categorical, *schema.multi_label, *schema.numeric):
        cols[c] = c
    kw = {"columns": cols, "categorical": list(schema.categorical), "multi_label": list(schema.multi_label),
          "numeric": list(schema.numeric),
          "intents": [i.column for i in schema.intents], "timestamp_unit": "s", "name": name, "fmt": "csv",
          "sep": ","}
    if schema.has_weight:
        kw["weight"] = WEIGHT
    if schema.weight_from:
        kw["weight_from"] = schema.weight_from
    return kw


def write_sharded_log(dataset, out_dir: str, num_shards: int = 8, by_user: bool = False) -> DataConfig:
    """Writes a Dataset's canonical interactions as `num_shards` CSV files and returns a
    "shards" source reading them with the generic adapter, one file per Beam element.

    Rows are dealt round-robin (by_user=False), so a user's interactions span files, as
    in real logs; the ExampleGen groups them back.
    """
    import numpy as np

    os.makedirs(out_dir, exist_ok=True)
    df = dataset.interactions
    if by_user:
        shard = np.asarray(df["user_id"].map(hash).to_numpy() % num_shards)
    else:
        shard = np.arange(len(df)) % num_shards
    for i in range(num_shards):
        df[shard == i].to_csv(os.path.join(out_dir, f"part-{i:05d}.csv"), index=False)
    kw = generic_kwargs_for(dataset.schema, name=dataset.name)
    return DataConfig(input_base=out_dir, adapter="generic", adapter_kwargs=kw, mode="shards",
                      input_pattern="part-*.csv", interaction_schema=_generic_schema(kw))


def _generic_schema(kw) -> dict:
    from datasets.generic import declared_schema

    return declared_schema(**kw).to_dict()


def resolve_interaction_schema(data: DataConfig) -> Dict[str, Any]:
    """The InteractionSchema (dict) the source produces, without loading the data when the
    adapter declares it (module-level SCHEMA)."""
    if data.interaction_schema:
        return dict(data.interaction_schema)
    from datasets import registry

    loader = registry.get_loader(data.adapter)
    module = importlib.import_module(loader.__module__)
    if data.adapter == "generic" or not hasattr(module, "SCHEMA"):
        if data.adapter == "generic":
            return _generic_schema(data.adapter_kwargs)
        ds = _load_small(data)
        return ds.schema.to_dict()
    return module.SCHEMA.to_dict()


def _load_small(data: DataConfig):
    import datasets

    kwargs = dict(data.adapter_kwargs)
    try:
        return datasets.load(data.adapter, max_rows=1000, **kwargs)
    except TypeError:
        return datasets.load(data.adapter, **kwargs)


def item_titles(dataset) -> Dict[str, str]:
    items = getattr(dataset, "items", None)
    if items is None or "item_id" not in items.columns:
        return {}
    titles = items["title"] if "title" in items.columns else items["item_id"]
    return {str(i): str(t) for i, t in zip(items["item_id"], titles.fillna(""))}


def write_item_titles(dataset, path: str) -> str:
    """item_id -> title JSON (the exported model's metadata shows titles)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump(item_titles(dataset), f)
    return path
