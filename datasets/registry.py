"""Name -> adapter registry: `datasets.load("synthetic", num_users=500, seed=0)`."""

from __future__ import annotations

import importlib
from typing import Callable, Union

from datasets.dataset import Dataset

# Adapters are imported lazily so that `import datasets` stays cheap.
_REGISTRY: dict[str, Union[str, Callable[..., Dataset]]] = {
    "synthetic": "datasets.synthetic:load",
    "movielens": "datasets.movielens:load",
    "generic": "datasets.generic:load",
    "taobao": "datasets.generic:load_taobao",  # = generic with preset="taobao"
    "sequences": "datasets.sequence_lists:load",
    "taobao-synthetic": "datasets.ecommerce_synthetic:load",  # generated UserBehavior.csv via the taobao preset
}


def register(name: str, loader: Callable[..., Dataset]) -> None:
    """Add (or replace) an adapter: `loader(**kwargs) -> Dataset`."""
    _REGISTRY[name] = loader


def available() -> list[str]:
    return sorted(_REGISTRY)


def get_loader(name: str) -> Callable[..., Dataset]:
    try:
        target = _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown dataset {name!r}; available: {available()}") from None
    if isinstance(target, str):
        module, func = target.split(":")
        target = getattr(importlib.import_module(module), func)
    return target


def load(name: str, **kwargs) -> Dataset:
    """Load dataset `name` with adapter-specific keyword arguments."""
    return get_loader(name)(**kwargs)


# Short names for the command lines: `--dataset ml-100k` instead of
# `--dataset movielens --data-arg path=...`. MovieLens aliases look for the
# files under $INTENTREC_DATA_DIR (default: ../shared/data next to the repo).
_SIZES = {"synthetic-tiny": 200, "synthetic-small": 1000, "synthetic": 3000, "synthetic-large": 25000}
_ECOMMERCE_SIZES = {"ecommerce-small": 1000, "ecommerce": 3000}
_MOVIELENS = ("ml-100k", "ml-1m", "ml-10m", "ml-20m", "ml-25m")


def data_dir() -> str:
    import os

    default = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "..", "shared", "data")
    return os.path.normpath(os.environ.get("INTENTREC_DATA_DIR", default))


def aliases() -> list[str]:
    return [*_SIZES, *_ECOMMERCE_SIZES, *_MOVIELENS, "<adapter>:<path>"]


def resolve(spec: str, **kwargs) -> Dataset:
    """Load by alias (`synthetic`, `ecommerce-small`, `ml-100k`, …), adapter name, or `adapter:path`.

    Keyword arguments go to the adapter and override the alias defaults.
    """
    import os

    if spec in _SIZES:
        return load("synthetic", **{"num_users": _SIZES[spec], **kwargs})
    if spec in _ECOMMERCE_SIZES:
        return load("taobao-synthetic", **{"num_users": _ECOMMERCE_SIZES[spec], **kwargs})
    if spec in _MOVIELENS:
        path = kwargs.pop("path", os.path.join(data_dir(), spec))
        return load("movielens", path=path, **kwargs)
    if ":" in spec and spec.split(":", 1)[0] in _REGISTRY:
        name, path = spec.split(":", 1)
        return load(name, path=path, **kwargs)
    return load(spec, **kwargs)
