"""MovieLens adapter: ML-100K, ML-1M / ML-10M, ML-20M / ML-25M / ml-latest (layout auto-detected).

`datasets.load("movielens", path="/data/ml-100k")`

Layouts (detected from the files in `path`):

* ``u.data`` (+ ``u.item``, ``u.genre``): ML-100K. Tab-separated
  ``user item rating timestamp``; ``u.item`` is ``|``-separated Latin-1 with the
  release date (``01-Jan-1995``) and 19 genre flags.
* ``ratings.dat`` (+ ``movies.dat``): ML-1M / ML-10M. ``::``-separated Latin-1;
  titles carry the year ``Toy Story (1995)``, genres are ``A|B``.
* ``ratings.csv`` (+ ``movies.csv``): ML-20M / ML-25M / ml-latest. CSV with a
  header, UTF-8, quoted titles; release year from the title.

Canonical schema:

* categorical ``action_type`` (causal heuristic, see `causal_action_type`) and
  ``release_bucket`` (time since release at interaction time);
* multi-label ``genre``;
* numeric ``rating``; ``weight`` = rating / 5;
* intents: action_type (single), genre (multi), release_bucket (single).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd

from datasets import _io
from datasets.dataset import Dataset, DatasetError, IngestReport, canonical_multi_label, dedupe_and_sort, finalize
from datasets.schema import (
    ITEM,
    MULTI_LABEL_SEP,
    RELEASE_BUCKET_BOUNDS_DAYS,
    RELEASE_BUCKET_NAMES,
    SECONDS_PER_DAY,
    TIMESTAMP,
    USER,
    WEIGHT,
    IntentSpec,
    InteractionSchema,
)

ML100K_GENRES = ("unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
                 "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
                 "Romance", "Sci-Fi", "Thriller", "War", "Western")
NO_GENRE_MARKERS = frozenset({"(no genres listed)", "unknown", "(unknown)"})
MAX_RATING = 5.0
ACTION_TYPES = ("explore", "favourite", "binge", "browse")

SCHEMA = InteractionSchema(
    categorical=("action_type", "release_bucket"),
    multi_label=("genre",),
    numeric=("rating",),
    intents=(IntentSpec("action_type", "single"), IntentSpec("genre", "multi"),
             IntentSpec("release_bucket", "single")),
    has_timestamps=True,
    has_weight=True,
)

_YEAR_RE = re.compile(r"\((\d{4})(?:[-\u2013]\d{0,4})?\)\s*$")


def detect_layout(path) -> tuple[str, Path]:
    """-> (layout, directory); layout in {"100k", "dat", "csv"}."""
    p = Path(path)
    if not p.exists():
        raise DatasetError(f"{p}: no such file or directory")
    d = p.parent if p.is_file() else p
    if (d / "u.data").exists():
        return "100k", d
    if (d / "ratings.dat").exists():
        return "dat", d
    if (d / "ratings.csv").exists():
        return "csv", d
    listing = sorted(x.name for x in d.iterdir())[:20]
    raise DatasetError(f"{d}: no MovieLens ratings file (u.data, ratings.dat or ratings.csv); found {listing}")


def load(path, *, layout: str = "auto", session_gap_seconds: int = 1800, explore_top_k: int = 3,
         max_rows: Optional[int] = None) -> Dataset:
    """Load a MovieLens directory.

    Args:
        path: the dataset directory (or any file in it).
        layout: "auto", "100k", "dat" (1M/10M) or "csv" (20M/25M/latest).
        session_gap_seconds: gap that separates sessions for the "binge" action type.
        explore_top_k: "explore" = none of the item's genres is among the user's
            top-k genres so far.
        max_rows: read only the first rows of the ratings file (quick looks).
    """
    detected, d = detect_layout(path)
    layout = detected if layout == "auto" else layout
    if layout == "100k":
        ratings_file, sep, enc, header = d / "u.data", "\t", "latin-1", False
        name = "movielens-100k"
    elif layout == "dat":
        ratings_file, sep, enc, header = d / "ratings.dat", "::", "latin-1", False
        name = _name_from_dir(d, "movielens-dat")
    elif layout == "csv":
        ratings_file, sep, enc, header = d / "ratings.csv", ",", "utf-8", True
        name = _name_from_dir(d, "movielens-csv")
    else:
        raise ValueError(f"unknown layout {layout!r}")

    report = IngestReport(source=str(ratings_file))
    raw = _io.read_delimited(ratings_file, sep, report, names=["user", "item", "rating", "timestamp"],
                             header=header, encoding=enc, max_rows=max_rows)
    frame = _validate_ratings(raw, report)
    items = _load_items(layout, d, report)
    frame, _ = dedupe_and_sort(frame, [USER, ITEM, "rating", TIMESTAMP], report)

    # Join item metadata.
    item_pos = pd.Index(items[ITEM]).get_indexer(frame[ITEM])
    missing_meta = item_pos < 0
    if missing_meta.any():
        ex = [f"{f}:{ln}: field 'item': {it!r} has no entry in the items file"
              for f, ln, it in zip(frame["_file"].to_numpy()[missing_meta][:5],
                                   frame["_line"].to_numpy()[missing_meta][:5],
                                   frame[ITEM].to_numpy()[missing_meta][:5])]
        report.repair("item_without_metadata", int(missing_meta.sum()), ex)
        extra = pd.DataFrame({ITEM: pd.unique(frame[ITEM].to_numpy()[missing_meta])})
        extra["title"] = ""
        extra["genre"] = ""
        extra["release_ts"] = np.nan
        items = pd.concat([items, extra], ignore_index=True)
        item_pos = pd.Index(items[ITEM]).get_indexer(frame[ITEM])
    genre_str = items["genre"].to_numpy(dtype=object)[item_pos]
    frame["genre"] = genre_str
    rel = items["release_ts"].to_numpy(dtype=np.float64)[item_pos]
    ts = frame[TIMESTAMP].to_numpy(dtype=np.int64)
    frame["release_bucket"] = release_bucket_from_ts(ts, rel)

    # Causal action type.
    genre_vocab = sorted({g for s in items["genre"] for g in str(s).split(MULTI_LABEL_SEP) if g})
    gm = _genre_matrix(items["genre"], genre_vocab)
    frame["action_type"] = causal_action_type(frame[USER].to_numpy(), ts, gm[item_pos],
                                              session_gap_seconds=session_gap_seconds, top_k=explore_top_k)
    frame[WEIGHT] = frame["rating"].to_numpy() / MAX_RATING
    report.note("layout", layout)
    report.note("items_file_entries", int(len(items)))
    return finalize(name, frame, SCHEMA, items, report, drop_duplicates=False)


# --------------------------------------------------------------------------------------
def _name_from_dir(d: Path, default: str) -> str:
    """'ml-1m' -> 'movielens-1m', 'ml-25m' -> 'movielens-25m'; else `default`."""
    low = d.name.lower()
    return f"movielens-{low[3:]}" if low.startswith("ml-") and len(low) > 3 else default


def _validate_ratings(raw: pd.DataFrame, report: IngestReport) -> pd.DataFrame:
    bad_any = np.zeros(len(raw), dtype=bool)
    for field, col in (("user", "user"), ("item", "item")):
        miss = _io.is_missing(raw[col]) & ~bad_any
        report.reject(f"missing_{field}", int(miss.sum()),
                      _io.field_examples(raw, miss, col, field, "is empty"))
        bad_any |= miss
    ts, bad_ts = _io.parse_int(raw["timestamp"])
    bad_ts &= ~bad_any
    report.reject("bad_timestamp", int(bad_ts.sum()),
                  _io.field_examples(raw, bad_ts, "timestamp", "timestamp", "is not an integer"))
    bad_any |= bad_ts
    rating, r_missing, r_invalid = _io.parse_float(raw["rating"])
    out_of_range = np.isfinite(rating) & ((rating < 0) | (rating > MAX_RATING))
    keep = ~bad_any
    report.repair("rating_missing", int((r_missing & keep).sum()),
                  _io.field_examples(raw, r_missing & keep, "rating", "rating", "is missing; kept with NaN rating"))
    report.repair("rating_not_a_number", int((r_invalid & keep).sum()),
                  _io.field_examples(raw, r_invalid & keep, "rating", "rating",
                                     "is not a number; kept with NaN rating"))
    report.repair("rating_out_of_range", int((out_of_range & keep).sum()),
                  _io.field_examples(raw, out_of_range & keep, "rating", "rating",
                                     f"is outside [0, {MAX_RATING}]; kept with NaN rating"))
    rating = np.where(out_of_range, np.nan, rating)
    frame = pd.DataFrame({
        USER: _io.strip(raw["user"]).to_numpy(dtype=object),
        ITEM: _io.strip(raw["item"]).to_numpy(dtype=object),
        TIMESTAMP: ts,
        "rating": rating,
        "_line": raw["_line"].to_numpy(),
        "_file": raw["_file"].to_numpy(),
    })
    return frame.loc[keep].reset_index(drop=True)


def _load_items(layout: str, d: Path, report: IngestReport) -> pd.DataFrame:
    """Items table: item_id, title, genre ('|'-joined, sorted), release_date, release_ts (float, NaN unknown)."""
    sub = IngestReport(source="items")
    if layout == "100k":
        f = d / "u.item"
        if not f.exists():
            return _empty_items(report, f)
        genres = list(ML100K_GENRES)
        gfile = d / "u.genre"
        if gfile.exists():
            try:
                gtext, _ = _io.read_text(gfile, "latin-1")
                pairs = [ln.rsplit("|", 1) for ln in _io.split_lines(gtext) if ln.strip()]
                names = [p[0] for p in sorted(pairs, key=lambda p: int(p[1]))]
                if len(names) == 19:
                    genres = names
            except (DatasetError, ValueError, IndexError):
                pass
        raw = _io.read_delimited(f, "|", sub, names=["item", "title", "release", "video", "url", *genres],
                                 encoding="latin-1")
        flags = raw[genres].to_numpy(dtype=object) == "1"
        names = np.array(genres, dtype=object)
        genre = [MULTI_LABEL_SEP.join(sorted(g for g in names[row] if g not in NO_GENRE_MARKERS)) for row in flags]
        rel = pd.to_datetime(raw["release"].str.strip(), format="%d-%b-%Y", errors="coerce", utc=True)
        rel_ts = (rel - pd.Timestamp(0, tz="UTC")).dt.total_seconds().to_numpy(dtype=np.float64)
        title = raw["title"].str.strip()
        year_ts = _year_ts(title)
        source = np.where(~np.isnan(rel_ts), "release_date", np.where(~np.isnan(year_ts), "title_year", "unknown"))
        rel_ts = np.where(np.isnan(rel_ts), year_ts, rel_ts)
    else:
        f = d / ("movies.dat" if layout == "dat" else "movies.csv")
        if not f.exists():
            return _empty_items(report, f)
        if layout == "dat":
            raw = _io.read_delimited(f, "::", sub, names=["item", "title", "genres"], encoding="latin-1")
        else:
            raw = _io.read_delimited(f, ",", sub, names=["item", "title", "genres"], header=True,
                                     encoding="utf-8", quoting=True)
        title = raw["title"].str.strip()
        genre = canonical_multi_label(raw["genres"].where(~raw["genres"].isin(NO_GENRE_MARKERS), ""))
        genre = genre.map(lambda s: MULTI_LABEL_SEP.join(g for g in s.split(MULTI_LABEL_SEP)
                                                         if g and g not in NO_GENRE_MARKERS))
        rel_ts = _year_ts(title)
        source = np.where(np.isnan(rel_ts), "unknown", "title_year")
    items = pd.DataFrame({
        ITEM: raw["item"].str.strip().to_numpy(dtype=object),
        "title": title.to_numpy(dtype=object),
        "genre": np.asarray(genre, dtype=object),
        "release_ts": rel_ts,
        "release_date_source": source,
    })
    items["release_date"] = _iso_dates(items["release_ts"].to_numpy(dtype=np.float64))
    dup = items.duplicated(ITEM, keep="first").to_numpy()
    if dup.any():
        sub.reject("duplicate_item_id", int(dup.sum()),
                   [f"{f.name}:{ln}: duplicate item id" for ln in raw["_line"].to_numpy()[dup][:5]])
        items = items.loc[~dup].reset_index(drop=True)
    if sub.rejected:
        report.note("items_file_rejected_lines", dict(sub.rejected))
        for k, v in sub.examples.items():
            report.examples.setdefault(f"items_file:{k}", list(v))
    report.note("items_release_date_source", dict(pd.Series(source).value_counts().items()))
    return items


def _iso_dates(ts: np.ndarray) -> np.ndarray:
    out = np.full(len(ts), "", dtype=object)
    ok = np.isfinite(ts)
    if ok.any():
        out[ok] = pd.to_datetime(ts[ok].astype(np.int64), unit="s", utc=True).strftime("%Y-%m-%d")
    return out


def _empty_items(report: IngestReport, f: Path) -> pd.DataFrame:
    report.note("items_file", f"{f.name} not found: no titles, genres or release dates")
    return pd.DataFrame({ITEM: pd.Series([], dtype=object), "title": pd.Series([], dtype=object),
                         "genre": pd.Series([], dtype=object), "release_ts": pd.Series([], dtype=np.float64),
                         "release_date_source": pd.Series([], dtype=object)})


def _year_ts(titles: pd.Series) -> np.ndarray:
    """Year in a title '(1995)' -> timestamp of July 2 of that year (mid-year), NaN if none."""
    year = pd.to_numeric(titles.str.extract(_YEAR_RE, expand=False), errors="coerce").to_numpy(dtype=np.float64)
    ok = np.isfinite(year) & (year >= 1870) & (year <= 2100)
    out = np.full(len(year), np.nan)
    if ok.any():
        dt = pd.to_datetime(pd.Series(year[ok].astype(int).astype(str)) + "-07-02", utc=True)
        out[ok] = (dt - pd.Timestamp(0, tz="UTC")).dt.total_seconds().to_numpy()
    return out


def release_bucket_from_ts(ts: np.ndarray, release_ts: np.ndarray) -> np.ndarray:
    """Bucket of (interaction - release) days; negative ages count as the newest bucket;
    unknown release -> '' (missing)."""
    age = (ts - release_ts) / SECONDS_PER_DAY
    idx = np.searchsorted(np.asarray(RELEASE_BUCKET_BOUNDS_DAYS), np.nan_to_num(age, nan=0.0), side="left")
    out = np.asarray(RELEASE_BUCKET_NAMES, dtype=object)[idx]
    return np.where(np.isnan(age), "", out).astype(object)


def _genre_matrix(genres: pd.Series, vocab: list) -> np.ndarray:
    pos = {g: i for i, g in enumerate(vocab)}
    m = np.zeros((len(genres), max(len(vocab), 1)), dtype=bool)
    for r, s in enumerate(genres.to_numpy(dtype=object)):
        for g in str(s).split(MULTI_LABEL_SEP):
            if g in pos:
                m[r, pos[g]] = True
    return m


def causal_action_type(users: np.ndarray, ts: np.ndarray, genres: np.ndarray, *,
                       session_gap_seconds: int = 1800, top_k: int = 3,
                       chunk_rows: int = 1_000_000) -> np.ndarray:
    """Business-style action type of each interaction from the user's past only.

    Rows must be grouped by user in time order. For the interaction at position k
    of a user, with genre counts c_g over positions < k (strictly past):

    1. ``explore``   - the item has genres and none of them is among the user's top-k
                       genres so far (counts > 0, ties included); includes the
                       user's first interaction. "Discover something new."
    2. ``favourite`` - the item has one of the user's most frequent past genres.
    3. ``binge``     - within `session_gap_seconds` of the previous interaction and
                       sharing a genre with it: following the current thread.
    4. ``browse``    - anything else.

    First matching rule wins. Only positions <= k are read, so appending future
    interactions never changes earlier labels.
    """
    N = len(ts)
    out = np.empty(N, dtype=object)
    if N == 0:
        return out
    G = genres.shape[1]
    new_user = np.empty(N, dtype=bool)
    new_user[0] = True
    new_user[1:] = users[1:] != users[:-1]
    starts = np.flatnonzero(new_user)
    k = int(max(1, min(top_k, G)))
    lo = 0
    while lo < N:
        # chunk end on a user boundary
        hi = min(N, lo + chunk_rows)
        if hi < N:
            nxt = starts[np.searchsorted(starts, hi, side="left"):]
            hi = int(nxt[0]) if len(nxt) and nxt[0] > lo else N
        H = genres[lo:hi].astype(np.int32)
        nu = new_user[lo:hi]
        C = np.cumsum(H, axis=0)
        ustart = np.maximum.accumulate(np.where(nu, np.arange(hi - lo), 0))
        base = np.where((ustart > 0)[:, None], C[np.maximum(ustart - 1, 0)], 0)
        past = C - H - base
        has_g = H.any(1)
        kth = np.partition(past, G - k, axis=1)[:, G - k] if G else np.zeros(hi - lo)
        top = (past >= kth[:, None]) & (past > 0)
        explore = has_g & ~(top & (H > 0)).any(1)
        mx = past.max(1) if G else np.zeros(hi - lo)
        fav = ((past == mx[:, None]) & (mx[:, None] > 0) & (H > 0)).any(1)
        t = ts[lo:hi]
        gap = np.empty(hi - lo, dtype=np.float64)
        gap[0] = np.inf
        gap[1:] = t[1:] - t[:-1]
        gap[nu] = np.inf
        prevH = np.zeros_like(H)
        prevH[1:] = H[:-1]
        binge = (gap <= session_gap_seconds) & ((prevH & H) > 0).any(1)
        out[lo:hi] = np.select([explore, fav, binge], ["explore", "favourite", "binge"], "browse")
        lo = hi
    return out
