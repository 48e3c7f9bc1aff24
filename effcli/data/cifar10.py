"""CIFAR-10 from a local copy of the "CIFAR-10 python version" (the extracted
cifar-10-batches-py folder of https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz): five
training batches and a test batch, each a pickled dict of b"data" (N, 3072) uint8 and
b"labels". Pickle runs code when read: only point this at a copy you trust."""

from __future__ import annotations

import pickle
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field

from effcli.data.base import (
    DataError,
    DataParams,
    Dataset,
    DataSplits,
    class_labels,
    datasets,
    path_problem,
    resolve_path,
    stratified_split,
)
from effcli.recipe.source import Loc

TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_FILE = "test_batch"
NAMES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
_WHAT = (
    "the CIFAR-10 python version (the extracted cifar-10-batches-py folder with "
    "data_batch_1..5 and test_batch)"
)


class Cifar10Params(DataParams):
    path: str = Field(
        description="the cifar-10-batches-py folder (data_batch_1..5, test_batch); relative to "
        "the recipe"
    )


def _read_batch(file: Path) -> tuple[np.ndarray, np.ndarray]:
    """One batch as (N, 32, 32, 3) uint8 images and int64 labels."""
    try:
        with file.open("rb") as handle:
            batch: Any = pickle.load(handle, encoding="bytes")
    except (OSError, pickle.UnpicklingError, EOFError, ValueError, TypeError) as exc:
        raise DataError(
            f"{file}: not a CIFAR-10 python batch ({type(exc).__name__}: {exc}); replace it "
            "with the file from cifar-10-python.tar.gz"
        ) from None
    data = batch.get(b"data") if isinstance(batch, dict) else None
    labels = batch.get(b"labels") if isinstance(batch, dict) else None
    if data is None or labels is None:
        raise DataError(
            f"{file}: not a CIFAR-10 python batch (a pickled dict with b'data' and b'labels' "
            "is expected); replace it with the file from cifar-10-python.tar.gz"
        )
    data = np.asarray(data)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        raise DataError(
            f"{file}: b'data' must be uint8 of shape (N, 3072) (got {data.dtype} "
            f"{tuple(data.shape)}); replace it with the file from cifar-10-python.tar.gz"
        )
    y, _ = class_labels(labels, str(file), 10)
    if len(y) != len(data):
        raise DataError(
            f"{file}: {len(data)} images but {len(y)} labels; both need one entry per image"
        )
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), y


@datasets.register("cifar10")
class Cifar10Dataset(Dataset[Cifar10Params]):
    """60,000 32x32 RGB images of 10 classes, scaled to [0, 1]; test_batch is the test split
    (data.split.test is unused) and train/val are split from data_batch_1..5."""

    Params = Cifar10Params
    kind = "image"

    @classmethod
    def check(cls, params: Cifar10Params, root: str | Path) -> Iterable[tuple[Loc, str]]:
        folder = resolve_path(params.path, root)
        problem = path_problem(folder, "dir", _WHAT)
        if problem and folder.is_file() and folder.name.endswith((".tar.gz", ".tgz")):
            problem = (
                f"{folder} is the archive; extract it (tar xzf {folder.name}) and point "
                "data.path at the cifar-10-batches-py folder it makes"
            )
        if problem:
            yield ("data", "path"), problem
            return
        missing = [f for f in (*TRAIN_FILES, TEST_FILE) if not (folder / f).is_file()]
        if missing:
            inner = folder / "cifar-10-batches-py"
            hint = (
                f"; it holds cifar-10-batches-py: point data.path at {inner}"
                if inner.is_dir()
                else f"; data.path must be {_WHAT}"
            )
            yield ("data", "path"), f"{folder} has no {missing[0]}{hint}"

    def load(self, params: Cifar10Params, seed: int) -> DataSplits:
        self.ensure_ready(params)
        folder = resolve_path(params.path, self.root)
        parts = [_read_batch(folder / name) for name in TRAIN_FILES]
        x = np.concatenate([p[0] for p in parts])
        y = np.concatenate([p[1] for p in parts])
        x_test, y_test = _read_batch(folder / TEST_FILE)
        return stratified_split(
            x,
            y,
            params.split,
            seed,
            kind=self.kind,
            num_classes=10,
            x_test=x_test,
            y_test=y_test,
            max_samples=params.max_samples,
            source_split=("data_batch_1..5", TEST_FILE),
            prepare=lambda a: a.astype(np.float32) / 255.0,
            info={"class_names": list(_label_names(folder))},
        )


def _label_names(folder: Path) -> tuple[str, ...]:
    """Class names from batches.meta when present, else the standard ten."""
    meta = folder / "batches.meta"
    try:
        with meta.open("rb") as handle:
            names = pickle.load(handle, encoding="bytes")[b"label_names"]
        found = tuple(n.decode() if isinstance(n, bytes) else str(n) for n in names)
    except Exception:  # optional file: the standard names are right for every real copy
        return NAMES
    return found if len(found) == 10 else NAMES
