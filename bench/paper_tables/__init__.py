"""Reproduce the paper's Tables 1–3 (IntentRec, §4) on any dataset.

    python -m bench.paper_tables --dataset synthetic --seeds 5
    python -m bench.paper_tables --dataset ml-100k --seeds 3 --grid small
    python -m bench.paper_tables --dataset synthetic-tiny --quick        # CI smoke run (~minutes)

Writes `results/<dataset>/paper_tables.{md,json,png}` (`--out` changes `results/`) and
appends every finished training run to `results/<dataset>/runs.jsonl`, so an
interrupted run resumes where it stopped (`--fresh` ignores earlier runs).

Protocol (docs/experiments.md):

1. Encode the data once (leave-one-out; `--train-windows sliding` by default, so
   every training target of every user is used).
2. Tuning: every tuned row gets the same grid (`--grid`: learning rate × dropout),
   trained with seed 0 (`--select-seeds K`: seeds 0..K-1); the config with the best
   (mean) *validation* NDCG@10 is chosen.
   The single-head V3 rows of Table 3 reuse V3's chosen config.
3. Every row is trained with seeds 0..S-1 with its chosen config (the tuning runs
   of the chosen config are among them). Each run: early stopping on validation NDCG@10,
   test metrics of the best epoch (full-catalogue ranking; `model.evaluation`).
4. Tables: mean ± std over seeds, relative % to the reference row (Table 1:
   TransAct, Table 2: V1, Table 3: V0 for items and the single-head variant for
   each intent), and two-sided Student's t-test p-values (scipy
   `ttest_ind(equal_var=True)`: independent runs, seeds are not paired).
"""

from bench.paper_tables.cli import build_parser, main, tune
from bench.paper_tables.report import (
                                       assemble_report,
                                       build_tables,
                                       compare,
                                       markdown,
                                       metric_values,
                                       plot,
                                       summarize,
                                       t_test,
)
from bench.paper_tables.rows import (
                                       GRIDS,
                                       Row,
                                       build_model,
                                       build_rows,
                                       grid_configs,
                                       parse_grid,
                                       training_order,
)
from bench.paper_tables.runner import (
                                       Runner,
                                       git_state,
                                       invalid_reason,
                                       load_cache,
                                       run_key,
                                       train_one,
)

__all__ = ["GRIDS", "Row", "Runner", "assemble_report", "build_model", "build_parser", "build_rows", "build_tables",
           "compare", "git_state", "grid_configs", "invalid_reason", "load_cache", "main", "markdown",
           "metric_values", "parse_grid", "plot", "run_key", "summarize", "t_test", "train_one", "training_order",
           "tune"]
