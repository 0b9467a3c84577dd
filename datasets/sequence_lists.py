"""Timestamp-free sequence files: one line per user, items in order (registered as "sequences").

    datasets.load("sequences", path="seqs.txt")                   # "user item1 item2 ..."
    datasets.load("sequences", path="seqs.txt", has_user=False)   # "item1 item2 ..." (user = line number)

Items are separated by whitespace, or by commas when the first data line contains
a comma (or as given by `sep`). A user appearing on several lines gets the lines'
items appended in file order (so the "user item" one-pair-per-line layout works
too). The canonical `timestamp` is the 0-based position in the user's sequence and
the schema has `has_timestamps=False` and no metadata columns.

(The module is not called `sequences` because `datasets.encoder` is the encoder.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd

from datasets import _io
from datasets.dataset import Dataset, DatasetError, IngestReport, finalize
from datasets.schema import ITEM, TIMESTAMP, USER, InteractionSchema

SCHEMA = InteractionSchema(has_timestamps=False)


def load(path, *, has_user: bool = True, sep: Optional[str] = None, encoding: str = "utf-8",
         name: Optional[str] = None, max_lines: Optional[int] = None) -> Dataset:
    """Load a timestamp-free sequence file.

    Args:
        path: the text file.
        has_user: the first token of each line is the user id (else: the 1-based line
            number is the user id).
        sep: item separator; None = comma if the first data line has one, else whitespace.
        encoding: text encoding (undecodable bytes are replaced and counted).
        name: dataset name (default: the file stem).
        max_lines: read at most this many non-blank lines.
    """
    path = Path(path)
    report = IngestReport(source=str(path))
    text, replaced = _io.read_text(path, encoding)
    lines = _io.split_lines(text)
    nonblank = [i for i, ln in enumerate(lines) if ln.strip()]
    report.note("blank_lines", len(lines) - len(nonblank))
    if not nonblank:
        raise DatasetError(f"{path}: no data lines (file is blank)")
    if max_lines is not None:
        nonblank = nonblank[:max_lines]
    if sep is None:
        sep = "," if "," in lines[nonblank[0]] else None
    report.note("separator", "whitespace" if sep is None else sep)

    users, items, line_no = [], [], []
    empty_lines, empty_tokens = [], 0
    for i in nonblank:
        ln = lines[i]
        toks = ln.split() if sep is None else [t.strip() for t in ln.split(sep)]
        n_raw = len(toks)
        toks = [t for t in toks if t]
        empty_tokens += n_raw - len(toks)
        if has_user:
            if len(toks) < 2:
                empty_lines.append(i + 1)
                continue
            u, its = toks[0], toks[1:]
        else:
            u, its = str(i + 1), toks
        users.extend([u] * len(its))
        items.extend(its)
        line_no.extend([i + 1] * len(its))
    if empty_lines:
        report.note("lines_without_items", len(empty_lines))
        report.examples["line_without_items"] = [
            f"{path.name}:{n}: a user id but no items; line skipped (no interaction lost)" for n in empty_lines[:5]]
    if empty_tokens:
        report.note("empty_tokens_skipped", empty_tokens)
    report.rows_read = len(items)
    if not items:
        raise DatasetError(f"{path}: no items found on any line")
    frame = pd.DataFrame({USER: np.asarray(users, dtype=object), ITEM: np.asarray(items, dtype=object),
                          "_line": np.asarray(line_no, dtype=np.int64)})
    frame["_file"] = path.name
    frame[TIMESTAMP] = frame.groupby(USER, sort=False).cumcount().astype(np.int64)
    multi = frame.groupby(USER, sort=False)["_line"].nunique()
    if (multi > 1).any():
        report.note("users_on_several_lines", int((multi > 1).sum()))
    if replaced:
        hit = frame[ITEM].str.contains("\ufffd", regex=False).to_numpy() | frame[USER].str.contains(
            "\ufffd", regex=False).to_numpy()
        report.repair("invalid_encoding", int(hit.sum()),
                      [f"{path.name}:{n}: bytes not decodable as {encoding}, replaced by U+FFFD"
                       for n in frame["_line"].to_numpy()[hit][:5]])
    items_df = pd.DataFrame({ITEM: pd.unique(frame[ITEM].to_numpy())})
    items_df["title"] = items_df[ITEM]
    return finalize(name or path.stem, frame, SCHEMA, items_df, report, drop_duplicates=False)
