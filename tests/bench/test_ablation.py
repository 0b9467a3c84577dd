"""bench.ablation: rows keep their meaning when the model defaults change; the tables."""

import json
import pathlib
import tempfile
from unittest import mock

from bench import ablation
from tests.test_case import FEATURE_SPEC, TestCase


def _run(ndcg, seed):
    return {"seed": seed, "test": {"ndcg@10": ndcg, "recall@10": ndcg, "mrr": ndcg}, "best_epoch": 3,
            "epochs_run": 13, "wall_seconds": 60.0}


class AblationTest(TestCase):
    def test_rows_start_from_the_ablation_base_not_todays_defaults(self):
        rows = {r.id: r for r in ablation.STUDIES["repeat"]}
        plain = ablation.build_model(rows["v3"], FEATURE_SPEC)
        self.assertFalse(plain.config.repeat_score)
        self.assertFalse(plain.config.intent_item_score)
        scored = ablation.build_model(rows["v3_repeat_intent_score"], FEATURE_SPEC)
        self.assertTrue(scored.config.repeat_score and scored.config.intent_item_score)
        self.assertFalse(scored.config.intent_history_prior)  # today's default is on: the row keeps its meaning
        # The default IntentRec before the prior is one of the rows, spelled out; today's is
        # the intent_prior study's.
        self.assertEqual(dict(rows["v3_repeat_intent_score"].overrides),
                         {**ablation.DEFAULT_INTENTREC, "variant": "v3"})
        prior = {r.id: r for r in ablation.STUDIES["intent_prior"]}["default_intent_prior"]
        prior_config = ablation.build_model(prior, FEATURE_SPEC).config
        self.assertTrue(prior_config.intent_history_prior)
        self.assertTrue(prior_config.intent_score_reads_prior)  # the default then; False today

    def test_table_compares_with_the_reference_and_with_sasrec(self):
        rows = [r for r in ablation.STUDIES["repeat"] if r.id in ("sasrec", "v3", "v3_repeat")]
        results = {"sasrec": [_run(0.40, 0), _run(0.42, 1)], "v3": [_run(0.44, 0), _run(0.46, 1)],
                   "v3_repeat": [_run(0.50, 0), _run(0.52, 1)]}
        lines = ablation.table("repeat", rows, results, "v3").splitlines()
        self.assertIn("NDCG@10 vs v3 | NDCG@10 vs SASRec", lines[0])
        by_row = {line.split(" | ")[0].lstrip("| "): line.split(" | ") for line in lines[2:]}
        self.assertTrue(by_row["SASRec"][5].startswith("-8.9% (p="))  # 0.41 vs 0.45
        self.assertEqual(by_row["SASRec"][6], "ref")
        self.assertEqual(by_row["V3 (reference)"][5], "ref")
        self.assertTrue(by_row["V3 + copy score"][6].startswith("+24.4% (p="))

    def test_every_study_has_its_reference_and_unique_rows(self):
        for study, rows in ablation.STUDIES.items():
            ids = [r.id for r in rows]
            self.assertEqual(len(ids), len(set(ids)), study)
            self.assertIn(ablation.REFERENCE[study], ids, study)
        # A row id shared by two studies is the same model (labels may differ by study).
        by_id = {}
        for rows in ablation.STUDIES.values():
            for r in rows:
                self.assertEqual(by_id.setdefault(r.id, (r.model, r.overrides)), (r.model, r.overrides), r.id)

    def test_runs_cached_before_a_new_train_field_keep_their_key(self):
        from model.training import TrainConfig

        key = ablation.protocol_key(TrainConfig(seed=3, verbose=1))
        self.assertNotIn("seed", key)
        self.assertNotIn("selection_tolerance", key)  # at its default: keyed as before it existed
        self.assertEqual(ablation.protocol_key(TrainConfig(selection_tolerance=0.01))["selection_tolerance"], 0.01)
        self.assertNotIn("ema_momentum", key)
        self.assertEqual(ablation.protocol_key(TrainConfig(ema_momentum=0.99))["ema_momentum"], 0.99)

    def test_the_restored_epoch_is_shown_when_it_is_not_the_best(self):
        rows = [r for r in ablation.STUDIES["repeat"] if r.id == "v3"]
        runs = [_run(0.44, 0), {**_run(0.46, 1), "selected_epoch": 7}]
        line = ablation.table("repeat", rows, {"v3": runs}, "v3").splitlines()[2]
        self.assertIn("3/13, 3→7/13", line)

    def test_report_only_trains_nothing_and_writes_the_tables_from_the_cache(self):
        with tempfile.TemporaryDirectory() as tmp:
            argv = ["--dataset", "synthetic", "--data-arg", "num_users=60", "--study", "repeat", "--rows", "v3",
                    "--seeds", "2", "--out", tmp]
            key = {}
            real_key = ablation.run_key

            def remember(dataset, row, seed, train, backend):
                key[row.id, seed] = real_key(dataset, row, seed, train, backend)
                return key[row.id, seed]

            with mock.patch.object(ablation, "run_key", remember), \
                    mock.patch.object(ablation, "train_one", side_effect=AssertionError("trained")):
                ablation.main(argv + ["--report-only"])  # an empty cache: nothing to train, nothing to report
                cache = pathlib.Path(tmp) / "synthetic" / "ablation_runs.jsonl"
                # At the epoch cap: not stale however few steps an epoch of the tiny data has.
                run = {**_run(0.44, 0), "epochs_run": 400, "key": key["v3", 0], "val": {}, "alpha": {},
                       "overrides": {}, "model": "intentrec"}
                cache.write_text(json.dumps(run) + "\n")
                ablation.main(argv + ["--report-only"])
            table = (pathlib.Path(tmp) / "synthetic" / "ablation_repeat.md").read_text()
            self.assertIn("| V3 (reference) | 1 | 0.4400", table)
