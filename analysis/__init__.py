"""Intent insights for IntentRec (paper §4.4–4.5): clusters of the intent embedding Z,
per-user attention weights, quality measures, reports, streaming export and real-time
intent updates. See docs/analysis.md.

    python -m analysis.intents --model runs/synthetic/v3-seed0 --dataset synthetic
    python -m analysis.realtime --model runs/synthetic/v3-seed0 --dataset synthetic --user u00012 \
        --event item_id=t00146,action_type=continue

Modules: `sources` (load a .keras / run dir / SavedModel behind one interface),
`inference` (per-user latest-position intents, batch by batch), `clusters` (K-means++,
statistics, naming rule), `quality` (ARI / NMI / silhouette / stability), `plots`,
`report` (HTML), `export` (Parquet / TFRecord), `realtime` (history + event → update).
"""

__all__ = ["IntentModel", "load_intent_model"]


def __getattr__(name):
    # Lazy: `recommend` (analysis.cli) must not pay for pandas unless it runs `update`.
    if name in __all__:
        from analysis import sources

        return getattr(sources, name)
    raise AttributeError(f"module 'analysis' has no attribute {name!r}")
