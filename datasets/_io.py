"""Robust, vectorised reading of delimited text files with line-level accounting.

Every data line either becomes a row (with its 1-based physical line number in
`_line`) or is rejected with a reason and counted in the `IngestReport`. Blank
lines are not rows; they are counted in `report.notes["blank_lines"]`.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import pandas as pd

from datasets.dataset import DatasetError, IngestReport

MISSING_STRINGS = frozenset({"", "nan", "NaN", "NAN", "NA", "N/A", "n/a", "null", "NULL", "None", "none"})
_UNIT_SEP = "\x1f"


def read_text(path, encoding: str = "utf-8") -> tuple[str, bool]:
    """Whole file as text. Returns (text, decode_errors_replaced).

    Raises `DatasetError` naming the file when it is missing, a directory, empty,
    or binary (contains NUL bytes).
    """
    path = Path(path)
    if not path.exists():
        raise DatasetError(f"{path}: no such file")
    if path.is_dir():
        raise DatasetError(f"{path}: is a directory, expected a file")
    try:
        data = path.read_bytes()
    except OSError as e:  # permissions, I/O errors
        raise DatasetError(f"{path}: cannot read file: {e}") from e
    if not data.strip():
        raise DatasetError(f"{path}: file is empty")
    if b"\x00" in data[: 1 << 20]:
        raise DatasetError(f"{path}: contains NUL bytes; not a text file (wrong format or corrupt?)")
    replaced = False
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError:
        text = data.decode(encoding, errors="replace")
        replaced = True
    if text.startswith("\ufeff"):
        text = text[1:]
    return text, replaced


def split_lines(text: str) -> list[str]:
    """Physical lines ('\\n', '\\r\\n' or '\\r' endings); a final newline adds no line."""
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def read_delimited(
    path,
    sep: str,
    report: IngestReport,
    *,
    names: Optional[Sequence[str]] = None,
    header: bool = False,
    encoding: str = "utf-8",
    quoting: bool = False,
    max_rows: Optional[int] = None,
) -> pd.DataFrame:
    """Read a delimited text file into string columns.

    Args:
        path: the file.
        sep: field separator (may be several characters, e.g. "::").
        report: accounting; rows_read is incremented, bad lines rejected.
        names: column names. With `header=True` and no names, the header gives them.
        header: whether the first non-blank line is a header (not a data row).
        encoding: text encoding. Undecodable bytes are replaced by U+FFFD and the
            affected rows counted as repaired ("invalid_encoding").
        quoting: honour CSV double quotes (slower, pure-Python csv module).
        max_rows: read at most this many data lines.

    Returns:
        DataFrame with one str column per name plus `_line` (int64, 1-based line
        number) and `_file` (the file's base name). Lines with a wrong number of
        fields are rejected ("wrong_field_count").
    """
    path = Path(path)
    fname = path.name
    text, replaced = read_text(path, encoding)
    if quoting and '"' in text:
        rows, line_nos = _csv_rows(text, sep)
    else:
        lines = split_lines(text)
        line_nos = np.arange(1, len(lines) + 1, dtype=np.int64)
        rows = lines
    # Blank lines.
    if quoting and '"' in text:
        blank = np.array([len(r) == 0 or (len(r) == 1 and not r[0].strip()) for r in rows], dtype=bool)
    else:
        blank = np.array([not ln.strip() for ln in rows], dtype=bool) if rows else np.zeros(0, bool)
    n_blank = int(blank.sum())
    if n_blank:
        report.notes["blank_lines"] = report.notes.get("blank_lines", 0) + n_blank
    keep_idx = np.flatnonzero(~blank)
    if len(keep_idx) == 0:
        raise DatasetError(f"{path}: no data lines (file is blank)")
    if header:
        h = keep_idx[0]
        header_fields = rows[h] if isinstance(rows[h], list) else rows[h].split(sep)
        header_fields = [f.strip() for f in header_fields]
        if names is None:
            names = header_fields
        keep_idx = keep_idx[1:]
        if len(keep_idx) == 0:
            raise DatasetError(f"{path}: only a header line, no data rows")
    if max_rows is not None:
        keep_idx = keep_idx[:max_rows]
    if names is None:
        first = rows[keep_idx[0]]
        n_first = len(first) if isinstance(first, list) else len(first.split(sep))
        names = [f"col{i}" for i in range(n_first)]
    names = list(names)
    n = len(names)
    report.rows_read += len(keep_idx)
    data_lines = line_nos[keep_idx]

    data_rows = [rows[i] for i in keep_idx]
    fast = None
    if quoting and '"' in text:
        counts = np.fromiter((len(r) for r in data_rows), dtype=np.int64, count=len(data_rows))
    else:
        fast = _fast_parse(data_rows, sep, n)
        if fast is not None:
            fast, counts = fast
        else:
            s = pd.Series(data_rows, dtype=object)
            counts = s.str.count(re.escape(sep)).to_numpy(dtype=np.int64) + 1 if len(s) else np.zeros(0, np.int64)

    bad = counts != n
    if bad.any():
        bi = np.flatnonzero(bad)
        examples = []
        for i in bi[: report.max_examples]:
            raw = data_rows[i]
            raw = sep.join(raw) if isinstance(raw, list) else raw
            examples.append(
                f"{fname}:{data_lines[i]}: expected {n} fields separated by {sep!r}, "
                f"found {counts[i]}: {raw[:80]!r}"
            )
        report.reject("wrong_field_count", len(bi), examples)
    good = np.flatnonzero(~bad)
    if quoting and '"' in text:
        parsed = [list(data_rows[i]) for i in good]
        frame = pd.DataFrame(parsed, columns=names, dtype=object) if parsed else pd.DataFrame(
            {c: pd.Series([], dtype=object) for c in names})
    elif fast is not None:
        frame = fast.iloc[good] if bad.any() else fast
        frame.columns = names
    else:
        frame = _split_fields([data_rows[i] for i in good], sep, names)
    frame = frame.reset_index(drop=True)
    frame["_line"] = data_lines[good]
    frame["_file"] = fname
    if replaced:
        hit = np.zeros(len(frame), dtype=bool)
        for c in names:
            hit |= frame[c].str.contains("\ufffd", regex=False).to_numpy(dtype=bool)
        if hit.any():
            ex = [f"{fname}:{ln}: bytes not decodable as {encoding}, replaced by U+FFFD"
                  for ln in frame["_line"].to_numpy()[hit][: report.max_examples]]
            report.repair("invalid_encoding", int(hit.sum()), ex)
    return frame


_SENTINEL = "\x1e"


def _fast_parse(lines: list[str], sep: str, n: int):
    """C-parser split of lines into n string fields, with per-line field counts.

    Every line gets a sentinel field appended, so a line with k fields has the
    sentinel in column k: lines with k < n are detected (and counted) without a
    per-line Python pass; a line with more than n fields makes the parser fail and
    the caller falls back to counting separators. Returns (frame [n columns],
    counts) or None.
    """
    if not lines:
        return None
    use_sep = sep
    joined = "\n".join(lines)
    if _SENTINEL in joined or '"' in joined or "\r" in joined:
        return None
    if len(sep) > 1 or sep in ('"', "\\"):
        if _UNIT_SEP in joined:
            return None
        joined = joined.replace(sep, _UNIT_SEP)
        use_sep = _UNIT_SEP
    tail = use_sep + _SENTINEL
    joined = joined.replace("\n", tail + "\n") + tail
    try:
        frame = pd.read_csv(
            io.StringIO(joined), sep=use_sep, header=None, names=list(range(n + 1)), dtype=str,
            quoting=csv.QUOTE_NONE, keep_default_na=False, na_filter=False, engine="c",
            skip_blank_lines=False, comment=None, escapechar=None, index_col=False,
        )
    except Exception:  # too many fields somewhere (or anything unexpected): slow path
        return None
    if len(frame) != len(lines):  # pragma: no cover - defensive
        return None
    last = frame[n].to_numpy(dtype=object)
    counts = np.full(len(lines), n, dtype=np.int64)
    short = last != _SENTINEL
    if short.any():
        vals = frame.loc[short, list(range(n))].to_numpy(dtype=object)
        counts[short] = np.argmax(vals == _SENTINEL, axis=1)
    frame = frame.drop(columns=[n])
    return frame.astype(object), counts


def _csv_rows(text: str, sep: str):
    if len(sep) != 1:
        raise ValueError("quoted CSV needs a one-character separator")
    reader = csv.reader(io.StringIO(text), delimiter=sep, quotechar='"', strict=False)
    rows, line_nos = [], []
    start = 1
    try:
        for row in reader:
            rows.append(row)
            line_nos.append(start)
            start = reader.line_num + 1
    except csv.Error as e:  # e.g. field larger than field limit
        raise DatasetError(f"csv parse error near line {start}: {e}") from e
    return rows, np.asarray(line_nos, dtype=np.int64)


def _split_fields(lines: list[str], sep: str, names: list[str]) -> pd.DataFrame:
    """Split lines that all have exactly len(names) fields; fast C parser when possible."""
    n = len(names)
    if not lines:
        return pd.DataFrame({c: pd.Series([], dtype=object) for c in names})
    use_sep = sep
    joined = "\n".join(lines)
    if len(sep) > 1 or sep in ('"', "\\"):
        if _UNIT_SEP in joined:
            return _split_python(lines, sep, names)
        joined = joined.replace(sep, _UNIT_SEP)
        use_sep = _UNIT_SEP
    if '"' in joined or "\r" in joined:
        return _split_python(lines, sep, names)
    try:
        frame = pd.read_csv(
            io.StringIO(joined), sep=use_sep, header=None, names=list(range(n)), dtype=str,
            quoting=csv.QUOTE_NONE, keep_default_na=False, na_filter=False, engine="c",
            skip_blank_lines=False, comment=None, escapechar=None, index_col=False,
        )
    except Exception:  # pragma: no cover - defensive, fall back to the simple splitter
        return _split_python(lines, sep, names)
    if len(frame) != len(lines):  # pragma: no cover - defensive
        return _split_python(lines, sep, names)
    frame.columns = names
    return frame.astype(object)


def _split_python(lines: list[str], sep: str, names: list[str]) -> pd.DataFrame:
    parts = [ln.split(sep) for ln in lines]
    return pd.DataFrame(parts, columns=names, dtype=object)


# --------------------------------------------------------------------------------------
# Field validation (vectorised). Each returns parsed values and a mask of bad rows,
# and produces example messages "file:line: field 'f': 'v' is not ...".
# --------------------------------------------------------------------------------------
def field_examples(frame: pd.DataFrame, mask: np.ndarray, column: str, field: str,
                   problem: str, limit: int = 5) -> list[str]:
    idx = np.flatnonzero(mask)[:limit]
    out = []
    for i in idx:
        v = frame[column].iloc[i]
        out.append(f"{frame['_file'].iloc[i]}:{frame['_line'].iloc[i]}: field '{field}': "
                   f"{v!r} {problem}")
    return out


def _factorize(values) -> tuple[np.ndarray, pd.Index]:
    codes, uniques = pd.factorize(pd.Series(values, dtype=object), sort=False)
    return codes, pd.Index(uniques, dtype=object)


def strip(values: pd.Series) -> pd.Series:
    """Strip whitespace (computed once per distinct value)."""
    codes, uniq = _factorize(values)
    stripped = np.array([str(u).strip() for u in uniq], dtype=object)
    out = np.where(codes < 0, "", stripped[np.maximum(codes, 0)] if len(uniq) else "")
    return pd.Series(out, index=values.index, dtype=object)


def is_missing(values: pd.Series) -> np.ndarray:
    """Empty, NaN/None or a missing marker ('nan', 'NA', 'null', ...)."""
    codes, uniq = _factorize(values)
    miss_u = np.array([str(u).strip() in MISSING_STRINGS for u in uniq], dtype=bool)
    if len(uniq) == 0:
        return codes < 0
    return (codes < 0) | miss_u[np.maximum(codes, 0)]


def parse_float(values: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """-> (float64 values with NaN where missing/invalid, missing mask, invalid mask).

    `invalid` = present but not a finite number ("abc", "inf").
    """
    codes, uniq = _factorize(values)
    miss_u = np.array([str(u).strip() in MISSING_STRINGS for u in uniq], dtype=bool)
    num_u = pd.to_numeric(pd.Series(np.where(miss_u, None, uniq.to_numpy()), dtype=object),
                          errors="coerce").to_numpy(dtype=np.float64) if len(uniq) else np.zeros(0)
    if len(uniq) == 0:
        n = len(codes)
        return np.full(n, np.nan), np.ones(n, bool), np.zeros(n, bool)
    safe = np.maximum(codes, 0)
    missing = (codes < 0) | miss_u[safe]
    num = np.where(codes < 0, np.nan, num_u[safe])
    invalid = ~missing & ~np.isfinite(num)
    num = np.where(np.isfinite(num), num, np.nan)
    return num, missing, invalid


def parse_int(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """-> (int64 values (0 where bad), bad mask). Integral floats like '3.0' are accepted."""
    num, missing, invalid = parse_float(values)
    bad = missing | invalid
    with np.errstate(invalid="ignore"):
        bad |= ~bad & (np.abs(num - np.round(num)) > 0)
        bad |= ~bad & (np.abs(num) > 9.2e18)
    out = np.where(bad, 0, np.nan_to_num(num)).astype(np.int64)
    return out, bad
