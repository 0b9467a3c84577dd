"""Fixtures for the analysis tests: planted intent tables (no model) and a fake model."""

from __future__ import annotations

import types

import numpy as np
import pandas as pd
import pytest

from analysis.inference import IntentTable
from analysis.sources import IntentModel, ModelInfo

HEADS = ["action_type", "genre", "item_type"]
KINDS = {"action_type": "single", "genre": "multi", "item_type": "single"}
LABELS = {
    "action_type": ["<pad>", "<oov>", "discover", "continue", "rewatch"],
    "genre": ["<pad>", "<oov>", "drama", "comedy", "horror", "family"],
    "item_type": ["<pad>", "<oov>", "show", "movie"],
}
# Planted groups: (dominant α head, action, genre, item type) — each differs from the others.
GROUPS = [
    ("action_type", "continue", "drama", "show"),
    ("genre", "discover", "horror", "movie"),
    ("item_type", "rewatch", "family", "movie"),
    ("genre", "discover", "comedy", "show"),
]
PER_GROUP = 60
RECENT = 4


def planted(seed: int = 0):
    """(IntentTable, dataset, true group per user): Z, α and probabilities with 4 planted
    groups, and an interactions table whose recent observed labels follow the groups."""
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(len(GROUPS)), PER_GROUP)
    u = len(g)
    centres = rng.normal(scale=3.0, size=(len(GROUPS), 8))
    z = centres[g] + rng.normal(scale=0.4, size=(u, 8))
    alpha = np.full((u, len(HEADS)), 0.15) + rng.uniform(0, 0.05, size=(u, len(HEADS)))
    probs = {h: np.full((u, len(LABELS[h])), 0.0) for h in HEADS}
    rows = []
    for i in range(u):
        head, act, gen, typ = GROUPS[g[i]]
        alpha[i, HEADS.index(head)] += 0.6
        for h, lab in (("action_type", act), ("item_type", typ)):
            names = LABELS[h][2:]
            p = np.full(len(names), 0.1 / (len(names) - 1))
            p[names.index(lab)] = 0.9
            probs[h][i, 2:] = p
        probs["genre"][i, 2:] = 0.1
        probs["genre"][i, 2 + LABELS["genre"][2:].index(gen)] = 0.8
        for j in range(RECENT + 1):
            rows.append({"user_id": f"u{i:04d}", "item_id": f"t{(i * 7 + j) % 50:03d}", "timestamp": 1000 * j,
                         "action_type": act if j else "discover", "genre": gen if j else "drama|comedy",
                         "item_type": typ if j else "show"})
    alpha /= alpha.sum(axis=1, keepdims=True)
    df = pd.DataFrame(rows)
    lens = np.full(u, RECENT + 1)
    last = np.cumsum(lens) - 1
    table = IntentTable(
        user_ids=np.array([f"u{i:04d}" for i in range(u)], dtype=object), timestamps=np.full(u, 1000 * RECENT),
        last_rows=last.astype(np.int64), next_rows=np.full(u, -1, np.int64), z=z.astype(np.float32),
        alpha=alpha.astype(np.float32), probs={h: p.astype(np.float32) for h, p in probs.items()}, hidden=None,
        heads=list(HEADS), kinds=dict(KINDS), labels={h: list(v) for h, v in LABELS.items()}, history="full")
    items = pd.DataFrame({"item_id": [f"t{i:03d}" for i in range(50)], "title": [f"Title {i}" for i in range(50)]})
    dataset = types.SimpleNamespace(interactions=df, items=items, latent=None, users=None)
    return table, dataset, g


class FakeIntentModel(IntentModel):
    """Deterministic outputs computed from the history (no TensorFlow)."""

    def __init__(self, d_proj: int = 5, max_len: int = 6):
        self.info = ModelInfo(path="fake", kind="fake", variant="v3")
        self.heads, self.kinds = list(HEADS), dict(KINDS)
        self.labels = {h: list(v) for h, v in LABELS.items()}
        self.max_len, self.hierarchical, self._d = max_len, d_proj > 0, d_proj
        self.calls = []

    @property
    def d_proj(self):
        return self._d

    def infer(self, histories):
        self.calls.append(len(histories))
        feats = np.array([[len(h), sum(int(str(x)[1:]) for x in h["item_id"])] for h in histories], np.float32)
        out = {}
        if self._d:
            out["intent_embedding"] = np.stack([feats[:, 1] / (j + 1) for j in range(self._d)], axis=1)
            logits = np.stack([feats[:, 1] % (j + 2) for j in range(len(self.heads))], axis=1)
            e = np.exp(logits - logits.max(axis=1, keepdims=True))
            out["intent_attention"] = (e / e.sum(axis=1, keepdims=True)).astype(np.float32)
        for j, h in enumerate(self.heads):
            d = len(self.labels[h])
            v = (feats[:, 1:2] + np.arange(d)[None, :] * (j + 1)) % 7 + 1
            out[f"intent_{h}"] = (v / v.sum(axis=1, keepdims=True)).astype(np.float32)
        return out

    def recommend(self, histories, k=10):
        out = self.infer(histories)
        out["top_k_ids"] = np.array([[f"t{j:03d}" for j in range(k)]] * len(histories), dtype=object)
        out["top_k_scores"] = np.tile(np.linspace(1, 0, k, dtype=np.float32), (len(histories), 1))
        return out


@pytest.fixture
def planted_data():
    return planted()


@pytest.fixture
def fake_model():
    return FakeIntentModel()
