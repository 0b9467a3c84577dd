"""The rows of the paper's Tables 1–3, the tuning grids and how each row's model is built."""

from __future__ import annotations

import dataclasses

ITEM_METRICS = ("ndcg@10", "recall@10", "mrr")
SELECTION_METRIC = "ndcg@10"

# Size shared by every model (the `ModelConfig` defaults); the grid varies width and
# dropout for every row alike. Quick (CI smoke) runs shrink every model.
QUICK_MODEL = {"d_model": 16, "num_layers": 1}
# The same grid for every row (learning rate × dropout × width), chosen on validation.
GRIDS = {
    "none": {"learning_rate": [1e-3], "dropout": [0.2], "d_model": [64]},
    "small": {"learning_rate": [1e-3, 3e-3], "dropout": [0.2, 0.5], "d_model": [64, 128]},
    "full": {"learning_rate": [5e-4, 1e-3, 3e-3], "dropout": [0.1, 0.3, 0.5], "d_model": [64, 128]},
}
BASELINE_ROWS = ("lstm", "gru", "transformer", "sasrec", "bert4rec", "transact")
# Run order: the SASRec sanity anchor, the Table 1 reference (TransAct) and the other
# baselines, then IntentRec; partial tables (rewritten after every run) fill in that order.
PRIORITY = ("sasrec", "transact", "bert4rec", "transformer", "gru", "lstm", "v0", "v1", "v3", "v2", "v3_month")
LABELS = {
    "lstm": "LSTM", "gru": "GRU", "transformer": "Transformer", "sasrec": "SASRec", "bert4rec": "BERT4Rec",
    "transact": "TransAct", "v0": "IntentRec-V0", "v1": "V1: simple MTL", "v2": "V2: hierarchical MTL",
}


# --------------------------------------------------------------------------------------
# Rows
# --------------------------------------------------------------------------------------
@dataclasses.dataclass
class Row:
    """One model configuration (a table row). `tune_as`: whose tuned config it uses."""

    id: str
    label: str
    kind: str  # "baseline" | "intentrec"
    params: dict  # baseline: {"name"}; intentrec: IntentRecConfig overrides (+ "intents")
    tune_as: str


def training_order(rows: dict, requested=()) -> list:
    """Row ids in training order: `requested` first, then PRIORITY, then the rest; a row
    that inherits another row's tuned config (`tune_as`) always follows that row, since
    its seed-0 run needs the chosen config."""
    order = [r for r in requested if r in rows]
    order += [r for r in PRIORITY if r in rows and r not in order]
    order += [r for r in rows if r not in order]
    inherits = {r for r in order if rows[r].tune_as != r and rows[r].tune_as in rows}
    return [r for r in order if r not in inherits] + [r for r in order if r in inherits]


def build_rows(spec) -> tuple[dict, dict]:
    """(rows by id, {"table1": [...], "table2": [...], "table3": [...]}) for a `FeatureSpec`."""
    heads = [h.name for h in spec.intents]
    timed = spec.has_timestamps
    rows = {}

    def add(row_id, label, kind, params, tune_as=None):
        rows[row_id] = Row(row_id, label, kind, params, tune_as or row_id)

    for name in BASELINE_ROWS:
        add(name, LABELS[name], "baseline", {"name": name})
    add("v0", LABELS["v0"], "intentrec", {"variant": "v0"})
    add("v1", LABELS["v1"], "intentrec", {"variant": "v1"})
    add("v2", LABELS["v2"], "intentrec", {"variant": "v2"})
    if timed:
        week, month = {"short_term_window_days": 7.0}, {"short_term_window_days": 30.0}
        week_label, month_label = "V3: short-term, last 1 week", "V3: short-term, last 1 month"
    else:  # no timestamps: the count window (paper §3.2's naive definition)
        week, month = {"short_term_window_count": 10}, {"short_term_window_count": 40}
        week_label, month_label = "V3: short-term, last 10 interactions", "V3: short-term, last 40 interactions"
    add("v3", week_label, "intentrec", {"variant": "v3", **week})
    add("v3_month", month_label, "intentrec", {"variant": "v3", **month})
    single = []
    if len(heads) > 1:
        for head in heads:
            add(f"v3_only_{head}", f"V3, only {head}", "intentrec", {"variant": "v3", **week, "intents": [head]},
                tune_as="v3")
            single.append(f"v3_only_{head}")
    tables = {
        "table1": [*BASELINE_ROWS, "v0", "v3"],
        "table2": ["v0", "v1", "v2", "v3_month", "v3"],
        "table3": ["v0", *single, "v3"],
    }
    return rows, tables


def build_model(row: Row, spec, hp: dict, quick: bool = False):
    """A fresh model for `row` with hyperparameters `hp` (the model part: dropout, width)."""
    from model import IntentRec, IntentRecConfig
    from model.baselines import build_baseline

    arch = {"dropout": hp["dropout"], "d_model": hp.get("d_model", 64)}
    if quick:
        arch.update(QUICK_MODEL)
    layers = arch.pop("num_layers", None)
    if row.kind == "baseline":
        return build_baseline(row.params["name"], spec, **arch, **({"num_layers": layers} if layers else {}))
    params = dict(row.params)
    intents = params.pop("intents", None)
    extra = {"intent_layers": layers, "item_layers": layers} if layers else {}
    if quick:  # shrink the side widths with the model
        extra.update(feature_embedding_dim=8, d_short=8, d_proj=8)
    return IntentRec(IntentRecConfig.from_feature_spec(spec, intents=intents, **{**extra, **arch, **params}))


def parse_grid(spec: str) -> dict:
    """A grid by name (`GRIDS`), or written out: "learning_rate=3e-3,dropout=0.2/0.5" (values
    split by "/"; an axis left out takes the `none` grid's value), e.g. to re-run one config
    of a grid under another protocol."""
    if spec in GRIDS:
        return GRIDS[spec]
    grid = dict(GRIDS["none"])
    for part in spec.split(","):
        key, sep, values = part.partition("=")
        key = key.strip()
        if not sep or key not in grid:
            raise ValueError(f"grid {spec!r}: {part!r} is not one of {sorted(GRIDS)} or KEY=V1/V2 with KEY in "
                             f"{sorted(grid)}")
        try:
            grid[key] = [int(v) if key == "d_model" else float(v) for v in values.split("/")]
        except ValueError:
            raise ValueError(f"grid {spec!r}: {key} values {values!r} are not numbers") from None
    return grid


def grid_configs(grid: dict) -> list[dict]:
    return [{"learning_rate": lr, "dropout": dr, "d_model": d}
            for d in grid["d_model"] for lr in grid["learning_rate"] for dr in grid["dropout"]]
