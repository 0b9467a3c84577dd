"""Cluster statistics, naming and quality measures on planted groups (no model)."""

from __future__ import annotations

import numpy as np
import pytest

from analysis import clusters as C
from analysis import quality
from tests.analysis.conftest import GROUPS, PER_GROUP, RECENT


def _clustered(table, k=4, seed=0):
    a, centres, _ = C.kmeans(table.z, k, seed=seed)
    return C.relabel_by_size(a, centres)


def _group_of_cluster(assignment, g, c):
    vals, counts = np.unique(g[assignment == c], return_counts=True)
    return int(vals[np.argmax(counts)])


def test_kmeans_recovers_planted_groups(planted_data):
    table, _, g = planted_data
    a, centres = _clustered(table)
    assert centres.shape == (4, table.z.shape[1])
    assert quality.agreement(a, g.astype(str))["ari"] > 0.98
    assert sorted(np.bincount(a)) == [PER_GROUP] * 4


def test_profiles_recover_planted_statistics(planted_data):
    table, ds, g = planted_data
    a, centres = _clustered(table)
    profiles = C.cluster_profiles(table, a, table.z, centres, dataset=ds, recent_window=RECENT, examples=3,
                                  titles=dict(zip(ds.items.item_id, ds.items.title)))
    assert [p.size for p in profiles] == [PER_GROUP] * 4
    assert abs(sum(p.share for p in profiles) - 1.0) < 1e-9
    names = [p.name for p in profiles]
    assert len(set(names)) == 4, names
    for p in profiles:
        head, act, gen, typ = GROUPS[_group_of_cluster(a, g, p.cluster)]
        # mean α: the planted head dominates; primary intent share is (almost) 1 for it
        assert max(p.mean_alpha, key=p.mean_alpha.get) == head
        assert p.primary_share[head] > 0.95
        assert abs(sum(p.mean_alpha.values()) - 1.0) < 1e-5
        # predicted intents: dominant labels; reserved <pad>/<oov> slots are not labels
        assert p.dominant("action_type") == (act, pytest.approx(0.9, abs=1e-4))
        assert p.dominant("item_type")[0] == typ
        assert p.dominant("genre")[0] == gen
        assert "<pad>" not in p.predicted["action_type"]
        # observed recent labels (the last RECENT interactions all follow the group)
        assert p.recent["action_type"][act] == pytest.approx(1.0)
        assert p.recent["genre"][gen] == pytest.approx(1.0)
        assert p.recent["item_type"][typ] == pytest.approx(1.0)
        # examples: members of the cluster, ordered by distance to the centre, with titles
        assert len(p.examples) == 3
        dists = [e["distance"] for e in p.examples]
        assert dists == sorted(dists)
        members = set(table.user_ids[a == p.cluster])
        assert all(e["user_id"] in members for e in p.examples)
        assert len(p.examples[0]["recent_titles"]) == 5 and p.examples[0]["recent_titles"][-1].startswith("Title ")
        # the name is built from the evidence, which meets the rule's thresholds
        assert p.name_evidence and len({e["head"] for e in p.name_evidence[:2]}) == len(p.name_evidence[:2])
        for e in p.name_evidence:
            assert e["lift"] >= C.MIN_LIFT and e["share"] >= C.MIN_SHARE[table.kinds[e["head"]]]
            assert C.phrase(e["head"], e["label"]) in p.name
    by_group = {_group_of_cluster(a, g, p.cluster): p.name for p in profiles}
    assert "rewatchers" in by_group[2] or "family fans" in by_group[2]
    assert "horror fans" in by_group[1]
    assert "comedy fans" in by_group[3]


def test_recent_window_stays_within_the_user(planted_data):
    table, ds, g = planted_data
    a, centres = _clustered(table)
    profiles = C.cluster_profiles(table, a, table.z, centres, dataset=ds, recent_window=10, examples=0)
    for p in profiles:
        head, act, gen, typ = GROUPS[_group_of_cluster(a, g, p.cluster)]
        # 5 interactions per user, the first of them "discover/show/drama|comedy": never the previous user's
        expected = 1.0 if act == "discover" else RECENT / (RECENT + 1)
        assert p.recent["action_type"][act] == pytest.approx(expected)


