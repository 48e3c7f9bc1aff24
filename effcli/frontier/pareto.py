"""Pareto dominance: flip every objective to 'minimise', then one vectorised check."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd


def pareto_mask(values: np.ndarray, maximize: Sequence[bool]) -> np.ndarray:
    """True for rows no other row dominates. Rows with NaN are never on the front.

    A row is dominated when another is at least as good on every objective and strictly better
    on one; exact duplicates do not dominate each other, so both stay.
    """
    points = np.asarray(values, dtype=float)
    if points.ndim != 2 or points.shape[1] != len(maximize):
        raise ValueError("values must be (rows, objectives) with one maximize flag per objective")
    sign = np.where(np.asarray(maximize, dtype=bool), -1.0, 1.0)
    cost = points * sign
    valid = ~np.isnan(cost).any(axis=1)
    mask = np.zeros(len(cost), dtype=bool)
    candidates = cost[valid]
    if len(candidates):
        no_worse = (candidates[:, None, :] <= candidates[None, :, :]).all(axis=2)
        better = (candidates[:, None, :] < candidates[None, :, :]).any(axis=2)
        dominated = (no_worse & better).any(axis=0)  # [i, j]: i dominates j
        mask[np.flatnonzero(valid)] = ~dominated
    return mask


def pareto_front(df: pd.DataFrame, quality: str, footprints: list[str]) -> pd.DataFrame:
    """The rows of `df` on the front: maximum `quality`, minimum of every footprint column."""
    values = df[[quality, *footprints]].to_numpy(dtype=float)
    return df[pareto_mask(values, [True, *[False] * len(footprints)])]
