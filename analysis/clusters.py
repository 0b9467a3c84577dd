"""K-means++ clustering of intent embeddings, per-cluster statistics and cluster names
(paper §4.4).

The paper names clusters by hand after reading users near each centre. Here the name
comes from a fixed rule over the cluster's statistics, so that it is reproducible and
auditable (`name_clusters`):

1. For every intent head h and label v, compare the cluster's mean *predicted*
   probability p = P_c(h = v) with the same mean over all users, q.
2. Score each over-represented label (p > q) by its contribution to the KL divergence
   between the cluster's and everyone's predicted intent distribution:
   single-label heads p·log(p/q); multi-label heads (independent labels) the Bernoulli
   KL p·log(p/q) + (1-p)·log((1-p)/(1-q)).
3. A label is a candidate when it is both dominant and distinctive: it is the cluster's
   most likely label of a single-label head (one of the top 3 of a multi-label head),
   p ≥ `min_share` (0.30 single-label, 0.25 multi-label) and lift p/q ≥ `min_lift` (1.2).
4. The name joins the best candidate and the best candidate of a *different* head
   (e.g. "continue-watchers · shows"); no candidate → "mixed intents".
5. Clusters named by the same labels (in any order) each get the label that best sets
   them apart from their namesakes appended as "more <label>" (relative, not dominant): steps 2–3 with q = the namesakes'
   size-weighted mean, among the cluster's top 2 labels of a single-label head not yet in
   the name / top 3 of a multi-label head, p ≥ 0.15, lift ≥ 1.1. Names still equal get a
   numeral (#1, #2).

The winning labels, their shares and lifts are kept in `ClusterProfile.name_evidence`
and printed with the report, so every name can be checked against the numbers.
"""

from __future__ import annotations

import dataclasses
from typing import Optional, Sequence

import numpy as np
import pandas as pd

from analysis.inference import IntentTable
from datasets.schema import ITEM, MULTI_LABEL_SEP, NUM_RESERVED_IDS, USER

DEFAULT_K = 10
MIN_SHARE = {"single": 0.30, "multi": 0.25}
MIN_LIFT = 1.2
TOP_RANK = {"single": 1, "multi": 3}  # a candidate must be among the cluster's top labels of its head

# Readable phrases for well-known heads; anything else reads "<head>: <label>".
_PHRASES = {
    "action_type": {"discover": "discoverers", "continue": "continue-watchers", "rewatch": "rewatchers",
                    "explore": "explorers", "favourite": "comfort viewers", "binge": "bingers",
                    "browse": "browsers", "view": "viewers", "buy": "buyers", "cart": "cart-fillers",
                    "fav": "favouriters"},
    "item_type": {"show": "shows", "movie": "movies"},
    "release_bucket": {"new_week": "brand-new titles (≤ 7 d)", "new_month": "new titles (≤ 30 d)",
                       "recent_year": "this year's titles", "catalog": "catalogue titles"},
    "genre": None,  # "<genre> fans"
    "category": None,
}


def phrase(head: str, label: str) -> str:
    table = _PHRASES.get(head, {})
    if table and label in table:
        return table[label]
    if head in ("genre", "category"):
        return f"{label} fans"
    return f"{head}: {label}"


# --------------------------------------------------------------------------------------
# K-means++
# --------------------------------------------------------------------------------------
def kmeans(x: np.ndarray, k: int = DEFAULT_K, seed: int = 0, n_init: int = 10):
    """K-means with k-means++ seeding (scikit-learn). Returns (labels, centers, inertia)."""
    from sklearn.cluster import KMeans

    k = int(min(k, len(x)))
    km = KMeans(n_clusters=k, init="k-means++", n_init=n_init, random_state=seed)
    labels = km.fit_predict(np.asarray(x, dtype=np.float64))
    return labels.astype(np.int64), km.cluster_centers_, float(km.inertia_)


