"""Figures: t-SNE of the intent clusters (paper Fig. 6), per-user attention weights
(Fig. 7) and a cluster × head mean-α heatmap. Matplotlib, Agg backend, PNG files."""

from __future__ import annotations

import textwrap
from typing import Optional, Sequence

import numpy as np

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def _colors(k: int):
    """Distinct colours: tab10, then (k > 10) tab20's dark shades before its light ones."""
    if k <= 10:
        cmap = plt.get_cmap("tab10")
        return [cmap(i) for i in range(k)]
    cmap = plt.get_cmap("tab20")
    order = list(range(0, 20, 2)) + list(range(1, 20, 2))
    return [cmap(order[i % 20]) for i in range(k)]


def _dot(color, edge=None, size=7.0):
    from matplotlib.lines import Line2D

    return Line2D([], [], marker="o", ls="", markersize=size, markerfacecolor=color,
                  markeredgecolor=edge or color, markeredgewidth=1.0 if edge else 0.0)


def tsne_embedding(x: np.ndarray, seed: int = 0, perplexity: float = 30.0) -> np.ndarray:
    from sklearn.manifold import TSNE

    n = len(x)
    perp = float(min(perplexity, max(2.0, (n - 1) / 3.0)))
    return TSNE(n_components=2, perplexity=perp, init="pca", random_state=seed,
                learning_rate="auto").fit_transform(np.asarray(x, dtype=np.float64))


