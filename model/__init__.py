"""Keras 3 IntentRec model: backend-agnostic (`keras.ops` only, no TensorFlow)."""

from model.config import IntentRecConfig
from model.intentrec import IntentRec

__all__ = ["IntentRec", "IntentRecConfig"]
