"""The figures are produced, have the expected size and are not blank."""

from __future__ import annotations

import os

import matplotlib.image as mpimg
import numpy as np

from analysis import clusters as C
from analysis import plots


def _check_png(path, min_w=400, min_h=200):
    assert os.path.getsize(path) > 5000
    img = mpimg.imread(path)
    h, w = img.shape[:2]
    assert w >= min_w and h >= min_h
    assert img[..., :3].std() > 0.05  # not a blank canvas
    return img


def test_tsne_scatter(tmp_path, planted_data):
    table, _, g = planted_data
    a, centres, _ = C.kmeans(table.z, 4)
    path = str(tmp_path / "tsne.png")
    res = plots.tsne_scatter(table.z, a, [f"cluster {i}" for i in range(4)], path, sample=120, seed=0,
                             highlight=np.array([0, 70, 130]), truth=g.astype(str), truth_title="planted")
    assert len(res["indices"]) >= 120 and res["coords"].shape == (len(res["indices"]), 2)
    assert {0, 70, 130} <= set(res["indices"].tolist())
    img = _check_png(str(path), 900, 400)
    assert img.shape[1] > img.shape[0]  # two panels side by side
    # t-SNE keeps the planted groups apart: nearest neighbours share the group
    xy, grp = res["coords"], g[res["indices"]]
    d = np.linalg.norm(xy[:, None] - xy[None], axis=-1)
    np.fill_diagonal(d, np.inf)
    assert (grp[d.argmin(1)] == grp).mean() > 0.95


def test_attention_bars_and_heatmap(tmp_path, planted_data):
    table, _, _ = planted_data
    p1 = str(tmp_path / "att.png")
    plots.attention_bars(p1, "u0001", table.heads, table.alpha[1], recent=["A (drama)", "B (horror)"],
                         predicted={"genre": "horror (0.80)"}, recommendations=["C", "D"], cluster_name="1: x")
    _check_png(p1)
    p2 = str(tmp_path / "heat.png")
    plots.alpha_heatmap(p2, [f"c{i}" for i in range(4)], table.heads, table.alpha[:4], sizes=[1, 2, 3, 4])
    _check_png(p2, 300, 150)
