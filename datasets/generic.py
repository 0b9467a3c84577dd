"""Generic CSV / TSV / Parquet interaction logs, given a column mapping.

    datasets.load("generic", path="log.csv",
                  columns={"user": "uid", "item": "sku", "timestamp": "ts",
                           "category": "cat", "behavior": "event"},
                  categorical=["category", "behavior"], intents=["behavior", "category"])

    datasets.load("generic", path="UserBehavior.csv", preset="taobao")   # or load("taobao", ...)

`columns` maps *output* names to *source* columns (names, or 0-based positions
for header-less files without `names`). The keys "user", "item" and "timestamp"
(also accepted: "user_id", "item_id") are the canonical key columns; every other
key becomes an output column with that name. Role lists (`categorical`,
`multi_label`, `numeric`, `intents`) use output names; a name not in `columns`
maps to the source column of the same name.

Timestamps (`timestamp_unit="auto"`): numeric values are epoch seconds, ms, us or
ns, chosen from the magnitude of the median value (< 1e11 s, < 1e14 ms, < 1e17
us, else ns); non-numeric values are parsed as ISO-8601 / date strings (naive
times are UTC). Without a timestamp column the file order within each user is used
(`has_timestamps=False`, timestamp = position).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Optional, Sequence, Union

import numpy as np
import pandas as pd

from datasets import _io
from datasets.dataset import Dataset, DatasetError, IngestReport, canonical_multi_label, finalize
from datasets.schema import ITEM, TIMESTAMP, USER, WEIGHT, IntentSpec, InteractionSchema

PRESETS: dict[str, dict[str, Any]] = {
    # Taobao UserBehavior (Tianchi): user,item,category,behavior,timestamp; no header.
    "taobao": dict(
        names=["user", "item", "category", "behavior", "timestamp"],
        header=False,
        sep=",",
        columns={"user": "user", "item": "item", "timestamp": "timestamp",
                 "action_type": "behavior", "category": "category"},
        categorical=["action_type", "category"],
        intents=["action_type", "category"],
        value_maps={"action_type": {"pv": "view", "view": "view", "click": "view", "cart": "cart",
                                    "fav": "fav", "buy": "buy"}},
        weight_by={"column": "action_type", "weights": {"view": 1.0, "fav": 2.0, "cart": 2.0, "buy": 4.0},
                   "default": 1.0},
        timestamp_unit="auto",
        name="taobao",
    ),
}
PRESETS["ecommerce"] = PRESETS["taobao"]

_KEY_ALIASES = {"user": USER, "user_id": USER, "item": ITEM, "item_id": ITEM,
                "timestamp": TIMESTAMP, "time": TIMESTAMP}


def load_taobao(path, **overrides) -> Dataset:
    return load(path, preset="taobao", **overrides)


def load(
    path,
    *,
    columns: Optional[Mapping[str, Union[str, int]]] = None,
    preset: Optional[str] = None,
    fmt: Optional[str] = None,
    sep: Optional[str] = None,
    header: Union[bool, str] = "auto",
    names: Optional[Sequence[str]] = None,
    categorical: Sequence[str] = (),
    multi_label: Sequence[str] = (),
    numeric: Sequence[str] = (),
    intents: Sequence[Union[str, IntentSpec]] = (),
    weight: Optional[str] = None,
    weight_by: Optional[Mapping[str, Any]] = None,
    weight_from: Optional[str] = None,
    value_maps: Optional[Mapping[str, Mapping[str, str]]] = None,
    multi_label_sep: str = "|",
    timestamp_unit: str = "auto",
    encoding: str = "utf-8",
    name: Optional[str] = None,
    max_rows: Optional[int] = None,
) -> Dataset:
    """Load a generic interaction log.

    Args:
        path: CSV/TSV/text or Parquet file.
        columns: output name -> source column (see module docstring).
        preset: "taobao" (alias "ecommerce"); explicit arguments override it.
        fmt: "csv" or "parquet" (default: from the extension; .parquet/.pq -> parquet).
        sep: field separator (default: by extension, ".tsv" tab; else sniffed from the
            first line among , tab ; | and space).
        header: True, False or "auto" (a header iff the first line equals `names`,
            or always when `names` is not given and `columns` uses names).
        names: source column names for header-less files.
        categorical / multi_label / numeric: output columns by role.
        intents: intent columns (kind "multi" for multi-label columns) or IntentSpecs.
        weight: output/source column holding the loss weight (numeric, >= 0).
        weight_by: {"column": c, "weights": {value: w}, "default": w0}: weight from a
            categorical column's value (used by the taobao preset).
        weight_from: with `weight`, the categorical column that weight was computed
            from (a log written back from a `weight_by` load); an intent on it trains
            unweighted (`IntentHead.weighted`). `weight_by` sets it itself.
        value_maps: {output column: {raw value: canonical value}} for categoricals.
        multi_label_sep: separator of multi-label values in the source.
        timestamp_unit: "auto", "s", "ms", "us", "ns" or "iso".
        encoding: text encoding.
        name: dataset name (default: the file stem).
        max_rows: read at most this many data rows.
    """
    opts = _options(columns=columns, preset=preset, fmt=fmt, sep=sep, header=header, names=names,
                    categorical=categorical, multi_label=multi_label, numeric=numeric, intents=intents,
                    weight=weight, weight_by=weight_by, weight_from=weight_from, value_maps=value_maps,
                    timestamp_unit=timestamp_unit, name=name)
    path = Path(path)
    report = IngestReport(source=str(path))
    fmt = opts["fmt"] or ("parquet" if path.suffix.lower() in (".parquet", ".pq") else "csv")
    mapping = _normalise_mapping(opts["columns"])
    for role in ("categorical", "multi_label", "numeric"):
        for c in opts[role]:
            mapping.setdefault(c, c)
    if opts["weight"] is not None:
        mapping.setdefault(opts["weight"], opts["weight"])
    if USER not in mapping or ITEM not in mapping:
        raise ValueError("generic: `columns` must map 'user' and 'item'")

    if fmt == "parquet":
        raw = _read_parquet(path, report, max_rows)
    elif fmt == "csv":
        raw = _read_csv(path, report, opts, mapping, encoding, max_rows)
    else:
        raise ValueError(f"unknown fmt {fmt!r}")
    src = _resolve_sources(raw, mapping, path)

    bad = np.zeros(len(raw), dtype=bool)
    out: dict[str, Any] = {}
    for key, field in ((USER, "user"), (ITEM, "item")):
        col = raw[src[key]]
        miss = _io.is_missing(col) & ~bad
        report.reject(f"missing_{field}", int(miss.sum()),
                      _io.field_examples(raw, miss, src[key], src[key], "is empty"))
        bad |= miss
        out[key] = _io.strip(col).to_numpy(dtype=object)
    has_ts = TIMESTAMP in mapping
    if has_ts:
        ts, bad_ts, unit = parse_timestamps(raw[src[TIMESTAMP]], opts["timestamp_unit"])
        bad_ts &= ~bad
        report.reject("bad_timestamp", int(bad_ts.sum()), _io.field_examples(
            raw, bad_ts, src[TIMESTAMP], src[TIMESTAMP], f"is not a valid timestamp (detected format: {unit})"))
        bad |= bad_ts
        report.note("timestamp_unit", unit)
        out[TIMESTAMP] = ts
    keep = ~bad

    value_maps = opts["value_maps"] or {}
    cats = list(opts["categorical"])
    multis = list(opts["multi_label"])
    nums = list(opts["numeric"])
    for c in cats:
        vals = _io.strip(raw[src[c]])
        miss = _io.is_missing(raw[src[c]])
        vals = vals.where(~miss, "")
        if c in value_maps:
            vm = {str(k): str(v) for k, v in value_maps[c].items()}
            mapped = vals.map(lambda v: vm.get(v, vm.get(v.lower(), v)) if v else v)
            unmapped = (mapped == vals) & (vals != "") & ~vals.isin(list(vm.values()))
            if (unmapped & keep).any():
                report.note(f"unmapped_values:{c}", sorted(pd.unique(vals[unmapped & keep]))[:10])
            vals = mapped
        report.repair(f"missing_value:{c}", int((miss & keep).sum()),
                      _io.field_examples(raw, miss & keep, src[c], src[c], "is missing; kept as missing"))
        out[c] = vals.to_numpy(dtype=object)
    for c in multis:
        vals = canonical_multi_label(raw[src[c]].where(~_io.is_missing(raw[src[c]]), ""), multi_label_sep)
        out[c] = vals.to_numpy(dtype=object)
    for c in nums:
        x, miss, inv = _io.parse_float(raw[src[c]])
        report.repair(f"missing_numeric:{c}", int((miss & keep).sum()),
                      _io.field_examples(raw, miss & keep, src[c], src[c], "is missing; kept as NaN"))
        report.repair(f"invalid_numeric:{c}", int((inv & keep).sum()),
                      _io.field_examples(raw, inv & keep, src[c], src[c], "is not a number; kept as NaN"))
        out[c] = x
    if opts["weight"] is not None:
        wcol = opts["weight"]
        w, miss, inv = _io.parse_float(raw[src[wcol]])
        neg = np.isfinite(w) & (w < 0)
        badw = (miss | inv | neg) & keep
        report.repair("invalid_weight", int(badw.sum()),
                      _io.field_examples(raw, badw, src[wcol], src[wcol],
                                         "is not a non-negative number; kept as NaN (weight 1.0 when encoded)"))
        out[WEIGHT] = np.where(neg, np.nan, w)
    elif opts["weight_by"]:
        wb = opts["weight_by"]
        col = wb["column"]
        if col not in out:
            raise ValueError(f"weight_by column {col!r} is not a categorical output column")
        table = {str(k): float(v) for k, v in wb["weights"].items()}
        out[WEIGHT] = pd.Series(out[col]).map(table).fillna(float(wb.get("default", 1.0))).to_numpy(np.float64)

    frame = pd.DataFrame(out)
    frame["_line"] = raw["_line"].to_numpy()
    frame["_file"] = raw["_file"].to_numpy()
    frame = frame.loc[keep].reset_index(drop=True)
    if not has_ts:
        # Order of appearance within each user.
        frame[TIMESTAMP] = frame.groupby(USER, sort=False).cumcount().astype(np.int64)
        report.note("timestamp", "no timestamp column: file order within each user")
    schema = _schema(opts)
    items = _items_table(frame, mapping, raw, keep, src)
    ds_name = opts["name"] or path.stem
    return finalize(ds_name, frame, schema, items, report)


def _options(*, preset=None, header="auto", timestamp_unit="auto", categorical=(), multi_label=(), numeric=(),
             intents=(), **named) -> dict:
    """`load`'s options: the defaults, then the preset's, then the arguments given."""
    explicit = {k: v for k, v in named.items() if v is not None}
    for k, v in dict(categorical=categorical, multi_label=multi_label, numeric=numeric, intents=intents).items():
        if v:
            explicit[k] = v
    if header != "auto":
        explicit["header"] = header
    if timestamp_unit != "auto":
        explicit["timestamp_unit"] = timestamp_unit
    opts: dict[str, Any] = dict(columns=None, fmt=None, sep=None, header="auto", names=None, categorical=(),
                                multi_label=(), numeric=(), intents=(), weight=None, weight_by=None,
                                weight_from=None, value_maps=None, timestamp_unit="auto", name=None)
    if preset is not None:
        if preset not in PRESETS:
            raise ValueError(f"unknown preset {preset!r}; available: {sorted(PRESETS)}")
        opts.update(PRESETS[preset])
    opts.update(explicit)
    if opts["columns"] is None:
        raise ValueError("generic: `columns` is required (at least user and item), or use a preset")
    return opts


def _schema(opts) -> InteractionSchema:
    """The schema of a log loaded with `opts`: it follows from the options alone."""
    multis = tuple(opts["multi_label"])
    intents = tuple(it if isinstance(it, IntentSpec) else IntentSpec(it, "multi" if it in multis else "single")
                    for it in opts["intents"])
    # An explicit weight column wins over `weight_by`, as in `load`.
    weight_from = opts["weight_from"] if opts["weight"] is not None else (opts["weight_by"] or {}).get("column")
    return InteractionSchema(categorical=tuple(opts["categorical"]), multi_label=multis,
                             numeric=tuple(opts["numeric"]), intents=intents,
                             has_timestamps=TIMESTAMP in _normalise_mapping(opts["columns"]),
                             has_weight=opts["weight"] is not None or bool(opts["weight_by"]),
                             weight_from=weight_from)


def declared_schema(*, path=None, encoding="utf-8", max_rows=None, multi_label_sep="|", **options) -> InteractionSchema:
    """The schema `load(path, **options)` produces, without reading the file (the reading
    arguments are accepted and do not matter)."""
    del path, encoding, max_rows, multi_label_sep
    return _schema(_options(**options))


def _normalise_mapping(columns: Mapping[str, Union[str, int]]) -> dict:
    out = {}
    for k, v in columns.items():
        out[_KEY_ALIASES.get(k, k)] = v
    return out


def _resolve_sources(raw: pd.DataFrame, mapping: dict, path: Path) -> dict:
    cols = [c for c in raw.columns if c not in ("_line", "_file")]
    src = {}
    for out_name, s in mapping.items():
        if isinstance(s, (int, np.integer)) and s not in raw.columns:
            if not 0 <= s < len(cols):
                raise DatasetError(f"{path}: column position {s} out of range (file has {len(cols)} columns)")
            src[out_name] = cols[int(s)]
        elif s in raw.columns:
            src[out_name] = s
        else:
            raise DatasetError(f"{path}: no column {s!r} (for {out_name!r}); columns are {cols}")
    return src


def _read_csv(path: Path, report: IngestReport, opts: dict, mapping: dict, encoding: str,
              max_rows: Optional[int]) -> pd.DataFrame:
    text, _ = _io.read_text(path, encoding)
    first = next((ln for ln in _io.split_lines(text[:1 << 16]) if ln.strip()), "")
    sep = opts["sep"]
    if sep is None:
        if path.suffix.lower() in (".tsv", ".tab"):
            sep = "\t"
        else:
            counts = {c: first.count(c) for c in (",", "\t", ";", "|")}
            best = max(counts, key=counts.get)
            sep = best if counts[best] > 0 else " "
        report.note("separator", sep)
    names = opts["names"]
    header = opts["header"]
    if header == "auto":
        if names is not None:
            header = [f.strip() for f in first.split(sep)] == list(names)
        else:
            header = not all(isinstance(v, (int, np.integer)) for v in mapping.values())
    report.note("header", bool(header))
    return _io.read_delimited(path, sep, report, names=names, header=bool(header), encoding=encoding,
                              quoting=True, max_rows=max_rows)


def _read_parquet(path: Path, report: IngestReport, max_rows: Optional[int]) -> pd.DataFrame:
    if not path.exists():
        raise DatasetError(f"{path}: no such file")
    try:
        df = pd.read_parquet(path)
    except Exception as e:  # noqa: BLE001 - any reader error means an unreadable file
        raise DatasetError(f"{path}: cannot read as Parquet: {e}") from e
    if len(df) == 0:
        raise DatasetError(f"{path}: Parquet file has no rows")
    if max_rows is not None:
        df = df.head(max_rows)
    report.rows_read += len(df)
    out = pd.DataFrame({str(c): _to_str(df[c]) for c in df.columns})
    out["_line"] = np.arange(1, len(df) + 1, dtype=np.int64)  # 1-based row number
    out["_file"] = path.name
    report.note("line_numbers", "Parquet: 1-based row numbers")
    return out


def _to_str(s: pd.Series) -> pd.Series:
    """Typed Parquet column -> strings ('' for missing); datetimes -> epoch seconds."""
    if pd.api.types.is_datetime64_any_dtype(s):
        secs = (s.dt.tz_localize("UTC") if s.dt.tz is None else s).astype("int64") // 10**9
        return pd.Series(np.where(s.isna(), "", secs.astype(str)), dtype=object, index=s.index)
    if pd.api.types.is_integer_dtype(s) or pd.api.types.is_bool_dtype(s):
        return s.astype(str).where(s.notna(), "").astype(object)
    if pd.api.types.is_float_dtype(s):
        v = s.to_numpy(dtype=np.float64)
        fin = np.isfinite(v)
        if fin.any() and np.all(v[fin] == np.round(v[fin])) and np.all(np.abs(v[fin]) < 2**53):
            out = np.where(fin, pd.Series(np.where(fin, v, 0).astype(np.int64)).astype(str), "")
            return pd.Series(np.where(np.isnan(v), "", out), dtype=object, index=s.index)
        return pd.Series(np.where(np.isnan(v), "", s.astype(str)), dtype=object, index=s.index)
    if isinstance(s.dtype, pd.CategoricalDtype):
        s = s.astype(object)
    if s.dtype == object and len(s) and s.map(lambda x: isinstance(x, (list, tuple, np.ndarray))).any():
        return s.map(lambda x: "|".join(map(str, x)) if isinstance(x, (list, tuple, np.ndarray)) else
                     ("" if x is None or (isinstance(x, float) and np.isnan(x)) else str(x))).astype(object)
    return s.astype(object).where(s.notna(), "").astype(str).astype(object)


def parse_timestamps(values: pd.Series, unit: str = "auto") -> tuple[np.ndarray, np.ndarray, str]:
    """-> (int64 epoch seconds, bad mask, unit used: 's'|'ms'|'us'|'ns'|'iso')."""
    num, missing, invalid = _io.parse_float(values)
    present = ~missing
    if unit == "auto":
        numeric_share = (np.isfinite(num) & present).sum() / max(int(present.sum()), 1)
        if numeric_share >= 0.5:
            med = float(np.nanmedian(np.abs(num))) if np.isfinite(num).any() else 0.0
            unit = "s" if med < 1e11 else "ms" if med < 1e14 else "us" if med < 1e17 else "ns"
        else:
            unit = "iso"
    if unit in ("s", "ms", "us", "ns"):
        div = {"s": 1, "ms": 10**3, "us": 10**6, "ns": 10**9}[unit]
        ok = np.isfinite(num)
        # A value of another magnitude (e.g. ms in a seconds column) is rejected,
        # not silently read as a date thousands of years away.
        ok &= np.abs(np.where(ok, num, 0)) < 1e11 * div
        secs = np.floor(np.where(ok, num, 0) / div)
        return np.where(ok, secs, 0).astype(np.int64), ~ok, unit
    if unit != "iso":
        raise ValueError(f"unknown timestamp_unit {unit!r}")
    codes, uniq = pd.factorize(pd.Series(values, dtype=object).astype(str).str.strip(), sort=False)
    parsed = pd.to_datetime(pd.Series(uniq, dtype=object), utc=True, errors="coerce")
    ok_u = parsed.notna().to_numpy()
    secs_u = np.where(ok_u, (parsed - pd.Timestamp(0, tz="UTC")).dt.total_seconds().fillna(0).to_numpy(), 0)
    secs_u = np.floor(secs_u).astype(np.int64)
    ok = (codes >= 0) & ok_u[np.maximum(codes, 0)] & present
    return np.where(ok, secs_u[np.maximum(codes, 0)], 0).astype(np.int64), ~ok, "iso"


def _items_table(frame: pd.DataFrame, mapping: dict, raw, keep, src) -> pd.DataFrame:
    """Unique items; title from a mapped "title" column (first occurrence) else the id."""
    items = pd.DataFrame({ITEM: pd.unique(frame[ITEM].to_numpy())})
    if "title" in src:
        t = pd.DataFrame({ITEM: _io.strip(raw[src[ITEM]])[keep].to_numpy(),
                          "title": _io.strip(raw[src["title"]])[keep].to_numpy()})
        t = t.drop_duplicates(ITEM)
        items = items.merge(t, on=ITEM, how="left")
        items["title"] = items["title"].fillna(items[ITEM])
    else:
        items["title"] = items[ITEM]
    return items
