"""How good are the intent clusters? Agreement with known truth, separation, stability.

- `agreement`: adjusted Rand index (ARI) and normalised mutual information (NMI) between
  the cluster assignment and a reference labelling. ARI is 0 for a random assignment and
  1 for identical partitions; it penalises K ≠ number of classes. NMI (arithmetic mean
  normalisation) is 0 for independent and 1 for identical partitions, and is less
  sensitive to K ≠ number of classes but grows by chance with the number of classes (AMI,
  also recorded, corrects that). Use them to *compare embeddings under the same
  clustering* (V3's Z vs V0's hidden state), not as absolute grades.
- `silhouette`: mean (b − a) / max(a, b) over users (a: mean distance to the own cluster,
  b: to the nearest other cluster); 1 = tight, well separated, 0 = overlapping. It is
  computed in each embedding's own space, so it compares poorly across embeddings of
  different dimension/scale.
- `seed_stability`: mean pairwise ARI between K-means runs with different seeds on the
  same embedding (1 = the partition does not depend on the seed).
- `cross_model_stability`: mean pairwise ARI between the partitions of the same users
  obtained from models trained with different seeds.
- `probe`: accuracy of a linear classifier (logistic regression, 5-fold cross-validation)
  predicting a reference labelling from the embedding. Unlike ARI/NMI it does not depend on
  K-means: it tells whether the information is *in* the embedding at all, so a low ARI with a
  high probe accuracy means K-means splits along other directions (e.g. item type).
- `synthetic_truth`: reference labellings from the synthetic generator: the true latent
  session intent (action, mood genre, movie/show, new/catalogue) of the held-out next
  interaction and of the latest input interaction, and the user personas.
"""

from __future__ import annotations

import itertools
from typing import Optional, Sequence

import numpy as np
import pandas as pd

from analysis.clusters import kmeans

LATENT_FACTORS = ("intent_action", "intent_genre", "intent_item_type", "intent_release")


def agreement(assignment: np.ndarray, truth: np.ndarray) -> dict:
    from sklearn.metrics import adjusted_mutual_info_score, adjusted_rand_score, normalized_mutual_info_score

    truth = np.asarray(truth)
    ok = pd.notna(truth) & (truth.astype(str) != "")
    a, t = np.asarray(assignment)[ok], truth[ok].astype(str)
    if len(a) < 2:
        return {"ari": float("nan"), "nmi": float("nan"), "ami": float("nan"), "classes": 0, "n": int(len(a))}
    return {"ari": float(adjusted_rand_score(t, a)), "nmi": float(normalized_mutual_info_score(t, a)),
            "ami": float(adjusted_mutual_info_score(t, a)), "classes": int(len(np.unique(t))), "n": int(len(a))}


def silhouette(x: np.ndarray, assignment: np.ndarray, sample_size: int = 5000, seed: int = 0) -> float:
    from sklearn.metrics import silhouette_score

    if len(np.unique(assignment)) < 2 or len(x) < 3:
        return float("nan")
    size = min(sample_size, len(x)) if sample_size else None
    return float(silhouette_score(x, assignment, sample_size=size, random_state=seed))


def pairwise_ari(partitions: Sequence[np.ndarray]) -> dict:
    from sklearn.metrics import adjusted_rand_score

    scores = [adjusted_rand_score(a, b) for a, b in itertools.combinations(partitions, 2)]
    if not scores:
        return {"mean_ari": float("nan"), "min_ari": float("nan"), "pairs": 0}
    return {"mean_ari": float(np.mean(scores)), "min_ari": float(np.min(scores)), "pairs": len(scores)}


def seed_stability(x: np.ndarray, k: int, seeds: Sequence[int] = (0, 1, 2, 3, 4), n_init: int = 1) -> dict:
    """K-means run once per seed (n_init=1: each seed is one k-means++ initialisation,
    the honest measure of how much the partition depends on it)."""
    parts = [kmeans(x, k, seed=s, n_init=n_init)[0] for s in seeds]
    return {**pairwise_ari(parts), "seeds": list(seeds), "n_init": n_init}


def cross_model_stability(partitions: dict) -> dict:
    """{model name: assignment over the same users (same order)} → pairwise ARI."""
    names = list(partitions)
    out = pairwise_ari([partitions[n] for n in names])
    out["models"] = names
    return out


