"""Self-contained HTML report (PNGs embedded as base64) and console tables."""

from __future__ import annotations

import base64
import html
import os
from typing import Optional, Sequence

from analysis.clusters import MIN_LIFT, MIN_SHARE, ClusterProfile

NAMING_RULE = (
    "Each cluster is named by its two most distinctive predicted intent labels from different heads. "
    "For every head h and label v, p = the cluster's mean predicted probability of v, q = the same over "
    "all users. Labels with p > q are scored by their contribution to KL(cluster ‖ all): p·log(p/q) for "
    "single-label heads, the Bernoulli KL p·log(p/q) + (1−p)·log((1−p)/(1−q)) for multi-label heads. "
    "Candidates must be dominant and distinctive: the cluster's most likely label of a single-label head "
    "(one of its top 3 for a multi-label head), "
    f"p ≥ {MIN_SHARE['single']:.2f} (single-label) / "
    f"{MIN_SHARE['multi']:.2f} (multi-label) and lift p/q ≥ {MIN_LIFT:.1f}. The best candidate and the best "
    "candidate of another head form the name; none → 'mixed intents'. Clusters named by the same labels "
    "(in any order) each get the label that best sets them apart from these namesakes appended as 'more <label>' (same score "
    "with q = the namesakes' mean, among the cluster's top 2 labels of a single-label head not yet in the name / "
    "top 3 of a multi-label head, p ≥ 0.15, lift ≥ 1.1); "
    "names still equal get a numeral. The evidence column lists the winning labels' p, q and lift."
)

_CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px;color:#222;max-width:1500px}
h1{font-size:22px} h2{font-size:18px;margin-top:28px;border-bottom:1px solid #ddd;padding-bottom:4px}
h3{font-size:15px;margin-bottom:4px}
table{border-collapse:collapse;margin:8px 0 16px 0;font-size:12.5px}
th,td{border:1px solid #d0d0d0;padding:3px 7px;text-align:left;vertical-align:top}
th{background:#f3f3f3} td.num{text-align:right;font-variant-numeric:tabular-nums}
.best{font-weight:bold;background:#e8f4e8} .note{color:#555;font-size:12.5px;max-width:1100px}
img{max-width:100%;border:1px solid #eee;margin:6px 0} .small{font-size:11.5px;color:#444}
ul{margin:2px 0 2px 18px;padding:0}
"""


def _e(x) -> str:
    return html.escape(str(x))


def _f(x, digits=3) -> str:
    try:
        if x != x:  # NaN
            return "–"
        return f"{x:.{digits}f}"
    except (TypeError, ValueError):
        return _e(x)


def embed_png(path: str, alt: str = "") -> str:
    with open(path, "rb") as f:
        data = base64.b64encode(f.read()).decode("ascii")
    return f'<img alt="{_e(alt)}" src="data:image/png;base64,{data}"/>'


def _top(table: dict, n: int = 1) -> str:
    if not table:
        return "–"
    items = [kv for kv in sorted(table.items(), key=lambda kv: -kv[1])[:n] if kv[1] >= 0.005]
    return ", ".join(f"{_e(k)} {v:.0%}" for k, v in items) or "–"


def cluster_table(profiles: Sequence[ClusterProfile], heads: Sequence[str], kinds: dict) -> str:
    cols = ["#", "name", "users", "share"] + [f"α {h}" for h in heads] + ["primary intent (α argmax)"]
    cols += [f"predicted {h}" for h in heads] + [f"recent {h}" for h in heads] + ["name evidence (p / q, lift)"]
    rows = []
    for p in profiles:
        best_alpha = max(p.mean_alpha, key=p.mean_alpha.get) if p.mean_alpha else None
        cells = [f"<td class=num>{p.cluster}</td>", f"<td><b>{_e(p.name)}</b></td>",
                 f"<td class=num>{p.size}</td>", f"<td class=num>{p.share:.1%}</td>"]
        for h in heads:
            cls = "num best" if h == best_alpha else "num"
            cells.append(f"<td class='{cls}'>{_f(p.mean_alpha.get(h, float('nan')))}</td>")
        cells.append(f"<td>{_top(p.primary_share, 2)}</td>")
        for h in heads:
            cells.append(f"<td>{_top(p.predicted.get(h, {}), 3 if kinds.get(h) == 'multi' else 1)}</td>")
        for h in heads:
            cells.append(f"<td>{_top(p.recent.get(h, {}), 3 if kinds.get(h) == 'multi' else 1)}</td>")
        ev = "<br>".join(f"{_e(c['head'])}={_e(c['label'])}: {c['share']:.2f} / {c['overall']:.2f}, ×{c['lift']:.2f}"
                         + (" (vs namesakes)" if c.get("versus") else "") for c in p.name_evidence) or "–"
        cells.append(f"<td class=small>{ev}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    head = "".join(f"<th>{_e(c)}</th>" for c in cols)
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def examples_html(profiles: Sequence[ClusterProfile]) -> str:
    parts = []
    for p in profiles:
        parts.append(f"<h3>{p.cluster}: {_e(p.name)} ({p.size} users)</h3><table>"
                     "<tr><th>user</th><th>distance to centre</th><th>primary intent</th><th>recent titles</th></tr>")
        for ex in p.examples:
            titles = "<ul>" + "".join(f"<li>{_e(t)}</li>" for t in ex["recent_titles"]) + "</ul>"
            parts.append(f"<tr><td>{_e(ex['user_id'])}</td><td class=num>{ex['distance']:.3f}</td>"
                         f"<td>{_e(ex.get('primary_intent', ''))}</td><td>{titles}</td></tr>")
        parts.append("</table>")
    return "".join(parts)


def quality_tables(quality: dict) -> str:
    reps = quality.get("representations", {})
    if not reps:
        return "<p>–</p>"
    truths = []
    for r in reps.values():
        for t in r.get("agreement", {}):
            if t not in truths:
                truths.append(t)
    main = quality.get("main")
    out = ["<table><tr><th>embedding</th><th>dim</th><th>silhouette</th><th>K-means seed stability "
           "(mean pairwise ARI)</th>"]
    out += [f"<th>ARI / NMI vs {_e(t)}</th>" for t in truths] + ["</tr>"]
    best = {}
    for t in truths:
        vals = {n: r["agreement"].get(t, {}).get("nmi", float("nan")) for n, r in reps.items()}
        vals = {n: v for n, v in vals.items() if v == v}
        if vals:
            best[t] = max(vals, key=vals.get)
    for name, r in reps.items():
        stab = r.get("seed_stability") or {}
        label = f"<b>{_e(name)}</b> (clustered)" if name == main else _e(name)
        row = [f"<td>{label}</td>", f"<td class=num>{r.get('dim', '')}</td>",
               f"<td class=num>{_f(r.get('silhouette', float('nan')))}</td>",
               f"<td class=num>{_f(stab.get('mean_ari', float('nan')))}</td>"]
        for t in truths:
            a = r["agreement"].get(t)
            cls = "num best" if best.get(t) == name else "num"
            row.append(f"<td class='{cls}'>{_f(a['ari'])} / {_f(a['nmi'])}</td>" if a else "<td>–</td>")
        out.append("<tr>" + "".join(row) + "</tr>")
    out.append("</table>")
    probes = [t for t in truths if any(t in (r.get("probe") or {}) for r in reps.values())]
    if probes:
        out.append("<p class=note><b>Linear probe</b> (independent of K-means): 5-fold cross-validated accuracy "
                   "of a logistic regression predicting the truth from the embedding; the majority-class rate "
                   "is under each truth's name.</p><table><tr><th>embedding</th>")
        first = next(r for r in reps.values() if r.get("probe"))
        out += [f"<th>{_e(t)}<br><span class=small>majority {_f(first['probe'][t]['majority'])}</span></th>"
                for t in probes] + ["</tr>"]
        for name, r in reps.items():
            pr = r.get("probe") or {}
            vals = {t: pr[t]["accuracy"] for t in probes if t in pr}
            row = [f"<td>{_e(name)}</td>"]
            for t in probes:
                best_here = max((rr.get("probe") or {}).get(t, {}).get("accuracy", -1) for rr in reps.values())
                cls = "num best" if vals.get(t) == best_here else "num"
                row.append(f"<td class='{cls}'>{_f(vals.get(t, float('nan')))}</td>")
            out.append("<tr>" + "".join(row) + "</tr>")
        out.append("</table>")
    cm = quality.get("cross_model")
    if cm:
        out.append(f"<p>Across models trained with different seeds ({_e(', '.join(cm['models']))}): "
                   f"mean pairwise ARI of their K-means partitions = <b>{_f(cm['mean_ari'])}</b> "
                   f"(min {_f(cm['min_ari'])}, {cm['pairs']} pairs).</p>")
    return "".join(out)


MEASURES_HELP = (
    "<b>ARI</b> (adjusted Rand index): agreement of two partitions corrected for chance, 0 = random, 1 = identical; "
    "it is pulled down when K differs from the number of true classes. <b>NMI</b> (normalised mutual information): "
    "0 = independent, 1 = identical; less sensitive to K, but it grows by chance with the number of true classes "
    "(the joint latent intent has up to 3×12×2×2 classes), so compare rows within a column, not columns; "
    "summary.json also has AMI, the chance-adjusted NMI. Truth <code>next:*</code> = the generator's true latent "
    "session intent of the held-out next interaction, <code>current:*</code> = of the latest input interaction, "
    "<code>persona:*</code> = the user's persona (dominant action mix, top genre, p_show ≥ 0.5, p_new_release ≥ "
    "median, chronotype). <b>Silhouette</b>: cluster separation in the embedding's own space (−1..1). "
    "<b>Seed stability</b>: mean pairwise ARI of single-initialisation K-means++ runs with 5 seeds. "
    "Highlighted: the best NMI per column."
)


def write_html(path: str, *, title: str, summary: dict, profiles: Sequence[ClusterProfile], heads, kinds,
               quality: dict, figures: dict, attention_figures: Sequence[tuple]) -> str:
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{_e(title)}</title>"
             f"<style>{_CSS}</style></head><body><h1>{_e(title)}</h1>"]
    parts.append("<table>" + "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in summary.items())
                 + "</table>")
    parts.append("<h2>Quality</h2>" + quality_tables(quality) + f"<p class=note>{MEASURES_HELP}</p>")
    notes = quality.get("notes") or []
    if notes:
        parts.append("<ul class=note>" + "".join(f"<li>{_e(n)}</li>" for n in notes) + "</ul>")
    parts.append("<h2>Clusters</h2>" + cluster_table(profiles, heads, kinds))
    parts.append(f"<p class=note><b>Naming rule.</b> {_e(NAMING_RULE)} <i>predicted</i> = mean predicted "
                 "next-intent probability; <i>recent</i> = share among each user's recent interactions "
                 "(observed labels).</p>")
    for key, caption in (("tsne", "t-SNE of the intent embeddings, coloured by cluster (cf. paper Fig. 6)"),
                         ("alpha", "Mean attention weight per cluster and head")):
        if figures.get(key) and os.path.exists(figures[key]):
            parts.append(f"<h2>{_e(caption)}</h2>" + embed_png(figures[key], caption))
    if attention_figures:
        parts.append("<h2>Per-user attention weights (cf. paper Fig. 7)</h2>")
        for user, fig in attention_figures:
            parts.append(f"<h3>user {_e(user)}</h3>" + embed_png(fig, f"attention of {user}"))
    parts.append("<h2>Users nearest each cluster centre</h2>" + examples_html(profiles))
    parts.append("</body></html>")
    with open(path, "w", encoding="utf-8") as f:
        f.write("".join(parts))
    return path


def print_console(profiles: Sequence[ClusterProfile], heads, kinds, quality: dict, console=None) -> None:
    from rich.console import Console
    from rich.table import Table

    console = console or Console(width=200)
    t = Table(title="Intent clusters", show_lines=False)
    for c in ["#", "name", "users"] + [f"α {h}" for h in heads] + [f"pred {h}" for h in heads]:
        t.add_column(c, justify="right" if c in ("#", "users") or c.startswith("α") else "left")
    for p in profiles:
        row = [str(p.cluster), p.name, str(p.size)]
        row += [_f(p.mean_alpha.get(h, float("nan")), 2) for h in heads]
        for h in heads:
            tab = p.predicted.get(h, {})
            n = 2 if kinds.get(h) == "multi" else 1
            row.append(", ".join(f"{k} {v:.0%}" for k, v in sorted(tab.items(), key=lambda kv: -kv[1])[:n]))
        t.add_row(*row)
    console.print(t)
    reps = quality.get("representations", {})
    if reps:
        truths = []
        for r in reps.values():
            truths += [x for x in r.get("agreement", {}) if x not in truths]
        q = Table(title="Cluster quality (ARI / NMI vs truth; silhouette; seed stability)")
        for c in ["embedding", "silhouette", "seed ARI"] + truths:
            q.add_column(c, justify="left" if c == "embedding" else "right")
        for name, r in reps.items():
            stab = r.get("seed_stability") or {}
            row = [name + (" *" if name == quality.get("main") else ""), _f(r.get("silhouette", float("nan"))),
                   _f(stab.get("mean_ari", float("nan")))]
            for tname in truths:
                a = r["agreement"].get(tname)
                row.append(f"{_f(a['ari'])} / {_f(a['nmi'])}" if a else "–")
            q.add_row(*row)
        console.print(q)
        probes = [t for t in truths if any(t in (r.get("probe") or {}) for r in reps.values())]
        if probes:
            first = next(r for r in reps.values() if r.get("probe"))
            pt = Table(title="Linear-probe accuracy (5-fold CV; majority-class rate in the header)")
            pt.add_column("embedding")
            for tname in probes:
                pt.add_column(f"{tname} ({_f(first['probe'][tname]['majority'], 2)})", justify="right")
            for name, r in reps.items():
                pr = r.get("probe") or {}
                pt.add_row(name, *[_f(pr[t]["accuracy"]) if t in pr else "–" for t in probes])
            console.print(pt)
    cm = quality.get("cross_model")
    if cm:
        console.print(f"Cross-model stability ({', '.join(cm['models'])}): mean pairwise ARI "
                      f"{_f(cm['mean_ari'])} (min {_f(cm['min_ari'])})")
    for n in quality.get("notes") or []:
        console.print(f"[yellow]note:[/yellow] {n}")


def shorten_truths(truth: dict, keep: Optional[Sequence[str]] = None) -> dict:
    if keep is None:
        return truth
    return {k: v for k, v in truth.items() if k in keep}
