"""`train_fraction`'s subset of the training split: nested, stratified, seeded; val/test untouched."""

from __future__ import annotations

import numpy as np
import pytest

from effcli.data.base import DataError, DataSplits
from effcli.data.subset import train_subset
from effcli.stages._label import token

FRACTIONS = (0.1, 0.25, 0.5, 0.75, 1.0)


def splits(counts: tuple[int, ...] = (40, 25, 13, 7), n_val: int = 12) -> DataSplits:
    """Unbalanced classes; each training input holds its own row number, to identify it."""
    y = np.repeat(np.arange(len(counts)), counts)
    y = np.random.default_rng(3).permutation(y)
    x = np.arange(y.size, dtype=np.float32)[:, None]
    xv = np.full((n_val, 1), -1.0, dtype=np.float32)
    yv = np.arange(n_val) % len(counts)
    return DataSplits(
        x, y, xv, yv, xv - 1, yv, num_classes=len(counts), kind="tabular", split={"seed": 0}
    )


def rows(data: DataSplits) -> set[int]:
    return {int(v) for v in data.x_train[:, 0]}


def test_subsets_are_nested_across_fractions() -> None:
    full = splits()
    chosen = [rows(train_subset(full, f, seed=7)) for f in FRACTIONS]
    for smaller, larger in zip(chosen, chosen[1:], strict=False):
        assert smaller < larger  # strictly inside: each step adds samples
    assert chosen[-1] == set(range(full.y_train.size))


def test_each_class_keeps_its_share_within_one_sample() -> None:
    full = splits()
    counts = np.bincount(full.y_train)
    for fraction in FRACTIONS:
        part = train_subset(full, fraction, seed=7)
        kept = np.bincount(part.y_train, minlength=full.num_classes)
        assert np.all(np.abs(kept - fraction * counts) <= 1), (fraction, kept)
        assert np.all(kept >= 1)
        # Inputs still go with their labels.
        assert np.array_equal(full.y_train[part.x_train[:, 0].astype(int)], part.y_train)


def test_the_seed_fixes_the_subset() -> None:
    full = splits()
    assert rows(train_subset(full, 0.25, seed=7)) == rows(train_subset(full, 0.25, seed=7))
    assert rows(train_subset(full, 0.25, seed=7)) != rows(train_subset(full, 0.25, seed=8))


def test_val_test_and_the_rest_are_unchanged_and_the_subset_recorded() -> None:
    full = splits()
    part = train_subset(full, 0.5, seed=1)
    assert part.x_val is full.x_val and part.y_val is full.y_val
    assert part.x_test is full.x_test and part.y_test is full.y_test
    assert (part.num_classes, part.kind) == (full.num_classes, full.kind)
    record = part.split["train_subset"]
    assert record["samples"] == part.y_train.size == sum(record["class_counts"])
    assert record["of"] == full.y_train.size and record["fraction"] == 0.5
    assert part.split["seed"] == 0 and "train_subset" not in full.split  # not mutated


def test_fraction_one_is_the_same_object() -> None:
    full = splits()
    assert train_subset(full, 1.0, seed=5) is full


def test_fewer_samples_than_classes_is_an_error() -> None:
    full = splits((3, 3, 3, 3))  # 12 samples, 4 classes: 0.25 keeps 3
    with pytest.raises(DataError) as err:
        train_subset(full, 0.25, seed=0)
    assert str(err.value) == (
        "train_fraction 0.25 keeps 3 of 12 training samples, fewer than the 4 classes a "
        "stratified subset needs one each of; use train_fraction >= 0.334 or more data"
    )
    assert train_subset(full, 0.334, seed=0).y_train.size == 4  # the fix it names works


@pytest.mark.parametrize("fraction", [0.0, -0.1, 1.5])
def test_a_fraction_outside_zero_one_is_refused(fraction: float) -> None:
    with pytest.raises(DataError, match="must be in"):
        train_subset(splits(), fraction, seed=0)


def test_label_token_is_a_percentage() -> None:
    assert token("train_fraction", 0.25) == "f25%"
    assert token("train_fraction", 1.0) == "f100%"