def test_naming_rule_is_deterministic_and_disambiguates(planted_data):
    table, ds, _ = planted_data
    a, centres = _clustered(table)
    p1 = C.cluster_profiles(table, a, table.z, centres, dataset=ds, examples=0)
    p2 = C.cluster_profiles(table, a, table.z, centres, dataset=ds, examples=0)
    assert [p.name for p in p1] == [p.name for p in p2]
    # Two identical clusters: same evidence → disambiguated names.
    twin = [p1[0], C.ClusterProfile(**{**p1[0].to_dict(), "cluster": 4})]
    names = C.name_clusters(twin, table)
    assert names[0] != names[1]
    assert names[0].endswith(" #1") and names[1].endswith(" #2")
    assert names[0][:-3] == names[1][:-3] and names[0].startswith(p1[0].name)
    # A cluster that looks like everyone has no candidate.
    overall = C.overall_predicted(table)
    avg = C.ClusterProfile(cluster=0, size=1, share=1.0, mean_alpha={}, primary_share={}, predicted=overall,
                           recent={}, next_observed={}, examples=[])
    C.name_clusters([avg], table)
    assert avg.name == "mixed intents"


def test_quality_measures(planted_data):
    table, _, g = planted_data
    a, _ = _clustered(table)
    perfect = quality.agreement(a, g)
    assert perfect["ari"] > 0.98 and perfect["nmi"] > 0.98 and perfect["classes"] == 4
    rng = np.random.default_rng(0)
    noise = quality.agreement(rng.integers(0, 4, len(g)), g)
    assert abs(noise["ari"]) < 0.05
    # missing truth values are ignored
    t = g.astype(object)
    t[:10] = None
    assert quality.agreement(a, t)["n"] == len(g) - 10
    assert quality.silhouette(table.z, a) > 0.6
    assert quality.silhouette(rng.normal(size=table.z.shape), rng.integers(0, 4, len(g))) < 0.1
    stab = quality.seed_stability(table.z, 4, seeds=(0, 1, 2))
    assert stab["pairs"] == 3 and stab["mean_ari"] > 0.9
    cross = quality.cross_model_stability({"a": a, "b": a.copy(), "c": (a + 1) % 4})
    assert cross["mean_ari"] == pytest.approx(1.0)
    res = quality.evaluate_representation(table.z, 4, {"group": g}, stability_seeds=(0, 1), probe_truths=["group"])
    assert res["agreement"]["group"]["ari"] > 0.98 and res["dim"] == 8
    assert res["probe"]["group"]["accuracy"] > 0.95 and res["probe"]["group"]["majority"] == pytest.approx(0.25)
    assert quality.probe(rng.normal(size=table.z.shape), g)["accuracy"] < 0.4  # no information, ~chance


def test_synthetic_truth_aligns_with_users():
    import datasets

    from analysis.inference import IntentTable

    ds = datasets.load("synthetic", num_users=25, seed=3)
    df = ds.interactions
    starts = np.flatnonzero(np.r_[True, df.user_id.to_numpy()[1:] != df.user_id.to_numpy()[:-1]])
    ends = np.r_[starts[1:], len(df)]
    users = df.user_id.to_numpy()[starts]
    table = IntentTable(user_ids=users.astype(object), timestamps=np.zeros(len(users), np.int64),
                        last_rows=ends - 2, next_rows=ends - 1, z=None, alpha=None, probs={}, hidden=None,
                        heads=[], kinds={}, labels={}, history="test")
    truth = quality.synthetic_truth(ds, table)
    assert list(truth["next:action"]) == list(ds.latent.intent_action.to_numpy()[ends - 1])
    assert list(truth["current:genre"]) == list(ds.latent.intent_genre.to_numpy()[ends - 2])
    mix = ds.users.set_index("user_id").loc[users, ["p_discover", "p_continue", "p_rewatch"]].to_numpy()
    assert list(truth["persona:action"]) == list(np.array(["discover", "continue", "rewatch"])[mix.argmax(1)])
    assert {"next:joint", "persona:genre", "persona:item_type", "persona:release"} <= set(truth)
    assert all(len(v) == len(users) for v in truth.values())


def test_namesakes_are_told_apart_by_their_contrast(planted_data):
    table, _, _ = planted_data

    def profile(cid, drama, comedy):
        predicted = {"action_type": {"discover": 0.05, "continue": 0.9, "rewatch": 0.05},
                     "item_type": {"show": 0.9, "movie": 0.1},
                     "genre": {"drama": drama, "comedy": comedy, "horror": 0.1, "family": 0.1}}
        return C.ClusterProfile(cluster=cid, size=10, share=0.5, mean_alpha={}, primary_share={},
                                predicted=predicted, recent={}, next_observed={}, examples=[])

    a, b = profile(0, 0.3, 0.2), profile(1, 0.2, 0.3)
    names = C.name_clusters([a, b], table)
    assert names == ["continue-watchers · shows · more drama fans", "continue-watchers · shows · more comedy fans"]
    assert a.name_evidence[-1]["versus"] == "namesakes" and a.name_evidence[-1]["lift"] == pytest.approx(1.2)
