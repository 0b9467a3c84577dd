"""The configurations the benchmark measures: a `Case` (model, item-loss mode, shape,
precision, attention) and the named grids of cases, most important first."""

from __future__ import annotations

import dataclasses

from datasets.feature_spec import DEFAULT_MAX_LEN, FeatureSpec, IntentHead

# Synthetic feature spec of the reference shape: 2 intent heads, metadata like
# the synthetic/MovieLens adapters produce.
def feature_spec(num_items: int, max_len: int = DEFAULT_MAX_LEN) -> FeatureSpec:
    """A synthetic-data-like spec with `num_items` items."""
    return FeatureSpec(
        max_len=max_len,
        item_vocab_size=int(num_items),
        categorical=(("action_type", 8), ("item_type", 6), ("hour_of_day", 26), ("day_of_week", 9)),
        multi_hot=(("genre", 22),),
        numeric=("duration",),
        intents=(IntentHead("action_type", "single", 8), IntentHead("genre", "multi", 22)),
        has_timestamps=True,
    )


MODES = ("naive", "naive_xla", "labels", "chunked", "sampled")
# mode: (item_loss, loss on labelled rows only, XLA, forced dtype policy or None = the case's)
MODE_CONFIG = {
    "naive": ("full", False, False, "float32"),  # the straightforward step: fp32, eager
    "naive_xla": ("full", False, True, None),  # the same model compiled (issue 7's 88 ms step)
    "labels": ("full", True, True, None),
    "chunked": ("chunked", True, True, None),
    "sampled": ("sampled", True, True, None),
}


@dataclasses.dataclass
class Case:
    model: str  # "intentrec" | "sasrec"
    mode: str
    n: int
    items: int
    batch: int
    precision: str = "float32"  # Keras dtype policy
    steps_per_execution: int = 1
    attention: str = "default"  # "default" (the backend's), "flash" (fused kernel required) or "composite"

    def __post_init__(self):
        forced = MODE_CONFIG[self.mode][3]
        if forced:
            self.precision = forced

    @property
    def jit(self) -> bool:
        return MODE_CONFIG[self.mode][2]

    @property
    def key(self) -> str:
        return (f"{self.model}/{self.mode}/n{self.n}/I{self.items}/b{self.batch}/{self.precision}"
                f"/spe{self.steps_per_execution}" + ("" if self.attention == "default" else f"/{self.attention}"))


def grid(name: str, batch: int | None = None) -> list[Case]:
    """The configurations of a named grid, most important first (a time budget
    cuts the tail)."""
    def optimized(model, n, items, b, p):
        """The fast exact head up to 100k items, plus the sampled head from 100k."""
        modes = (["chunked"] if items < 100_000 else []) + (["chunked", "sampled"] if items == 100_000 else [])
        modes += ["sampled"] if items > 100_000 else []
        return [Case(model, m, n, items, b, p) for m in modes]

    if name == "gpu":
        b, p = batch or 256, "mixed_bfloat16"
        ref = dict(n=200, items=3706, batch=b, precision=p)
        # The reference shape, naive and optimized side by side, then 1M items.
        cases = [Case("intentrec", m, **ref) for m in ("naive_xla", "chunked", "sampled")]
        cases += [Case("intentrec", "sampled", 200, 1_000_000, b, p), Case("intentrec", "naive", **ref)]
        cases += [Case("sasrec", m, **ref) for m in ("naive_xla", "chunked")]
        cases += [Case("intentrec", "chunked", 200, 100_000, b, p), Case("intentrec", "sampled", 200, 100_000, b, p)]
        cases += [Case("intentrec", "chunked", **ref, steps_per_execution=4),
                  Case("intentrec", "chunked", **ref, attention="flash"), Case("intentrec", "labels", **ref)]
        cases += [Case("sasrec", "sampled", 200, 1_000_000, b, p), Case("sasrec", "naive", **ref)]
        # The rest of the grid n x |I| (optimized heads), then naive references that fit.
        for model in ("intentrec", "sasrec"):
            for n in (50, 100, 400):
                for items in (3706, 1_000_000, 100_000):
                    cases += optimized(model, n, items, b, p)
            cases += optimized(model, 200, 100_000, b, p)
        cases += [Case("intentrec", "naive_xla", 200, 100_000, b, p)]
        cases += [Case("intentrec", "naive_xla", n, 3706, b, p) for n in (50, 100, 400)]
        cases += [Case("intentrec", "naive", 200, 100_000, b, p)]
        seen, unique = set(), []
        for c in cases:
            if c.key not in seen:
                seen.add(c.key)
                unique.append(c)
        return unique
    if name == "cpu":
        b = batch or 32
        cases = [Case("intentrec", m, 50, 3706, b) for m in MODES]
        cases += [Case("sasrec", m, 50, 3706, b) for m in ("naive", "naive_xla", "chunked", "sampled")]
        cases += [Case("intentrec", m, 50, 100_000, b) for m in ("naive_xla", "chunked", "sampled")]
        cases += [Case("intentrec", m, 100, 3706, b) for m in ("naive_xla", "chunked")]
        cases += [Case("intentrec", "sampled", 50, 1_000_000, b), Case("sasrec", "sampled", 50, 1_000_000, b)]
        return cases
    if name == "quick":
        b = batch or 8
        return [Case("intentrec", m, 16, 500, b) for m in MODES] + [Case("sasrec", "chunked", 16, 500, b)]
    raise ValueError(f"unknown grid {name!r}")
