"""The synthetic catalogue: titles with genres, type, release date, runtime and popularity.

`Catalogue` draws the titles (movies and shows with episodes, 1-3 genres each,
some released during the simulated period) and keeps the popularity-weighted
samplers the simulation draws discover candidates from: per genre, among recent
releases, and over the whole catalogue.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from datasets.schema import ITEM, MULTI_LABEL_SEP
from datasets.synthetic.context import DAY, G, GENRE_PRIOR, GENRES, NEW_RELEASE_DAYS, SECONDARY_GENRE, SIM_START

_ADJ = ("Silent", "Broken", "Golden", "Hidden", "Last", "Crimson", "Electric", "Lost", "Wild",
        "Frozen", "Midnight", "Secret", "Burning", "Distant", "Hollow", "Iron", "Velvet", "Savage",
        "Quiet", "Bright", "Dark", "Little", "Endless", "Final", "Northern", "Paper", "Glass",
        "Scarlet", "Stolen", "Bitter", "Lucky", "Restless", "Sunken", "Twisted", "Wandering")
_NOUN = ("Harbor", "Kingdom", "Witness", "Garden", "Signal", "Empire", "River", "Mirror", "Frontier",
         "Circus", "Protocol", "Orchard", "Detective", "Voyage", "Horizon", "Crown", "Station",
         "Island", "Letters", "Machine", "Summer", "Winter", "Family", "Heist", "Academy", "Dynasty",
         "Shadows", "Paradise", "Tides", "Files", "Code", "Valley", "Outpost", "Reckoning", "Games")


def _titles(rng: np.random.Generator, n: int, is_show: np.ndarray) -> list[str]:
    a = rng.integers(0, len(_ADJ), n)
    b = rng.integers(0, len(_NOUN), n)
    seen: dict[str, int] = {}
    out = []
    for i in range(n):
        base = f"The {_ADJ[a[i]]} {_NOUN[b[i]]}" if (a[i] + b[i]) % 3 == 0 else f"{_ADJ[a[i]]} {_NOUN[b[i]]}"
        k = seen.get(base, 0)
        seen[base] = k + 1
        if k:
            base = f"{base}: Season {k + 1}" if is_show[i] else f"{base} {k + 1}"
        out.append(base)
    return out


class Catalogue:
    """`num_items` titles as arrays indexed by title (0 .. I-1), and the samplers over them."""

    def __init__(self, rng: np.random.Generator, num_items: int, horizon_days: float):
        I = num_items
        self.I = I
        self.is_show = rng.random(I) < 0.4
        primary = rng.choice(G, size=I, p=GENRE_PRIOR)
        gm = np.zeros((I, G), dtype=bool)
        gm[np.arange(I), primary] = True
        cdf = np.cumsum(SECONDARY_GENRE, 1)[primary]
        sec = np.minimum((cdf < rng.random(I)[:, None]).sum(1), G - 1)
        has_sec = rng.random(I) < 0.55
        gm[np.arange(I)[has_sec], sec[has_sec]] = True
        has_third = rng.random(I) < 0.15
        third = rng.integers(0, G, I)
        gm[np.arange(I)[has_third], third[has_third]] = True
        self.genres = gm
        self.primary = primary
        kind = rng.choice(3, size=I, p=[0.45, 0.15, 0.40])
        offset_days = np.where(
            kind == 0, -rng.uniform(365, 365 * 25, I),
            np.where(kind == 1, -rng.uniform(30, 365, I), rng.uniform(-30, horizon_days, I)))
        self.release_ts = (SIM_START + np.floor(offset_days) * DAY + 8 * 3600).astype(np.int64)
        movie_rt = np.clip(rng.normal(105, 18, I), 75, 170)
        ep_rt = rng.choice([24.0, 30.0, 45.0, 55.0], size=I, p=[.25, .15, .35, .25]) + rng.normal(0, 3, I)
        self.runtime = np.round(np.where(self.is_show, np.clip(ep_rt, 18, 70), movie_rt), 1)
        self.n_eps = np.where(self.is_show, 4 + rng.poisson(6, I), 1).astype(np.int16)
        self.popularity = rng.lognormal(0.0, 1.0, I)
        self.logpop = np.log(self.popularity)
        self.titles = _titles(rng, I, self.is_show)
        width = max(5, len(str(I)))
        self.ids = np.array([f"t{i:0{width}d}" for i in range(I)], dtype=object)
        self.genre_str = np.array(
            [MULTI_LABEL_SEP.join(GENRES[g] for g in np.flatnonzero(row)) for row in gm], dtype=object)
        # Samplers: popularity-weighted per genre pool, by release order, global.
        pools = [np.flatnonzero(gm[:, g]) for g in range(G)]
        self.pool_items = np.concatenate(pools)
        lens = np.array([len(p) for p in pools])
        self.pool_start = np.concatenate([[0], np.cumsum(lens)[:-1]])
        self.pool_end = np.cumsum(lens)
        self.pool_cum = np.concatenate([[0.0], np.cumsum(self.popularity[self.pool_items])])
        self.rel_order = np.argsort(self.release_ts, kind="stable")
        self.rel_sorted = self.release_ts[self.rel_order]
        self.rel_cum = np.concatenate([[0.0], np.cumsum(self.popularity[self.rel_order])])
        self.glob_cum = np.concatenate([[0.0], np.cumsum(self.popularity)])

    def frame(self) -> pd.DataFrame:
        rel = pd.to_datetime(self.release_ts, unit="s", utc=True)
        return pd.DataFrame({
            ITEM: self.ids,
            "title": self.titles,
            "item_type": np.where(self.is_show, "show", "movie").astype(object),
            "genre": self.genre_str,
            "release_date": rel.strftime("%Y-%m-%d").to_numpy(dtype=object),
            "release_ts": self.release_ts,
            "runtime_minutes": self.runtime,
            "episodes": self.n_eps.astype(np.int64),
            "popularity": self.popularity,
        })

    # Samplers: uniform u in [cum[lo], cum[hi]) -> index via searchsorted.
    @staticmethod
    def _draw(cum, lo, hi, u):
        a = cum[lo][:, None]
        b = cum[hi][:, None]
        x = a + u * (b - a)
        j = np.searchsorted(cum, x, side="right") - 1
        return np.clip(j, lo[:, None], np.maximum(hi - 1, lo)[:, None])

    def sample_genre(self, rng, genre, k):
        lo, hi = self.pool_start[genre], self.pool_end[genre]
        j = self._draw(self.pool_cum, lo, hi, rng.random((len(genre), k)))
        out = self.pool_items[np.minimum(j, len(self.pool_items) - 1)]
        return np.where((hi > lo)[:, None], out, -1)

    def sample_new(self, rng, ts, k):
        lo = np.searchsorted(self.rel_sorted, ts - NEW_RELEASE_DAYS * DAY, side="left")
        hi = np.searchsorted(self.rel_sorted, ts, side="right")
        j = self._draw(self.rel_cum, lo, hi, rng.random((len(ts), k)))
        out = self.rel_order[np.minimum(j, self.I - 1)]
        return np.where((hi > lo)[:, None], out, -1)

    def sample_global(self, rng, n, k):
        lo = np.zeros(n, dtype=np.int64)
        hi = np.full(n, self.I, dtype=np.int64)
        return self._draw(self.glob_cum, lo, hi, rng.random((n, k)))
