"""The Dataset interface, the split every source shares, and the registry."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
from pydantic import Field

from effcli.recipe.schema import SplitSpec, StrictModel
from effcli.registry import Registry


class DataParams(StrictModel):
    """Arguments every source takes; sources add their own."""

    split: SplitSpec = Field(default_factory=SplitSpec)


@dataclass(frozen=True)
class DataSplits:
    """Preprocessed arrays ready for training; selection uses val, reporting uses test."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    kind: str  # "image" | "sequence" | "tabular": what model families and augmentations fit
    split: dict[str, Any] = field(default_factory=dict)  # how it was split, for split.json

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self.x_train.shape[1:])


class Dataset(ABC):
    """A data source. `load` must work offline and be deterministic for a given seed."""

    name: ClassVar[str]
    Params: ClassVar[type[DataParams]] = DataParams
    kind: ClassVar[str] = "image"

    @abstractmethod
    def load(self, params: DataParams, seed: int) -> DataSplits:
        """Read, preprocess and split the data."""


def stratified_split(
    x: np.ndarray, y: np.ndarray, split: SplitSpec, seed: int, kind: str, num_classes: int
) -> DataSplits:
    """Split into train/val/test with class proportions kept, deterministic for `seed`."""
    from sklearn.model_selection import train_test_split

    index = np.arange(len(y))
    rest, test = train_test_split(index, test_size=split.test, random_state=seed, stratify=y)
    val_share = split.val / (split.train + split.val)
    train, val = train_test_split(rest, test_size=val_share, random_state=seed, stratify=y[rest])
    train, val, test = np.sort(train), np.sort(val), np.sort(test)

    def counts(ids: np.ndarray) -> list[int]:
        return np.bincount(y[ids], minlength=num_classes).tolist()

    record = {
        "seed": seed,
        "fractions": split.model_dump(),
        "sizes": {"train": len(train), "val": len(val), "test": len(test)},
        "class_counts": {"train": counts(train), "val": counts(val), "test": counts(test)},
        "indices": {"train": train.tolist(), "val": val.tolist(), "test": test.tolist()},
    }
    return DataSplits(
        x_train=x[train],
        y_train=y[train],
        x_val=x[val],
        y_val=y[val],
        x_test=x[test],
        y_test=y[test],
        num_classes=num_classes,
        kind=kind,
        split=record,
    )


datasets: Registry[Dataset] = Registry("dataset", "effcli.data", Dataset)
