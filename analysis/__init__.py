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

from analysis.sources import IntentModel, load_intent_model

__all__ = ["IntentModel", "load_intent_model"]
