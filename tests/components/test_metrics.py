"""IntentRec TFMA metrics: the combiner on hand-made extracts (same definitions as model.evaluation)."""

import math

import numpy as np

from components import metrics


def extract(target, top, label_id=5, weight=1.0, probs=None, intent_label=None, model=None):
    preds = {"top_k_ids": np.array([t.encode() for t in top], dtype=object)}
    tfeat = {"label_item": np.array([0, 0, label_id]), "sample_weight": np.array([0.0, 0.0, weight])}
    if probs is not None:
        preds["intent_action"] = np.array(probs)
        tfeat["label_action"] = np.array([0, 0, intent_label])
    if model:
        preds, tfeat = {model: preds}, {model: tfeat}
    return {"predictions": preds, "transformed_features": tfeat,
            "features": {"item_id": np.array([b"x", target.encode()], dtype=object)}}


def run(elements, model_name="", ks=(1, 3), heads=None):
    comp = metrics._computations(ks=ks, heads=heads or {}, model_names=[model_name])[0]
    c = comp.combiner
    acc = c.create_accumulator()
    for e in elements:
        acc = c.add_input(acc, e)
    acc = c.merge_accumulators([acc, c.create_accumulator()])
    return {k.name: v for k, v in c.extract_output(acc).items()}


def test_recall_and_ndcg():
    out = run([extract("b", ["a", "b", "c"]), extract("z", ["a", "b", "c"]), extract("a", ["a", "b", "c"])])
    assert out["num_examples"] == 3
    assert math.isclose(out["recall@1"], 1 / 3)
    assert math.isclose(out["recall@3"], 2 / 3)
    assert math.isclose(out["ndcg@3"], (1 / math.log2(3) + 1.0) / 3)


def test_oov_target_and_unlabelled_rows():
    # An OOV target (id 1) is a miss even if its string shows up; weight 0 rows are skipped.
    out = run([extract("a", ["a"], label_id=1), extract("a", ["a"], weight=0.0)])
    assert out["num_examples"] == 1
    assert out["recall@1"] == 0.0


def test_intent_accuracy_skips_reserved_slots():
    e1 = extract("a", ["a"], probs=[0.9, 0.05, 0.03, 0.02], intent_label=2)  # argmax over 2.. -> 2
    e2 = extract("a", ["a"], probs=[0.0, 0.0, 0.1, 0.9], intent_label=2)
    out = run([e1, e2], heads={"action": "single"})
    assert out["intent_accuracy/action"] == 0.5


def test_multi_model_extracts():
    out = run([extract("b", ["b"], model="candidate")], model_name="candidate")
    assert out["recall@1"] == 1.0
