"""Ablations: one difference at a time, over seeds, under the one training protocol.

    python -m bench.ablation --dataset ml-100k --study backbone --seeds 3
    python -m bench.ablation --dataset synthetic-small --study intents --seeds 3 --rows v3,v3_intent_score
    python -m bench.ablation --list                       # the studies and their rows

Each study is a list of rows: a reference row and variants that each change one
thing (a model config override, or a baseline). Every run trains with
`model.training.fit_and_evaluate` and the default `TrainConfig` (early stopping on
validation NDCG@10), so the rows differ only in what the row names. Runs are cached
in `results/<dataset>/ablation_runs.jsonl` (keyed by dataset, row definition, seed and
training config), so a study resumes where it stopped and rows shared by studies
are trained once. Writes `results/<dataset>/ablation_<study>.{md,json}`: mean ± std
over seeds of test NDCG@10 / Recall@10 / MRR and intent accuracy, the change vs the
study's reference row, and Welch's t-test p-value.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import hashlib
import json
import pathlib
import time

import numpy as np

from datasets.cli import add_dataset_arguments, dataset_from_args

REPO = pathlib.Path(__file__).resolve().parent.parent

# The IntentRec backbone before issue 12 (the paper's: FC + LayerNorm input, timestamp
# encoding only, an untied item head), and SASRec's ingredients on top of it.
OLD_BACKBONE = {"position_embedding": False, "tie_item_embeddings": False, "input_projection": "dense_norm",
                "time_encoding": True}
SASREC_BACKBONE = {"position_embedding": True, "tie_item_embeddings": True, "input_projection": "item_plus_dense",
                   "time_encoding": True}
# Every ablation row starts from the item scores as they were when the studies began
# (both off), not from today's `IntentRecConfig` defaults: a row means the same model
# whatever the defaults become, so its cached runs stay valid.
ABLATION_BASE = {"intent_item_score": False, "repeat_score": False, "intent_history_prior": False,
                 "intent_score_reads_prior": True}
# The default IntentRec before the intent history prior (issue 12's outcome until then),
# spelled out for the same reason; today's default adds `intent_history_prior=True` with
# `intent_score_reads_prior=False` (the `intent_prior` study's
# "default_intent_prior_score_without" row).
DEFAULT_INTENTREC = {**SASREC_BACKBONE, "intent_item_score": True, "repeat_score": True}
# Today's default IntentRec (V3, λ = 0.5, the intent history prior, the item score reading the
# heads without it), spelled out once for every study that measures against it.
TODAY_DEFAULT = {**DEFAULT_INTENTREC, "variant": "v3", "intent_loss_weight": 0.5, "intent_history_prior": True,
                 "intent_score_reads_prior": False}


@dataclasses.dataclass(frozen=True)
class Row:
    id: str
    label: str
    model: str  # "intentrec" or a baseline name
    overrides: tuple = ()  # (key, value) pairs of config overrides

    @property
    def config(self) -> dict:
        return dict(self.overrides)


def _row(row_id, label, model="intentrec", **overrides):
    return Row(row_id, label, model, tuple(sorted(overrides.items())))


STUDIES = {
    # Issue 12, item 1: what separates IntentRec-V0 from SASRec, one difference at a time.
    "backbone": [
        _row("sasrec", "SASRec", "sasrec"),
        _row("v0_old", "V0, old backbone (reference)", variant="v0", **OLD_BACKBONE),
        _row("v0_position", "V0 + position embedding", variant="v0", **{**OLD_BACKBONE, "position_embedding": True}),
        _row("v0_tied", "V0 + tied item embeddings", variant="v0", **{**OLD_BACKBONE, "tie_item_embeddings": True}),
        _row("v0_item_plus_dense", "V0 + item embedding kept (item + FC(rest))", variant="v0",
             **{**OLD_BACKBONE, "input_projection": "item_plus_dense"}),
        _row("v0_no_time", "V0 − timestamp encoding", variant="v0", **{**OLD_BACKBONE, "time_encoding": False}),
        _row("v0_sasrec_backbone", "V0 + all three (position, tied, item kept)", variant="v0", **SASREC_BACKBONE),
        _row("v0_sasrec_backbone_no_time", "V0 + all three − timestamp encoding", variant="v0",
             **{**SASREC_BACKBONE, "time_encoding": False}),
    ],
    # Issue 12, item 2: what makes the intents pay off on the ranking, on the new backbone.
    "intents": [
        _row("sasrec", "SASRec", "sasrec"),
        _row("v0", "V0 (no intents)", variant="v0", **SASREC_BACKBONE),
        _row("v1", "V1: simple MTL", variant="v1", **SASREC_BACKBONE),
        _row("v3", "V3: hierarchical + short-term (reference)", variant="v3", **SASREC_BACKBONE),
        _row("v3_intent_score", "V3 + intent item score (α-weighted)", variant="v3", intent_item_score=True,
             **SASREC_BACKBONE),
        _row("v1_intent_score", "V1 + intent item score", variant="v1", intent_item_score=True, **SASREC_BACKBONE),
        _row("v3_lambda_0.2", "V3, λ = 0.2", variant="v3", intent_loss_weight=0.2, **SASREC_BACKBONE),
        _row("v3_lambda_1", "V3, λ = 1", variant="v3", intent_loss_weight=1.0, **SASREC_BACKBONE),
        _row("v3_intent_score_lambda_1", "V3 + intent item score, λ = 1", variant="v3", intent_item_score=True,
             intent_loss_weight=1.0, **SASREC_BACKBONE),
        _row("v3_repeat", "V3 + copy score", variant="v3", repeat_score=True, **SASREC_BACKBONE),
        _row("v3_intent_score_repeat", "V3 + intent item score + copy score", variant="v3", intent_item_score=True,
             repeat_score=True, **SASREC_BACKBONE),
        _row("v3_intent_score_repeat_dense_intents", "V3 + intent score + copy, intent encoder FC+LayerNorm",
             variant="v3", intent_item_score=True, repeat_score=True,
             **{**SASREC_BACKBONE, "intent_input_projection": "dense_norm"}),
    ],
    # Issue 15: re-consumption (synthetic continue/rewatch sessions, e-commerce re-views).
    "repeat": [
        _row("sasrec", "SASRec", "sasrec"),
        _row("v3", "V3 (reference)", variant="v3", **SASREC_BACKBONE),
        _row("v3_repeat", "V3 + copy score", variant="v3", repeat_score=True, **SASREC_BACKBONE),
        _row("v3_repeat_intent_score", "V3 + copy score + intent item score", variant="v3", repeat_score=True,
             intent_item_score=True, **SASREC_BACKBONE),
        _row("v0_repeat", "V0 + copy score", variant="v0", repeat_score=True, **SASREC_BACKBONE),
        _row("v3_repeat_intent_score_dense_intents", "V3 + copy + intent score, intent encoder FC+LayerNorm",
             variant="v3", repeat_score=True, intent_item_score=True,
             **{**SASREC_BACKBONE, "intent_input_projection": "dense_norm"}),
        _row("v3_repeat_intent_score_alpha_entropy", "V3 + copy + intent score, α entropy penalty 0.1",
             variant="v3", repeat_score=True, intent_item_score=True, alpha_entropy_weight=0.1, **SASREC_BACKBONE),
        _row("v3_repeat_intent_score_alpha_mi", "V3 + copy + intent score, α mutual-information term 0.1",
             variant="v3", repeat_score=True, intent_item_score=True, alpha_entropy_weight=0.1,
             alpha_regularizer="mutual_information", **SASREC_BACKBONE),
        _row("v3_repeat_intent_score_alpha_mi_1", "V3 + copy + intent score, α mutual-information term 1.0",
             variant="v3", repeat_score=True, intent_item_score=True, alpha_entropy_weight=1.0,
             alpha_regularizer="mutual_information", **SASREC_BACKBONE),
    ],
    # Issue 12: the default's intent accuracy is below the first model's (synthetic genre
    # 0.46 vs 0.55); V3 without item scores, old backbone plus one SASRec ingredient at a time.
    "intent_accuracy": [
        _row("v3_old", "V3, old backbone (the first model's architecture)", variant="v3", **OLD_BACKBONE),
        _row("v3_old_position", "V3, old backbone + position embedding", variant="v3",
             **{**OLD_BACKBONE, "position_embedding": True}),
        _row("v3_old_tied", "V3, old backbone + tied item embeddings", variant="v3",
             **{**OLD_BACKBONE, "tie_item_embeddings": True}),
        _row("v3_old_item_plus_dense", "V3, old backbone + item embedding kept", variant="v3",
             **{**OLD_BACKBONE, "input_projection": "item_plus_dense"}),
        _row("v3", "V3, SASRec-style backbone (all three)", variant="v3", **SASREC_BACKBONE),
    ],
    # Issue 12: the default's intent heads learn genre slowly and plateau low (val genre
    # accuracy per epoch: docs/experiments.md); the intent loss weight λ and how the item
    # loss reaches the heads, on today's default. λ = 0.5 is spelled out so the reference
    # is trained on today's code, not read from runs cached before the intent score changed.
    "intent_weight": [
        _row("sasrec", "SASRec", "sasrec"),
        _row("default_lambda_0.5", "default IntentRec (λ = 0.5)", variant="v3", intent_loss_weight=0.5,
             **DEFAULT_INTENTREC),
        _row("default_lambda_1", "default, λ = 1", variant="v3", intent_loss_weight=1.0, **DEFAULT_INTENTREC),
        _row("default_lambda_2", "default, λ = 2", variant="v3", intent_loss_weight=2.0, **DEFAULT_INTENTREC),
        _row("default_lambda_4", "default, λ = 4", variant="v3", intent_loss_weight=4.0, **DEFAULT_INTENTREC),
        _row("default_lambda_2_dense_intents", "default, λ = 2, intent encoder FC+LayerNorm", variant="v3",
             intent_loss_weight=2.0, **{**DEFAULT_INTENTREC, "intent_input_projection": "dense_norm"}),
        _row("default_detach_intents", "default, item loss stopped at the intent predictions", variant="v3",
             intent_loss_weight=0.5, detach_intents=True, **DEFAULT_INTENTREC),
    ],
    # Issue 12: a Markov reference ("the next intent is the current one") beats the
    # default's intent heads on synthetic and e-commerce logs; the heads with a prior
    # from the intents in the history (`IntentRecConfig.intent_history_prior`).
    "intent_prior": [
        _row("sasrec", "SASRec", "sasrec"),
        _row("default_lambda_0.5", "default IntentRec (λ = 0.5)", variant="v3", intent_loss_weight=0.5,
             **DEFAULT_INTENTREC),
        _row("default_intent_prior", "default + intent history prior", variant="v3", intent_loss_weight=0.5,
             intent_history_prior=True, **DEFAULT_INTENTREC),
        _row("default_intent_prior_score_without", "default + prior, intent item score without it",
             **TODAY_DEFAULT),
    ],
    # Issue 12, item 2: attention that sees how far apart two interactions are (TiSASRec,
    # HSTU), on today's default (the row above, so its cached runs are the reference).
    "time_bias": [
        _row("sasrec", "SASRec", "sasrec"),
        _row("default_intent_prior_score_without", "default IntentRec (reference)", **TODAY_DEFAULT),
        _row("default_relative_time_bias", "default + relative time-gap attention bias", relative_time_bias=True,
             **TODAY_DEFAULT),
    ],
    # Issue 12, item 2: the item encoder reading E^intent (the intent encoder's output) as well
    # as Z, so the intents shape the item encoder's representation as V1's shared encoder
    # does. At the default config, and at the config ml-100k's grid picked for both rows
    # (width 128, dropout 0.5; run with `--train learning_rate=0.003`).
    "intent_hidden": [
        _row("sasrec", "SASRec", "sasrec"),
        _row("default_intent_prior_score_without", "default IntentRec (reference)", **TODAY_DEFAULT),
        _row("default_item_reads_intent_hidden", "default + item encoder reads E^intent",
             item_reads_intent_hidden=True, **TODAY_DEFAULT),
        _row("sasrec_w128_dropout_0.5", "SASRec, width 128, dropout 0.5", "sasrec", d_model=128, dropout=0.5),
        _row("default_w128_dropout_0.5", "default IntentRec, width 128, dropout 0.5", d_model=128, dropout=0.5,
             **TODAY_DEFAULT),
        _row("default_w128_dropout_0.5_item_reads_intent_hidden",
             "default + item encoder reads E^intent, width 128, dropout 0.5", d_model=128, dropout=0.5,
             item_reads_intent_hidden=True, **TODAY_DEFAULT),
    ],
    # Issue 12, item 2: attention that compares the interactions' attributes on their own
    # (`attribute_attention_bias`, DIF-SR), at the default config and at ml-100k's tuned one
    # (width 128, dropout 0.5; run with `--train learning_rate=0.003`).
    "attribute_bias": [
        _row("default_intent_prior_score_without", "default IntentRec (reference)", **TODAY_DEFAULT),
        _row("default_attribute_attention_bias", "default + attribute attention bias", attribute_attention_bias=True,
             **TODAY_DEFAULT),
        _row("default_w128_dropout_0.5", "default IntentRec, width 128, dropout 0.5", d_model=128, dropout=0.5,
             **TODAY_DEFAULT),
        _row("default_w128_dropout_0.5_attribute_attention_bias",
             "default + attribute attention bias, width 128, dropout 0.5", d_model=128, dropout=0.5,
             attribute_attention_bias=True, **TODAY_DEFAULT),
    ],
    # Weight averaging (`TrainConfig.ema_momentum`, a protocol setting for every row): the
    # two rows at the config ml-100k's grid picked, run with and without
    # `--train ema_momentum=...` (and `--train learning_rate=0.003`).
    "weight_averaging": [
        _row("sasrec_w128_dropout_0.5", "SASRec, width 128, dropout 0.5", "sasrec", d_model=128, dropout=0.5),
        _row("default_w128_dropout_0.5", "default IntentRec, width 128, dropout 0.5", d_model=128, dropout=0.5,
             **TODAY_DEFAULT),
    ],
}
REFERENCE = {"backbone": "v0_old", "intents": "v3", "repeat": "v3", "intent_accuracy": "v3_old",
             "intent_weight": "default_lambda_0.5",
             "intent_prior": "default_lambda_0.5", "time_bias": "default_intent_prior_score_without",
             "intent_hidden": "default_intent_prior_score_without", "weight_averaging": "sasrec_w128_dropout_0.5",
             "attribute_bias": "default_intent_prior_score_without"}
METRICS = ("ndcg@10", "recall@10", "mrr")
KEYED_IF_SET = ("selection_tolerance", "ema_momentum")


def protocol_key(train_cfg) -> dict:
    """The TrainConfig as runs are keyed by: without seed and verbosity, and without a field
    added after runs were cached while it has its default (the behaviour those runs had)."""
    defaults = type(train_cfg)()
    return {k: v for k, v in dataclasses.asdict(train_cfg).items() if k not in ("seed", "verbose")
            and not (k in KEYED_IF_SET and v == getattr(defaults, k))}


def run_key(dataset: str, row: Row, seed: int, train: dict, backend: str) -> str:
    blob = json.dumps({"dataset": dataset, "model": row.model, "overrides": row.overrides, "seed": seed,
                       "train": train, "backend": backend}, sort_keys=True, default=str)
    return hashlib.sha1(blob.encode()).hexdigest()[:16]


def build_model(row: Row, spec):
    from model import IntentRec, IntentRecConfig
    from model.baselines import build_baseline

    if row.model == "intentrec":
        config = {**ABLATION_BASE, **row.config}
        intents = config.pop("intents", None)
        return IntentRec(IntentRecConfig.from_feature_spec(spec, intents=intents, **config))
    return build_baseline(row.model, spec, **row.config)


def train_one(row: Row, seed: int, encoded, train_cfg) -> dict:
    import keras

    from model import training

    keras.utils.clear_session()
    keras.utils.set_random_seed(seed)
    started = time.perf_counter()
    model = build_model(row, encoded.feature_spec)
    cfg = dataclasses.replace(train_cfg, seed=seed)
    result = training.fit_and_evaluate(model, encoded, cfg)
    # Per epoch: validation NDCG@10 and intent accuracies (learning curves of the heads).
    curves = [{k: round(float(v), 4) for k, v in h.items()
               if k == "epoch" or k == "val_ndcg@10" or k.startswith("val_intent_accuracy/")}
              for h in result["history"]]
    return {"row": row.id, "seed": seed, "val": result["val"], "test": result["test"],
            "best_epoch": result["best_epoch"], "selected_epoch": result["selected_epoch"],
            "epochs_run": result["epochs_run"], "wall_seconds": time.perf_counter() - started,
            "params": int(model.count_params()),
            "alpha": attention_spread(model, encoded.test), "curves": curves}


def attention_spread(model, split, batch=512) -> dict:
    """How personal α is: per head, the mean and the std across test users of α at the
    last position, and the mean normalised entropy of α (1 = uniform over the heads)."""
    import keras

    alphas = []
    for lo in range(0, len(split), batch):
        out = model({k: split.x[k][lo:lo + batch] for k in model.input_names}, training=False)
        if "intent_attention" not in out:
            return {}
        alphas.append(keras.ops.convert_to_numpy(out["intent_attention"][:, -1]))
    alpha = np.concatenate(alphas).astype(np.float64)
    heads = [h.name for h in model.intent_heads]
    entropy = -(alpha * np.log(np.maximum(alpha, 1e-12))).sum(axis=1) / max(np.log(len(heads)), 1e-12)
    return {"mean": dict(zip(heads, alpha.mean(axis=0).round(4).tolist())),
            "std_across_users": dict(zip(heads, alpha.std(axis=0).round(4).tolist())),
            "normalised_entropy": round(float(entropy.mean()), 4)}


def load_runs(path: pathlib.Path) -> dict:
    runs = {}
    if path.exists():
        for line in path.read_text().splitlines():
            if line.strip():
                record = json.loads(line)
                runs[record["key"]] = record
    return runs


def summarize(values) -> str:
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return "–"
    return f"{values.mean():.4f} ± {values.std(ddof=1):.4f}" if values.size > 1 else f"{values.mean():.4f}"


def compare(values, reference) -> str:
    from scipy import stats

    a, b = np.asarray(values, np.float64), np.asarray(reference, np.float64)
    if a.size == 0 or b.size == 0 or b.mean() == 0:
        return "–"
    rel = 100.0 * (a.mean() - b.mean()) / b.mean()
    if a.size < 2 or b.size < 2:
        return f"{rel:+.1f}%"
    p = stats.ttest_ind(a, b, equal_var=False).pvalue
    return f"{rel:+.1f}% (p={p:.2g})"


def table(study: str, rows: list, results: dict, reference: str) -> str:
    ref_runs = results.get(reference, [])
    # Every study's question is also "does it beat SASRec?": a second comparison column.
    vs_sasrec = "sasrec" in results and reference != "sasrec"
    intents = sorted({k for runs in results.values() for r in runs for k in r["test"] if k.startswith("intent_")})
    has_alpha = any(r.get("alpha") for runs in results.values() for r in runs)
    header = ["row", "n", *[m for m in METRICS], f"NDCG@10 vs {reference}",
              *(["NDCG@10 vs SASRec"] if vs_sasrec else []), *[k.split("/", 1)[1] + " acc" for k in intents],
              *(["α std across users", "α entropy"] if has_alpha else []), "best (→ restored) epoch / run",
              "min / run"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        runs = results.get(row.id, [])
        cells = [row.label, str(len(runs))]
        cells += [summarize([r["test"][m] for r in runs]) for m in METRICS]
        cells.append("ref" if row.id == reference else compare([r["test"]["ndcg@10"] for r in runs],
                                                               [r["test"]["ndcg@10"] for r in ref_runs]))
        if vs_sasrec:
            cells.append("ref" if row.id == "sasrec" else compare(
                [r["test"]["ndcg@10"] for r in runs], [r["test"]["ndcg@10"] for r in results["sasrec"]]))
        cells += [summarize([r["test"][k] for r in runs if k in r["test"]]) for k in intents]
        if has_alpha:
            spread = [np.mean(list(r["alpha"]["std_across_users"].values())) for r in runs if r.get("alpha")]
            cells.append(summarize(spread) if spread else "–")
            cells.append(summarize([r["alpha"]["normalised_entropy"] for r in runs if r.get("alpha")])
                         if spread else "–")
        cells.append(", ".join(f"{r['best_epoch']}{_restored(r)}/{r['epochs_run']}" for r in runs) or "–")
        cells.append(f"{np.mean([r['wall_seconds'] for r in runs]) / 60:.1f}" if runs else "–")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _restored(run) -> str:
    """'→e' when the restored epoch is not the best one (`TrainConfig.selection_tolerance`)."""
    selected = run.get("selected_epoch", run["best_epoch"])
    return f"→{selected}" if selected != run["best_epoch"] else ""


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_dataset_arguments(p, default="synthetic-small")
    p.add_argument("--study", default="backbone", choices=sorted(STUDIES))
    p.add_argument("--rows", default=None, help="comma-separated row ids (default: every row of the study)")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--train-seeds", default=None,
                   help="comma-separated seeds to train in this process (default: all of range(--seeds)); "
                        "lets several processes share one study, each training other seeds")
    p.add_argument("--train", action="append", default=[], metavar="KEY=VALUE", help="TrainConfig override")
    p.add_argument("--report-only", action="store_true",
                   help="train nothing: write the tables from the cached runs (e.g. while other processes train)")
    p.add_argument("--out", default=str(REPO / "results"))
    p.add_argument("--list", action="store_true")
    args = p.parse_args(argv)
    if args.list:
        for name, rows in STUDIES.items():
            print(f"{name} (reference {REFERENCE[name]}):")
            for row in rows:
                print(f"  {row.id:32s} {row.label}  [{row.model}] {row.config}")
        return None

    import keras

    import datasets
    from model import training
    from model.train import parse_overrides

    train_cfg = training.TrainConfig(verbose=1, **parse_overrides(args.train, training.TrainConfig))
    train_key = protocol_key(train_cfg)
    dataset, data_kwargs = dataset_from_args(args)
    encoded = datasets.encode(dataset, train_windows=train_cfg.train_windows)
    rows = STUDIES[args.study]
    if args.rows:
        wanted = args.rows.split(",")
        unknown = set(wanted) - {r.id for r in rows}
        if unknown:
            raise SystemExit(f"unknown rows {sorted(unknown)} in study {args.study!r}")
        rows = [r for r in rows if r.id in wanted]
    out = pathlib.Path(args.out) / args.dataset
    out.mkdir(parents=True, exist_ok=True)
    cache_path = out / "ablation_runs.jsonl"
    cache = load_runs(cache_path)
    backend = keras.config.backend()
    results = {}
    train_seeds = [int(v) for v in args.train_seeds.split(",")] if args.train_seeds else range(args.seeds)
    if args.report_only:
        train_seeds = []
    # A cached run that today's stopping rules would not have ended where it ended is stale.
    first_stop = training.first_stop_epoch(encoded.train, train_cfg)
    for seed in train_seeds:
        for row in rows:
            key = run_key(args.dataset + json.dumps(data_kwargs, sort_keys=True), row, seed, train_key, backend)
            if key not in cache or training.stale_stop(cache[key], train_cfg, first_stop):
                print(f"[ablation] {args.study}/{row.id} seed {seed}", flush=True)
                record = train_one(row, seed, encoded, train_cfg)
                record.update(key=key, overrides=dict(row.overrides), model=row.model,
                              finished=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"))
                cache[key] = record
                with open(cache_path, "a") as f:
                    f.write(json.dumps(record, default=float) + "\n")
                print(f"    test ndcg@10 {record['test']['ndcg@10']:.4f} (best epoch {record['best_epoch']}/"
                      f"{record['epochs_run']}, {record['wall_seconds']:.0f} s)", flush=True)
    for row in STUDIES[args.study]:
        runs = [cache[k] for k in (run_key(args.dataset + json.dumps(data_kwargs, sort_keys=True), row, s,
                                           train_key, backend) for s in range(args.seeds))
                if k in cache and not training.stale_stop(cache[k], train_cfg, first_stop)]
        if runs:
            results[row.id] = runs
    text = table(args.study, [r for r in STUDIES[args.study] if r.id in results], results, REFERENCE[args.study])
    exclude_seen = training.resolve_exclude_seen(train_cfg.exclude_seen, encoded.train)
    reference = training.reference_baselines(encoded, train_cfg, exclude_seen)
    text += ("\n\nNon-neural references on the same split: " + ", ".join(
        f"{name} NDCG@10 {reference[name]['ndcg@10']:.4f}" for name in ("popularity", "cooccurrence"))
        + "".join(f"; {label} intent accuracy " + ", ".join(
            f"{k.split('/', 1)[1]} {v:.4f}" for k, v in reference[name].items())
            for name, label in (("majority", "majority-class"), ("markov", "Markov (next after the current)")))
        + ".")
    seen = {"history": "seen items excluded from the ranking: the user's whole known history",
            "window": "seen items excluded from the ranking: the input window only"}[train_cfg.seen_filter] \
        if exclude_seen else "seen items kept in the ranking (re-consumption is common in this log)"
    header = (f"# Ablation `{args.study}` on `{args.dataset}`\n\nCommand: `python -m bench.ablation --dataset "
              f"{args.dataset} --study {args.study} --seeds {args.seeds}` (rows trained by any command of the study "
              f"are listed); backend {backend}; training protocol: `TrainConfig` defaults"
              f"{' + ' + ', '.join(args.train) if args.train else ''}; {seen}; test metrics, mean ± std over seeds; "
              f"p: Welch's t-test.\n\n")
    # A TrainConfig override is another protocol: its table goes beside the default one.
    name = f"ablation_{args.study}" + "".join(f"__{t}" for t in args.train)
    (out / f"{name}.md").write_text(header + text + "\n")
    (out / f"{name}.json").write_text(json.dumps(results, indent=1, default=float))
    print(header + text)
    return results


if __name__ == "__main__":
    main()
