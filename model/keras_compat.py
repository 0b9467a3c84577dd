"""The one place for workarounds of Keras bugs, each with the version that retires it.

Everything else in `model/` uses public Keras 3 API only. When a listed bug is fixed in
the pinned Keras (requirements.txt), delete its shim and the call sites: the tests named
beside each shim fail if it is removed while still needed.

| shim | Keras bug | still needed in | retire when |
|---|---|---|---|
| `steps_per_execution` | on TensorFlow, `steps_per_execution > 1` under a multi-replica `tf.distribute` strategy fails with "You must feed a value for placeholder tensor" (the multi-step `while` loop's `cond` in a replica context; keras-team/keras#19246) | 3.12.4 (checked) | that issue is fixed (tests/model/test_training_runtime.py::DataParallelTest) |
| `track_layer` | `Functional.__init__` rebinds `self._layers` after the attribute tracker was bound to the old list, so a layer assigned to a functional subclass *outside* its graph (our item head) is left out of `trainable_variables` and the saved weights | 3.6.0 … 3.12.4 (checked) | a Keras release whose `Functional.__init__` keeps tracked layers (tests/model/test_intentrec.py::test_item_head_is_trained) |

Retired with the upgrade from Keras 3.6.0 to 3.12.4 (kept here as the record):
- TF `ops.dot_product_attention` multiplied the logits by themselves instead of by the
  scale (keras-team/keras#20510, fixed in 3.7): the hand-written TF attention is gone.
- No `flash_attention=` argument before 3.7: now passed straight through.
- The JAX trainer called `jax.spmd_mode`, which JAX 0.5+ removed (`bench.keras_fixes`).
- The TF trainer all-reduced replica gradients with a SUM and never rescaled a custom
  `compute_loss` (3.6); 3.12 expects `compute_loss` to return the loss already scaled
  for distribution, which `model.training.scale_loss_for_distribution` does as the
  contract of a custom `compute_loss`, not as a workaround.
"""

import logging

log = logging.getLogger(__name__)


def steps_per_execution(model, requested: int) -> int:
    """`requested`, or 1 where Keras cannot run several steps per call (see the table)."""
    strategy = getattr(model, "distribute_strategy", None)
    if requested > 1 and getattr(strategy, "num_replicas_in_sync", 1) > 1:
        log.warning("steps_per_execution=%d is not supported by Keras under a %d-replica tf.distribute "
                    "strategy (keras-team/keras#19246): using 1", requested, strategy.num_replicas_in_sync)
        return 1
    return requested


def track_layer(model, layer):
    """Makes `layer`'s weights part of the functional `model`'s weights (idempotent).

    For a layer assigned as an attribute *after* `super().__init__(inputs, outputs)`
    of a functional subclass (see the module table).
    """
    if not any(existing is layer for existing in model._layers):
        model._layers.append(layer)
    return model
