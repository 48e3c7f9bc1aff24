"""Data efficiency: a stratified, seeded, nested subset of the training split (`train_fraction`).

Each class's training samples are put in an order fixed by the seed alone, and a fraction f
keeps the first round(f * n_c) of each class (at least one). The order does not depend on f,
so the subsets are nested: the 25 % subset lies inside the 50 % one, and a sweep over fractions
draws a learning curve rather than a set of unrelated samples. Validation and test splits are
never touched, so every row of the sweep is measured on the same samples.
"""

from __future__ import annotations

import dataclasses
from math import ceil, floor

import numpy as np

from effcli.data.base import DataError, DataSplits

# Mixed into the seed so the subset's order is not the stream a model's training draws from.
_STREAM = 0x5EB5E7


def subset_counts(labels: np.ndarray, fraction: float) -> dict[int, int]:
    """How many samples of each class present a subset of `fraction` keeps: round half up of
    f * n_c (monotone in f, so nested), at least one."""
    classes, counts = np.unique(labels, return_counts=True)
    return {
        int(c): max(1, min(int(n), floor(fraction * int(n) + 0.5)))
        for c, n in zip(classes, counts, strict=True)
    }


def subset_indices(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Sorted indices into `labels` of the stratified subset (see the module docstring)."""
    picked = []
    for c, k in subset_counts(labels, fraction).items():
        members = np.flatnonzero(labels == c)
        order = np.random.default_rng([seed, _STREAM, c]).permutation(members.size)
        picked.append(members[order[:k]])
    return np.sort(np.concatenate(picked)) if picked else np.zeros(0, dtype=np.int64)


def train_subset(splits: DataSplits, fraction: float, seed: int) -> DataSplits:
    """`splits` with the training split cut to a stratified `fraction` (0 < f <= 1) of it,
    seeded by `seed`; val, test, classes and kind unchanged; fraction 1 returns `splits`.

    `split["train_subset"]` records what was kept (the record written to split.json is the full
    data's, never this one). Raises DataError when f * n_train leaves fewer samples than the
    training split has classes: a stratified subset could not hold one sample of each."""
    if not 0 < fraction <= 1:
        raise DataError(f"train_fraction must be in (0, 1] (got {fraction})")
    if fraction == 1:
        return splits
    labels = np.asarray(splits.y_train)
    n_classes = int(np.unique(labels).size)
    wanted = floor(fraction * labels.size + 0.5)
    if wanted < n_classes:
        least = ceil(n_classes / labels.size * 1000) / 1000  # rounded up: enough samples
        raise DataError(
            f"train_fraction {fraction:g} keeps {wanted} of {labels.size} training samples, "
            f"fewer than the {n_classes} classes a stratified subset needs one each of; use "
            f"train_fraction >= {least:g} or more data"
        )
    ids = subset_indices(labels, fraction, seed)
    record = {
        **splits.split,
        "train_subset": {
            "fraction": fraction,
            "seed": seed,
            "samples": int(ids.size),
            "of": int(labels.size),
            "class_counts": np.bincount(labels[ids], minlength=splits.num_classes).tolist(),
        },
    }
    return dataclasses.replace(
        splits, x_train=splits.x_train[ids], y_train=labels[ids], split=record
    )