def tsne_scatter(x: np.ndarray, assignment: np.ndarray, names: Sequence[str], path: str, *,
                 sample: int = 2000, seed: int = 0, highlight: Optional[np.ndarray] = None,
                 truth: Optional[np.ndarray] = None, truth_title: str = "", title: str = "",
                 coords: Optional[np.ndarray] = None) -> dict:
    """2-D t-SNE of `x` coloured by cluster; with `truth`, a second panel coloured by it.

    `highlight`: indices of users drawn larger with a black edge (e.g. those nearest each
    centre, as in the paper's Fig. 6). Returns {"indices", "coords"} of the plotted users.
    """
    rng = np.random.default_rng(seed)
    n = len(x)
    idx = np.arange(n) if n <= sample else np.sort(rng.choice(n, sample, replace=False))
    if highlight is not None:
        idx = np.union1d(idx, np.asarray(highlight, np.int64))
    xy = coords if coords is not None else tsne_embedding(x[idx], seed=seed)
    k = len(names)
    colors = _colors(k)
    panels = 2 if truth is not None else 1
    fig, axes = plt.subplots(1, panels, figsize=(8.5 * panels, 8.0), squeeze=False)
    ax = axes[0, 0]
    a = assignment[idx]
    handles, labels = [], []
    for c in range(k):
        m = a == c
        ax.scatter(xy[m, 0], xy[m, 1], s=12, color=colors[c], alpha=0.7, linewidths=0)
        handles.append(_dot(colors[c]))
        labels.append(f"{c}: {names[c]} ({int((assignment == c).sum())})")
    if highlight is not None and len(highlight):
        pos = np.searchsorted(idx, np.asarray(highlight, np.int64))
        ax.scatter(xy[pos, 0], xy[pos, 1], s=42, c=[colors[c] for c in assignment[highlight]],
                   edgecolors="black", linewidths=0.9, zorder=3)
        handles.append(_dot("white", edge="black", size=8.5))
        labels.append("users nearest each centre")
    for c in range(k):  # cluster number at the median of its points
        m = a == c
        if m.any():
            cx, cy = np.median(xy[m], axis=0)
            ax.text(cx, cy, str(c), fontsize=11, fontweight="bold", ha="center", va="center",
                    color="black", bbox=dict(boxstyle="circle,pad=0.15", fc="white", ec=colors[c], alpha=0.6),
                    zorder=4)  # translucent, so the highlighted users beneath stay visible
    ax.set_title(title or f"K-means++ (K={k}) clusters of intent embeddings, t-SNE", fontsize=12)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, -0.02), ncol=2, fontsize=8.5,
              frameon=False)
    if truth is not None:
        ax2 = axes[0, 1]
        t = np.asarray(truth, dtype=object)[idx].astype(str)
        values, counts = np.unique(t, return_counts=True)
        values = values[np.argsort(-counts, kind="stable")]
        tc = _colors(len(values))
        for j, v in enumerate(values):
            m = t == v
            ax2.scatter(xy[m, 0], xy[m, 1], s=12, color=tc[j], alpha=0.75, linewidths=0)
        ax2.set_title(truth_title or "ground truth", fontsize=12)
        ax2.set_xticks([])
        ax2.set_yticks([])
        ax2.legend([_dot(tc[j]) for j in range(len(values))],
                   [f"{v} ({int((t == v).sum())})" for v in values],
                   loc="upper center", bbox_to_anchor=(0.5, -0.02), ncol=4, fontsize=8.5, frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return {"indices": idx, "coords": xy}


def attention_bars(path: str, user_id: str, heads: Sequence[str], alpha: Sequence[float], *,
                   recent: Sequence[str] = (), predicted: Optional[dict] = None,
                   recommendations: Sequence[str] = (), cluster_name: str = "") -> None:
    """One user's attention weights per intent head, next to the user's recent titles,
    predicted intents and recommendations (paper Fig. 7)."""
    alpha = np.asarray(alpha, dtype=float)
    best = int(np.argmax(alpha)) if len(alpha) else -1
    fig, (ax, tx) = plt.subplots(1, 2, figsize=(12.5, 4.6), gridspec_kw={"width_ratios": [1.0, 1.35]})
    ypos = np.arange(len(heads))[::-1]
    colors = ["#d62728" if i == best else "#7f9fbf" for i in range(len(heads))]
    ax.barh(ypos, alpha, color=colors, height=0.6)
    for y, v in zip(ypos, alpha):
        ax.text(v + 0.01, y, f"{v:.2f}", va="center", fontsize=10)
    ax.set_yticks(ypos)
    ax.set_yticklabels(list(heads), fontsize=10)
    ax.set_xlim(0, max(1.0, float(alpha.max()) + 0.12) if len(alpha) else 1.0)
    ax.axvline(1.0 / max(len(heads), 1), color="grey", ls="--", lw=0.8)
    ax.text(1.0 / max(len(heads), 1), ypos[-1] - 0.55 if len(ypos) else 0, " uniform", color="grey",
            fontsize=8, va="top")
    ax.set_xlabel("attention weight α (softmax over heads)")
    primary = heads[best] if best >= 0 else "-"
    ax.set_title(f"user {user_id}: primary intent = {primary}"
                 + (f" (α = {alpha[best]:.2f})" if best >= 0 else ""), fontsize=11)
    tx.axis("off")
    lines = []
    if cluster_name:
        lines += [f"cluster: {cluster_name}", ""]
    if recent:
        lines.append("recent titles (oldest → latest):")
        lines += ["  " + textwrap.shorten(t, 70, placeholder="…") for t in recent]
        lines.append("")
    if predicted:
        lines.append("predicted next intent (top labels per head):")
        for h, text in predicted.items():
            lines.append(f"  {h}: {text}")
        lines.append("")
    if recommendations:
        lines.append("top recommendations:")
        lines += [f"  {i + 1}. " + textwrap.shorten(r, 64, placeholder="…") for i, r in enumerate(recommendations)]
    tx.text(0.0, 1.0, "\n".join(lines), va="top", ha="left", family="monospace", fontsize=8.6,
            transform=tx.transAxes)
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def _shorten_name(name: str, width: int) -> str:
    """Shortens a cluster name but keeps a trailing numeral (#2) visible."""
    if len(name) <= width:
        return name
    base, sep, num = name.rpartition(" #")
    if sep and num.isdigit():
        return textwrap.shorten(base, width - len(num) - 2, placeholder="…") + f" #{num}"
    return textwrap.shorten(name, width, placeholder="…")


def alpha_heatmap(path: str, names: Sequence[str], heads: Sequence[str], mean_alpha: np.ndarray,
                  sizes: Sequence[int] = ()) -> None:
    """Clusters × heads mean α, annotated."""
    mean_alpha = np.asarray(mean_alpha, dtype=float)
    k, m = mean_alpha.shape
    fig, ax = plt.subplots(figsize=(2.0 + 1.5 * m + 4.5, 0.9 + 0.42 * k))
    # Colour spans the observed range (α often varies little), the numbers are absolute.
    lo, hi = float(mean_alpha.min()), float(mean_alpha.max())
    hi = hi if hi > lo else lo + 1e-6
    im = ax.imshow(mean_alpha, cmap="Blues", vmin=lo, vmax=hi, aspect="auto")
    for i in range(k):
        for j in range(m):
            v = mean_alpha[i, j]
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=9,
                    color="white" if (v - lo) / (hi - lo) > 0.6 else "black")
    ax.set_xticks(range(m))
    ax.set_xticklabels(list(heads), rotation=20, ha="right", fontsize=9)
    ax.set_yticks(range(k))
    labels = [f"{i}: {_shorten_name(n, 64)}" + (f" ({sizes[i]} users)" if len(sizes) else "")
              for i, n in enumerate(names)]
    ax.set_yticklabels(labels, fontsize=9)
    ax.set_title("mean attention weight α per cluster and intent head (colour: min–max)", fontsize=11)
    fig.colorbar(im, ax=ax, fraction=0.03, pad=0.02)
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
