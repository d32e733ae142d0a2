"""Error raised when predictions cannot be scored against the ground truth."""
from __future__ import annotations


class EvaluationError(ValueError):
    """Predictions and ground truth do not fit together (missing files, shapes, unknown object ids)."""
