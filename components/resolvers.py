"""Baseline resolution for the Evaluator.

`LatestBlessedOtherModelStrategy` is TFX's LatestBlessedModelStrategy that skips the
candidate itself. With the stock strategy, re-running an unchanged pipeline feeds the
(cached) candidate back to the Evaluator as its own baseline: the Evaluator and the
Pusher then run again and push the same model as a new version. Skipping the
candidate gives the Evaluator exactly the inputs of the first run, so the re-run is
served from the cache end to end. (Kubeflow V2 only compiles the two stock
strategies; the Vertex runner uses LatestBlessedModelStrategy.)
"""

from typing import Dict, List, Optional

from tfx import types
from tfx.dsl.input_resolution.strategies.latest_blessed_model_strategy import LatestBlessedModelStrategy
from tfx.types import standard_artifacts

CANDIDATE_KEY = "candidate"


class LatestBlessedOtherModelStrategy(LatestBlessedModelStrategy):
    """Latest blessed Model other than the `candidate` channel's model."""

    def resolve_artifacts(self, store, input_dict: Dict[str, List[types.Artifact]]
                          ) -> Optional[Dict[str, List[types.Artifact]]]:
        candidate = list(input_dict.get(CANDIDATE_KEY, []))
        exclude = {a.id for a in candidate}
        rest = {k: [a for a in v if not (isinstance(a, standard_artifacts.Model) and a.id in exclude)]
                for k, v in input_dict.items() if k != CANDIDATE_KEY}
        result = super().resolve_artifacts(store, rest)
        if result is None:
            return None
        result = dict(result)
        result[CANDIDATE_KEY] = candidate
        return result
