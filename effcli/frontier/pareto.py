"""Pareto dominance: flip every objective to 'minimise', then a sort-based sweep.

Two objectives (quality and one footprint, the common case) take one lexicographic sort and a
running minimum: O(n log n), no Python loop over rows. More objectives sweep the rows in
lexicographic order in blocks, each block checked against the front found so far and against
itself, so memory stays bounded (never the n x n matrix) and the loop runs per block, not per row.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

_BLOCK = 512  # rows per block in the 3+ objective sweep: a 512 x 512 x d boolean block is small
_FRONT_CHUNK = 4096  # front rows compared with a block at once (bounded memory on huge fronts)


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
        mask[np.flatnonzero(valid)] = _undominated(candidates)
    return mask


def _undominated(cost: np.ndarray) -> np.ndarray:
    """Mask of the rows of `cost` (all finite or inf, minimised) that no other row dominates."""
    if cost.shape[1] == 1:
        return cost[:, 0] == cost[:, 0].min()
    if cost.shape[1] == 2:
        return _undominated_2d(cost[:, 0], cost[:, 1])
    return _undominated_nd(cost)


def _undominated_2d(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Sort by (a, b); a row is dominated when a row with smaller a has b <= its b, or a row with
    equal a has a smaller b. Both are read off the sorted order without comparing pairs."""
    order = np.lexsort((b, a))
    sa, sb = a[order], b[order]
    starts = np.flatnonzero(np.r_[True, sa[1:] != sa[:-1]])  # first row of each distinct a
    group = np.cumsum(np.r_[True, sa[1:] != sa[:-1]]) - 1
    running = np.minimum.accumulate(sb)
    before = np.r_[np.inf, running[starts[1:] - 1]]  # min b over strictly smaller a
    dominated = (before[group] <= sb) | (sb[starts][group] < sb)
    mask = np.empty(len(a), dtype=bool)
    mask[order] = ~dominated
    return mask


def _dominates(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """[i, j]: p[i] dominates q[j]."""
    no_worse = (p[:, None, :] <= q[None, :, :]).all(axis=2)
    better = (p[:, None, :] < q[None, :, :]).any(axis=2)
    return np.asarray(no_worse & better)


def _undominated_nd(cost: np.ndarray) -> np.ndarray:
    """Block sweep in lexicographic order: a dominator always sorts before the row it dominates,
    and whatever dominates a row is itself on the front or dominated by a front row, so each
    block needs checking only against the front so far and against itself."""
    order = np.lexsort(cost.T[::-1])
    ordered = cost[order]
    keep = np.zeros(len(cost), dtype=bool)
    front = np.empty((0, cost.shape[1]))
    for start in range(0, len(ordered), _BLOCK):
        block = ordered[start : start + _BLOCK]
        alive = np.ones(len(block), dtype=bool)
        for chunk in range(0, len(front), _FRONT_CHUNK):
            alive &= ~_dominates(front[chunk : chunk + _FRONT_CHUNK], block).any(axis=0)
        # Only the rows the front let through are compared pairwise: usually a handful.
        survivors = block[alive]
        alive[alive] = ~_dominates(survivors, survivors).any(axis=0)
        keep[start : start + len(block)] = alive
        front = np.concatenate([front, block[alive]])
    mask = np.empty(len(cost), dtype=bool)
    mask[order] = keep
    return mask


def pareto_front(df: pd.DataFrame, quality: str, footprints: list[str]) -> pd.DataFrame:
    """The rows of `df` on the front: maximum `quality`, minimum of every footprint column."""
    values = df[[quality, *footprints]].to_numpy(dtype=float)
    return df[pareto_mask(values, [True, *[False] * len(footprints)])]
