"""Top-1 accuracy of a Keras model, for the `accuracy` column next to the .tflite's."""

from __future__ import annotations

from typing import Any

import numpy as np


def keras_accuracy(model: Any, x: np.ndarray, y: np.ndarray, batch_size: int = 256) -> float:
    """Top-1 accuracy of a Keras model, called eagerly in batches: `predict` would trace a new
    function for every model (about a second each, for one pass over a small test split)."""
    hits = 0
    for start in range(0, len(x), batch_size):
        logits = np.asarray(model(x[start : start + batch_size], training=False))
        hits += int(np.sum(np.argmax(logits, axis=-1) == y[start : start + batch_size]))
    return hits / max(len(x), 1)
