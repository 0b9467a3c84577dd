"""Version directories of a model base path, TF Serving's rules, and the version policy.

TF Serving (file_system_storage_path_source.cc) takes a child of the base path as a version
when its name parses as an int64 and ignores every other name — temporary copies
(``.tmp-7``), ``7.bak``, and names over 2**63-1, which would otherwise become the "latest"
version and break every unversioned request. This module is the one place that rule lives:
the server, the pipeline's run summary, the analysis loader and the benchmark all ask it
which version is the latest.

Dependency-free (no TensorFlow), like `serving.contract`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Iterable

from serving import contract

INT64_MAX = 2 ** 63 - 1


def parse_version(name: str) -> int | None:
    """The version number a directory name stands for, or None when it is not one.

    ASCII digits only (``str.isdigit`` also accepts e.g. Arabic-Indic digits), at most
    int64; leading zeros allowed ("007" is version 7).
    """
    if not name or not name.isascii() or not name.isdigit():
        return None
    version = int(name)
    return version if version <= INT64_MAX else None


def version_dirs(base_path: str) -> dict[int, str]:
    """{version: directory} of the version directories under base_path.

    Raises OSError when base_path cannot be listed. When "7" and "007" both exist, "7" wins.
    """
    found: dict[int, str] = {}
    for name in os.listdir(base_path):
        version = parse_version(name)
        if version is None:
            continue
        path = os.path.join(base_path, name)
        if os.path.isdir(path) and (version not in found or name == str(version)):
            found[version] = path
    return found


def is_complete(version_dir: str) -> bool:
    """A version directory is loadable once its saved_model.pb(txt) exists (the Pusher
    copies under a temporary name and renames, so it appears complete at once)."""
    return os.path.isfile(os.path.join(version_dir, contract.SAVED_MODEL_PB)) or os.path.isfile(
        os.path.join(version_dir, contract.SAVED_MODEL_PBTXT))


def latest_version(base_path: str, *, complete: bool = False) -> int | None:
    """The highest version under base_path (only complete ones with ``complete=True``);
    None when there is none or base_path is not a readable directory."""
    try:
        dirs = version_dirs(base_path)
    except OSError:
        return None
    versions = [v for v, path in dirs.items() if not complete or is_complete(path)]
    return max(versions, default=None)


def fingerprint(path: str) -> tuple:
    """(relative path, size, mtime) of every file under path; changes when files do."""
    out = []
    for root, dirs, files in os.walk(path):
        dirs.sort()
        for f in sorted(files):
            p = os.path.join(root, f)
            try:
                st = os.stat(p)
            except OSError:
                continue
            out.append((os.path.relpath(p, path), st.st_size, st.st_mtime_ns))
    return tuple(out)


@dataclass(frozen=True)
class VersionPolicy:
    """TF Serving's ServableVersionPolicy.

    ``latest`` / ``latest:N`` (the N highest versions; default N=1), ``all``, or
    ``specific:1,3`` (exactly these versions; missing ones are waited for). From the
    ``--model_version_policy`` flag (`parse`) or a model config file (`from_proto`).
    """

    kind: str = "latest"
    num_versions: int = 1
    versions: tuple[int, ...] = ()

    @classmethod
    def parse(cls, text: str) -> "VersionPolicy":
        t = (text or "latest").strip().lower()
        kind, _, arg = t.partition(":")
        kind = kind.strip()
        if kind == "latest":
            n = int(arg) if arg.strip() else 1
            if n < 1:
                raise ValueError("latest:N needs N >= 1")
            return cls("latest", num_versions=n)
        if kind == "all":
            if arg.strip():
                raise ValueError("'all' takes no argument")
            return cls("all")
        if kind == "specific" or (not arg and re.fullmatch(r"[\d,\s]+", kind)):
            raw = arg if kind == "specific" else kind
            versions = tuple(sorted({int(v) for v in raw.split(",") if v.strip()}))
            if not versions:
                raise ValueError("specific:V1,V2,... needs at least one version")
            return cls("specific", versions=versions)
        raise ValueError(f"unknown model_version_policy {text!r}: use latest[:N], all or specific:V1,V2")

    @classmethod
    def from_proto(cls, policy) -> "VersionPolicy":
        """From a FileSystemStoragePathSourceConfig.ServableVersionPolicy (model config
        file); unset means latest 1, as in TF Serving."""
        which = policy.WhichOneof("policy_choice")
        if which == "all":
            return cls("all")
        if which == "specific":
            if not policy.specific.versions:
                raise ValueError("model_version_policy specific { } lists no versions")
            return cls("specific", versions=tuple(sorted(set(policy.specific.versions))))
        n = policy.latest.num_versions if which == "latest" else 1
        return cls("latest", num_versions=max(1, n))

    def select(self, candidates: Iterable[int]) -> set[int]:
        c = sorted(set(candidates))
        if self.kind == "latest":
            return set(c[-self.num_versions:])
        if self.kind == "all":
            return set(c)
        return set(c) & set(self.versions)

    def __str__(self):
        if self.kind == "latest":
            return f"latest:{self.num_versions}"
        if self.kind == "specific":
            return "specific:" + ",".join(map(str, self.versions))
        return self.kind
