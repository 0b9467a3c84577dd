"""The `--dataset` / `--data-arg` arguments every command line shares, and their resolution.

    p = argparse.ArgumentParser()
    datasets.cli.add_dataset_arguments(p)
    args = p.parse_args()
    dataset, data_args = datasets.cli.dataset_from_args(args)

`--dataset` takes an alias (`synthetic-small`, `ml-100k`, `ecommerce-small`, ...), an
adapter name, or `adapter:path`; `--data-arg KEY=VALUE` (repeatable) passes adapter
arguments, JSON-decoded where they parse (`num_users=2000`) and strings otherwise.
Everything goes through `datasets.resolve`, so every tool reads a dataset the same way.
"""

from __future__ import annotations

import argparse
import json
from typing import Iterable, Optional

from datasets.registry import aliases, resolve


def parse_key_values(pairs: Iterable[str], what: str = "--data-arg") -> dict:
    """`["k=v", ...]` → `{k: JSON value or string}`."""
    out = {}
    for pair in pairs or ():
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"{what} expects KEY=VALUE, got {pair!r}")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def add_dataset_arguments(parser: argparse.ArgumentParser, default: Optional[str] = "synthetic",
                          required: bool = False) -> None:
    parser.add_argument("--dataset", default=None if required else default, required=required,
                        help=f"dataset alias, adapter name or adapter:path ({', '.join(aliases())})")
    parser.add_argument("--data-arg", action="append", default=[], metavar="KEY=VALUE",
                        help="adapter argument, e.g. path=../shared/data/ml-100k or num_users=2000 (repeatable)")


def dataset_from_args(args: argparse.Namespace):
    """(the `Dataset`, the adapter arguments) of parsed `--dataset` / `--data-arg`."""
    data_args = parse_key_values(args.data_arg)
    return resolve(args.dataset, **data_args), data_args