def relabel_by_size(labels: np.ndarray, centers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cluster ids ordered by size (0 = largest), for stable, readable reports."""
    k = len(centers)
    sizes = np.bincount(labels, minlength=k)
    order = np.argsort(-sizes, kind="stable")
    remap = np.empty(k, np.int64)
    remap[order] = np.arange(k)
    return remap[labels], centers[order]


# --------------------------------------------------------------------------------------
# statistics
# --------------------------------------------------------------------------------------
@dataclasses.dataclass
class ClusterProfile:
    cluster: int
    size: int
    share: float
    mean_alpha: dict  # head -> mean α
    primary_share: dict  # head -> share of users whose largest α is this head
    predicted: dict  # head -> {label: mean predicted probability}
    recent: dict  # head -> {label: share among the users' recent interactions}
    next_observed: dict  # head -> {label: share of held-out next interactions} ("test" mode)
    examples: list  # [{"user_id", "distance", "recent_titles": [...]}]
    name: str = ""
    name_evidence: list = dataclasses.field(default_factory=list)  # [{"head", "label", "share", "lift", "score"}]

    def dominant(self, head: str, source: str = "predicted") -> tuple[str, float]:
        table = getattr(self, source).get(head) or {}
        if not table:
            return "", float("nan")
        label = max(table, key=table.get)
        return label, float(table[label])

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def label_list(labels: Sequence[str]) -> list[str]:
    labels = list(labels)
    return labels[NUM_RESERVED_IDS:] if len(labels) > NUM_RESERVED_IDS else labels


def predicted_distribution(probs: np.ndarray, kind: str) -> np.ndarray:
    """[U, d_h] head output → [U, d_h - 2] over real labels (single: renormalised)."""
    p = np.asarray(probs, dtype=np.float64)
    if p.shape[1] > NUM_RESERVED_IDS:
        p = p[:, NUM_RESERVED_IDS:]
    if kind == "single":
        p = p / np.maximum(p.sum(axis=1, keepdims=True), 1e-12)
    return p


def observed_shares(dataset, rows: np.ndarray, heads: Sequence[str], labels: dict, kinds: dict,
                    window: int = 1, user_col: Optional[np.ndarray] = None) -> dict:
    """Per user, the share of each label among the `window` interactions ending at `rows`
    (restricted to the same user). Returns head -> [U, L_h] (NaN rows where rows < 0)."""
    df = dataset.interactions
    n = len(df)
    rows = np.asarray(rows, np.int64)
    idx = rows[:, None] - np.arange(window)[::-1][None, :]
    users = user_col if user_col is not None else df[USER].to_numpy()
    ok = (idx >= 0) & (rows[:, None] >= 0)
    safe = np.clip(idx, 0, max(n - 1, 0))
    same = users[safe] == users[np.clip(rows, 0, max(n - 1, 0))][:, None]
    ok &= same
    out = {}
    for h in heads:
        if h not in df.columns:
            continue
        names = label_list(labels[h])
        values = df[h].to_numpy()[safe.ravel()].astype(str)  # [U*W]
        onehot = np.zeros((len(values), len(names)), np.float32)
        if kinds.get(h) == "multi":
            pos = {lab: j for j, lab in enumerate(names)}
            for i, v in enumerate(values):
                for lab in v.split(MULTI_LABEL_SEP):
                    j = pos.get(lab)
                    if j is not None:
                        onehot[i, j] = 1.0
        else:
            codes = pd.Categorical(values, categories=names).codes
            valid = codes >= 0
            onehot[np.flatnonzero(valid), codes[valid]] = 1.0
        vals = onehot.reshape(safe.shape + (len(names),)) * ok[..., None]  # [U, W, L]
        count = ok.sum(axis=1)[:, None]
        out[h] = np.where(count > 0, vals.sum(axis=1) / np.maximum(count, 1), np.nan)
    return out


def recent_titles(dataset, row: int, count: int = 5, titles: Optional[dict] = None,
                  heads: Sequence[str] = ()) -> list[str]:
    """The user's `count` latest titles up to `row`, with their intent labels."""
    df = dataset.interactions
    if row < 0:
        return []
    user = df[USER].iat[row]
    lo = max(0, row - count + 1)
    part = df.iloc[lo:row + 1]
    part = part[part[USER] == user]
    out = []
    for _, r in part.iterrows():
        item = str(r[ITEM])
        name = (titles or {}).get(item) or item
        tags = [str(r[h]) for h in heads if h in part.columns and str(r[h])]
        out.append(f"{name} ({', '.join(tags)})" if tags else name)
    return out


def cluster_profiles(table: IntentTable, assignments: np.ndarray, x: np.ndarray, centers: np.ndarray,
                     dataset=None, recent_window: int = 10, examples: int = 5,
                     titles: Optional[dict] = None) -> list[ClusterProfile]:
    """Statistics of each cluster (see ClusterProfile)."""
    k = len(centers)
    heads = table.heads
    pred = {h: predicted_distribution(table.probs[h], table.kinds.get(h, "single"))
            for h in heads if h in table.probs}
    names = {h: label_list(table.labels.get(h, [])) for h in heads}
    primary = table.primary_intent()
    recent = nxt = {}
    if dataset is not None:
        users = dataset.interactions[USER].to_numpy()
        recent = observed_shares(dataset, table.last_rows, heads, table.labels, table.kinds,
                                 window=recent_window, user_col=users)
        if (table.next_rows >= 0).any():
            nxt = observed_shares(dataset, table.next_rows, heads, table.labels, table.kinds,
                                  window=1, user_col=users)
    dist = np.linalg.norm(x[:, None, :] - centers[None, :, :], axis=-1) if len(x) else np.zeros((0, k))
    detail_heads = [h for h in heads if table.kinds.get(h) == "multi"] + \
                   [h for h in heads if table.kinds.get(h) != "multi"]
    profiles = []
    for c in range(k):
        members = np.flatnonzero(assignments == c)
        size = len(members)

        def mean_table(arrs: dict) -> dict:
            out = {}
            for h, arr in arrs.items():
                vals = arr[members]
                vals = vals[~np.isnan(vals).any(axis=1)] if vals.dtype.kind == "f" else vals
                if not len(vals):
                    continue
                m = vals.mean(axis=0)
                out[h] = {lab: float(v) for lab, v in zip(names[h], m)}
            return out

        mean_alpha = ({h: float(table.alpha[members, i].mean()) for i, h in enumerate(heads)}
                      if table.alpha is not None and size else {})
        prim = ({h: float((primary[members] == h).mean()) for h in heads}
                if table.alpha is not None and size else {})
        ex = []
        if size and examples:
            order = members[np.argsort(dist[members, c], kind="stable")[:examples]]
            for u in order:
                ex.append({
                    "user_id": str(table.user_ids[u]),
                    "distance": float(dist[u, c]),
                    "primary_intent": str(primary[u]),
                    "recent_titles": (recent_titles(dataset, int(table.last_rows[u]), 5, titles, detail_heads)
                                      if dataset is not None else []),
                })
        profiles.append(ClusterProfile(
            cluster=c, size=size, share=size / max(len(assignments), 1), mean_alpha=mean_alpha,
            primary_share=prim, predicted=mean_table(pred), recent=mean_table(recent),
            next_observed=mean_table(nxt), examples=ex,
        ))
    name_clusters(profiles, table)
    return profiles


# --------------------------------------------------------------------------------------
# naming
# --------------------------------------------------------------------------------------
def _score(p: float, q: float, kind: str) -> float:
    eps = 1e-9
    p, q = min(max(p, eps), 1 - eps), min(max(q, eps), 1 - eps)
    if kind == "multi":
        return p * np.log(p / q) + (1 - p) * np.log((1 - p) / (1 - q))
    return p * np.log(p / q)


def naming_candidates(profile: ClusterProfile, overall: dict, kinds: dict,
                      min_share: Optional[dict] = None, min_lift: float = MIN_LIFT) -> list[dict]:
    """Over-represented, dominant labels of one cluster, best first (steps 1–3)."""
    min_share = {**MIN_SHARE, **(min_share or {})}
    out = []
    for head, table in profile.predicted.items():
        kind = kinds.get(head, "single")
        top = set(sorted(table, key=lambda v: (-table[v], v))[:TOP_RANK[kind]])
        for label, p in table.items():
            if label not in top:
                continue
            q = overall.get(head, {}).get(label, 0.0)
            if q <= 0 or p <= q:
                continue
            lift = p / q
            if p < min_share[kind] or lift < min_lift:
                continue
            out.append({"head": head, "label": label, "share": p, "overall": q, "lift": lift,
                        "score": float(_score(p, q, kind))})
    return sorted(out, key=lambda c: (-c["score"], c["head"], c["label"]))


def overall_predicted(table: IntentTable) -> dict:
    out = {}
    for h in table.heads:
        if h not in table.probs:
            continue
        p = predicted_distribution(table.probs[h], table.kinds.get(h, "single")).mean(axis=0)
        out[h] = {lab: float(v) for lab, v in zip(label_list(table.labels.get(h, [])), p)}
    return out


CONTRAST_MIN_SHARE = 0.15
CONTRAST_MIN_LIFT = 1.1


def _weighted_profile(profiles: Sequence[ClusterProfile]) -> dict:
    """Size-weighted mean predicted distribution of several clusters."""
    total = sum(p.size for p in profiles) or 1
    out: dict = {}
    for p in profiles:
        for head, table in p.predicted.items():
            h = out.setdefault(head, {})
            for label, v in table.items():
                h[label] = h.get(label, 0.0) + v * p.size / total
    return out


def contrast_candidates(profile: ClusterProfile, reference: dict, kinds: dict,
                        exclude_heads: Sequence[str] = ()) -> list[dict]:
    """Step 5: labels that set a cluster apart from its namesakes (`reference` = their
    size-weighted mean): among the cluster's top 2 (single-label head not yet in the name)
    / top 3 (multi-label) labels of a head, p ≥ 0.15, lift over the namesakes ≥ 1.1,
    scored as in step 2."""
    out = []
    for head, table in profile.predicted.items():
        kind = kinds.get(head, "single")
        if kind == "single" and head in exclude_heads:
            continue  # one label per single-label head: "new" and "catalogue" never together
        top = set(sorted(table, key=lambda v: (-table[v], v))[:TOP_RANK[kind] + (kind == "single")])
        for label in top:
            p, q = table[label], reference.get(head, {}).get(label, 0.0)
            if q <= 0 or p < CONTRAST_MIN_SHARE or p / q < CONTRAST_MIN_LIFT:
                continue
            out.append({"head": head, "label": label, "share": p, "overall": q, "lift": p / q,
                        "score": float(_score(p, q, kind))})
    return sorted(out, key=lambda c: (-c["score"], c["head"], c["label"]))


def name_clusters(profiles: list[ClusterProfile], table: IntentTable,
                  min_share: Optional[dict] = None, min_lift: float = MIN_LIFT) -> list[str]:
    """Sets `name` and `name_evidence` of every profile by the module's rule (steps 4–5)."""
    overall = overall_predicted(table)
    chosen = {}
    cands = {}
    for p in profiles:
        c = naming_candidates(p, overall, table.kinds, min_share, min_lift)
        cands[p.cluster] = c
        picked = []
        for cand in c:
            if all(cand["head"] != x["head"] for x in picked):
                picked.append(cand)
            if len(picked) == 2:
                break
        chosen[p.cluster] = picked
    # Step 5: clusters named by the same labels (in any order) are told apart by the label
    # that best distinguishes each from its namesakes, then by a numeral.
    def key(cid):
        return frozenset((c["head"], c["label"]) for c in chosen[cid])

    groups: dict[frozenset, list[int]] = {}
    for p in profiles:
        groups.setdefault(key(p.cluster), []).append(p.cluster)
    by_id = {p.cluster: p for p in profiles}
    for cids in groups.values():
        if len(cids) < 2 or not chosen[cids[0]]:
            continue
        twins = [by_id[c] for c in cids]
        reference = _weighted_profile(twins)
        for cid in cids:
            used = {(c["head"], c["label"]) for c in chosen[cid]}
            heads_used = [c["head"] for c in chosen[cid]]
            extra = next((c for c in contrast_candidates(by_id[cid], reference, table.kinds, heads_used)
                          if (c["head"], c["label"]) not in used), None)
            if extra is not None:
                chosen[cid] = chosen[cid] + [{**extra, "versus": "namesakes"}]
    names = {cid: " · ".join(("more " if c.get("versus") else "") + phrase(c["head"], c["label"])
                             for c in picked) or "mixed intents"
             for cid, picked in chosen.items()}
    final_groups: dict[frozenset, list[int]] = {}
    for cid in sorted(names):
        final_groups.setdefault(key(cid), []).append(cid)
    for cids in final_groups.values():
        if len(cids) > 1:
            for i, cid in enumerate(cids, 1):
                names[cid] = f"{names[cid]} #{i}"
    for p in profiles:
        p.name = names[p.cluster]
        p.name_evidence = [{k: (round(v, 4) if isinstance(v, float) else v) for k, v in c.items()}
                           for c in chosen[p.cluster]]
    return [p.name for p in profiles]
