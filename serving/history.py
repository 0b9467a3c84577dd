"""One user's history for the client: the ``History`` type and the files it is read from.

``--history`` of the ``recommend`` CLI is either comma-separated item ids (oldest first) or
a file of interactions: CSV/TSV with a header (``item_id`` required; ``timestamp``,
``user_id`` and metadata columns optional; rows are sorted by timestamp), a headerless
file of one id per line, JSON lines, or a JSON ``{"item_ids": [...], "timestamps": [...]}``.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
from typing import Mapping, Sequence

from serving import contract


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


_FILE_SUFFIXES = (".csv", ".tsv", ".json", ".jsonl", ".ndjson", ".txt")


def looks_like_path(source: str) -> bool:
    """Whether --history names a file rather than listing item ids (a typo in a file name
    must not become a one-item history)."""
    return (os.sep in source or "/" in source or source.lower().endswith(_FILE_SUFFIXES)
            or source.startswith(("~", ".")))


def load_history(source: str, user: str | None = None) -> History:
    """A history from a CSV / JSON-lines / JSON file, or from comma-separated item ids.

    ValueError when source looks like a path but is no file, or when a CSV with a header
    has no item id column (one of ``item_id``, ``item``, ``movie_id``, ...)."""
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
        lines = [line for line in text.splitlines() if line.strip()]
        header = next(csv.reader(lines[:1], dialect=dialect), [])
        if len(header) > 1 and _pick(dict.fromkeys(header), _ITEM_KEYS) is None:
            raise ValueError(f"{source}: no item id column (one of {', '.join(_ITEM_KEYS)}) in its header "
                             f"{header}; a file without a header must hold one item id per line")
        if len(header) <= 1 and _pick(dict.fromkeys(header), _ITEM_KEYS) is None:
            return History([x.strip() for x in lines])  # one id per line, no header
        return history_from_rows(list(csv.DictReader(lines, dialect=dialect)), user)
    if looks_like_path(source):
        raise ValueError(f"--history {source!r}: no such file (or give comma-separated item ids)")
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