def synthetic_truth(dataset, table) -> dict:
    """Reference labellings for the users of `table` (synthetic data only, else {}).

    Keys: "next:<factor>" (held-out next interaction, "test" mode), "next:joint",
    "current:<factor>" (latest input interaction), "persona:<attribute>".
    """
    latent = getattr(dataset, "latent", None)
    users = getattr(dataset, "users", None)
    out = {}
    if latent is not None and len(latent) == len(dataset.interactions):
        for where, rows in (("next", table.next_rows), ("current", table.last_rows)):
            if not (rows >= 0).any():
                continue
            ok = rows >= 0
            safe = np.where(ok, rows, 0)
            parts = []
            for f in LATENT_FACTORS:
                if f not in latent.columns:
                    continue
                vals = latent[f].to_numpy()[safe].astype(object)
                vals[~ok] = None
                out[f"{where}:{f.replace('intent_', '')}"] = vals
                parts.append(vals.astype(str))
            if parts:
                joint = np.array(["/".join(p) for p in zip(*parts)], dtype=object)
                joint[~ok] = None
                out[f"{where}:joint"] = joint
    if users is not None and "user_id" in users.columns:
        u = users.set_index("user_id").reindex(pd.Index(table.user_ids.astype(str)))
        if {"p_discover", "p_continue", "p_rewatch"} <= set(u.columns):
            mix = u[["p_discover", "p_continue", "p_rewatch"]].to_numpy()
            out["persona:action"] = np.array(["discover", "continue", "rewatch"], dtype=object)[mix.argmax(1)]
        if "favourite_genres" in u.columns:
            out["persona:genre"] = u["favourite_genres"].astype(str).str.split("|").str[0].to_numpy(dtype=object)
        if "p_show" in u.columns:
            out["persona:item_type"] = np.where(u["p_show"].to_numpy() >= 0.5, "show", "movie").astype(object)
        if "p_new_release" in u.columns:
            p = u["p_new_release"].to_numpy()
            out["persona:release"] = np.where(p >= np.nanmedian(p), "new-lover", "catalogue").astype(object)
        if "chronotype" in u.columns:
            out["persona:chronotype"] = u["chronotype"].astype(str).to_numpy(dtype=object)
    return out


def probe(x: np.ndarray, truth: np.ndarray, folds: int = 5, seed: int = 0) -> dict:
    """Cross-validated accuracy of a linear probe x → truth, with the majority-class rate."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    truth = np.asarray(truth)
    ok = pd.notna(truth) & (truth.astype(str) != "")
    xs, t = np.asarray(x, dtype=np.float64)[ok], truth[ok].astype(str)
    values, counts = np.unique(t, return_counts=True)
    keep = np.isin(t, values[counts >= folds])  # classes too rare to appear in every fold are dropped
    xs, t = xs[keep], t[keep]
    if len(np.unique(t)) < 2:
        return {"accuracy": float("nan"), "majority": float("nan"), "n": int(len(t))}
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    acc = cross_val_score(clf, xs, t, cv=cv, scoring="accuracy")
    return {"accuracy": float(acc.mean()), "majority": float(np.unique(t, return_counts=True)[1].max() / len(t)),
            "n": int(len(t))}


def evaluate_representation(x: np.ndarray, k: int, truth: dict, seed: int = 0, n_init: int = 10,
                            stability_seeds: Sequence[int] = (0, 1, 2, 3, 4),
                            silhouette_sample: int = 5000, assignment: Optional[np.ndarray] = None,
                            probe_truths: Sequence[str] = ()) -> dict:
    """K-means on `x` + agreement with each truth + silhouette + seed stability
    (+ linear probes for the truths named in `probe_truths`)."""
    if assignment is None:
        assignment = kmeans(x, k, seed=seed, n_init=n_init)[0]
    return {
        "probe": {t: probe(x, truth[t], seed=seed) for t in probe_truths if t in truth},
        "dim": int(x.shape[1]),
        "agreement": {name: agreement(assignment, t) for name, t in truth.items()},
        "silhouette": silhouette(x, assignment, silhouette_sample, seed),
        "seed_stability": seed_stability(x, k, stability_seeds) if stability_seeds else None,
        "assignment": assignment,
    }
