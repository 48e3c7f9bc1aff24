"""Parameter counts read from a Keras model's weights (BatchNorm statistics included)."""

from __future__ import annotations

from typing import Any

import numpy as np


def weight_counts(model: Any) -> tuple[int, int]:
    """(params, nonzero_params) over every weight tensor of the model."""
    weights = model.get_weights()
    params = int(sum(w.size for w in weights))
    nonzero = int(sum(np.count_nonzero(w) for w in weights))
    return params, nonzero
