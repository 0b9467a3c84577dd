"""Fixtures for the datasets tests: small synthetic data and writers of tiny raw files."""

from pathlib import Path

import pytest

import datasets

ML100K = Path("/work/shared/data/ml-100k")


@pytest.fixture(scope="session")
def small_synth():
    return datasets.load("synthetic", num_users=200, seed=0)


@pytest.fixture(scope="session")
def medium_synth():
    return datasets.load("synthetic", num_users=1200, seed=3)


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode(encoding))
    return path
