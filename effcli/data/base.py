"""The Dataset interface, the split every source shares, and the registry.

Every source reads its files, turns them into float32 inputs and integer labels 0..n-1, and
hands them to `stratified_split`, so all sources split, subsample and record the split alike.
Relative paths in a `data:` section are resolved against the dataset's `root` (the recipe's
folder when the caller passes it, else the working directory).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from math import ceil
from pathlib import Path
from typing import Any, ClassVar, Generic, TypeVar

import numpy as np
from pydantic import Field, SerializerFunctionWrapHandler, model_serializer

from effcli.data.normalize import NormalizeSpec, normalize_splits
from effcli.errors import EffdlError
from effcli.recipe.schema import SplitSpec, StrictModel
from effcli.recipe.source import Loc, format_loc
from effcli.registry import Registry


class DataError(EffdlError):
    """The data cannot be used as the recipe asks; the message names the problem and the fix."""

    exit_code = 2


class DataParams(StrictModel):
    """Arguments every source takes; sources add their own."""

    split: SplitSpec = Field(default_factory=SplitSpec)
    max_samples: int | None = Field(
        None,
        ge=1,
        description="at most this many samples per split (train, val, test), a stratified "
        "subsample taken after splitting, for quick runs; a whole number >= 1, or omit it",
    )

    normalize: NormalizeSpec | None = Field(
        None,
        description="standardize | scale, or {mode, per: channel|global, range: [low, high]}: "
        "statistics from the training split only, recorded in split.json; omit to keep the "
        "source's own scaling",
    )
    save_test: bool = Field(
        True,
        description="true (keep the preprocessed test split as test.npz in the run folder) "
        "or false (large data: re-evaluation reloads the source, `effdl measure --data "
        "RECIPE`)",
    )

    # Settings of how a run keeps its data, not of what the data is: never part of a key.
    unkeyed: ClassVar[frozenset[str]] = frozenset({"save_test"})

    @model_serializer(mode="wrap")
    def _omit_unset(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """Leave out optional fields left at None, so the data spec (and every node key and
        run.json written before they existed) stays the same when they are not used; leave
        out the unkeyed settings, which do not change the data."""
        data = handler(self)
        for name, info in type(self).model_fields.items():
            if name in self.unkeyed or (info.default is None and data.get(name, 0) is None):
                data.pop(name, None)
        return data


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


DP = TypeVar("DP", bound=DataParams)


class Dataset(ABC, Generic[DP]):
    """A data source (`class NpzDataset(Dataset[NpzParams])`). `load` must work offline and be
    deterministic for a given seed."""

    name: ClassVar[str]
    Params: ClassVar[type[DataParams]] = DataParams
    kind: ClassVar[str] = "image"
    # Whether tabular data from this source gets a baseline variant unless the recipe says.
    baseline_by_default: ClassVar[bool] = True

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root) if root is not None else Path.cwd()

    @classmethod
    def check(cls, params: DP, root: str | Path) -> Iterable[tuple[Loc, str]]:
        """Problems knowable before loading (a missing path, a missing archive file), as
        (location in the recipe, message); `root` resolves relative paths. None by default."""
        return ()

    @classmethod
    def data_kind(cls, params: DP, root: str | Path) -> str | None:
        """The kind this recipe's data will have, known before loading (for plan-time checks
        such as "this model family takes image data"); None when only loading can tell.
        Sources whose kind depends on the recipe or the file override this."""
        return cls.kind

    def ensure_ready(self, params: DP) -> None:
        """Raise the first `check` problem as a DataError (called at the start of `load`)."""
        for loc, message in type(self).check(params, self.root):
            raise DataError(f"{format_loc(loc)}: {message}")

    @abstractmethod
    def load(self, params: DP, seed: int) -> DataSplits:
        """Read, preprocess and split the data."""


def resolve_path(value: str | Path, root: str | Path) -> Path:
    """`value` with ~ expanded, relative to `root` unless absolute."""
    path = Path(value).expanduser()
    return path if path.is_absolute() else Path(root) / path


def path_problem(path: Path, want: str, what: str, key: str = "path") -> str | None:
    """Why `path` is not the existing folder/file (`want`) that should hold `what`, or None."""
    if not path.exists():
        return f"{path} does not exist; put {what} there, or fix data.{key}"
    if want == "dir" and not path.is_dir():
        return f"{path} is a file, not a folder; data.{key} must be the folder holding {what}"
    if want == "file" and not path.is_file():
        return f"{path} is a folder, not a file; data.{key} must be {what}"
    return None


def label_array(y: Any, where: str) -> np.ndarray:
    """Labels as int64 of shape (N,); refuses one-hot rows and fractional values."""
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise DataError(
            f"{where}: labels must be one class index per sample, shape (N,) (got shape "
            f"{tuple(y.shape)}); store integer labels, not one-hot rows"
        )
    if y.dtype.kind == "f" and np.all(np.isfinite(y)) and np.all(y == np.round(y)):
        y = y.astype(np.int64)
    if y.dtype.kind not in "iu":
        raise DataError(
            f"{where}: labels must be whole numbers 0..n-1 (got dtype {y.dtype}); "
            "map each class to an index first"
        )
    return y.astype(np.int64)


def class_labels(
    y: Any,
    where: str,
    num_classes: int | None = None,
    *,
    distinct: int | None = None,
    settable: bool = True,
) -> tuple[np.ndarray, int]:
    """Integer labels (int64, shape (N,)) and the class count; refuses anything but 0..n-1.

    n is `num_classes` when given, else `distinct` (the number of distinct labels, counted here
    when not given: several files count together), so labels 1..n or with
    gaps fail rather than being silently remapped (the indices are what the user's data means).
    """
    y = label_array(y, where)
    n = num_classes or distinct or int(np.unique(y).size)
    bad = np.unique(y[(y < 0) | (y >= n)])
    if bad.size:
        shown = ", ".join(str(v) for v in bad[:10]) + (", ..." if bad.size > 10 else "")
        hint = (
            " (or set data.num_classes if a class is absent)"
            if settable and num_classes is None
            else ""
        )
        raise DataError(
            f"{where}: labels must be 0..{n - 1} for {n} classes; found {shown}; "
            f"relabel them to 0..{n - 1}{hint}"
        )
    return y, n


def _check_sizes(sizes: dict[str, int], y: np.ndarray, pool: str) -> None:
    """Each split to be stratified needs one sample per class, each class two samples."""
    classes, counts = np.unique(y, return_counts=True)
    listing = ", ".join(f"{k} {v}" for k, v in sizes.items())
    for name, size in sizes.items():
        if size < classes.size:
            raise DataError(
                f"split '{name}' would get {size} sample(s) for {classes.size} classes, too few "
                f"to stratify ({listing} of {len(y)} in {pool}); use more data or a larger "
                f"data.split.{name}"
            )
    rare = classes[counts < 2]
    if rare.size:
        shown = ", ".join(str(c) for c in rare[:10])
        raise DataError(
            f"class(es) {shown} have a single sample in {pool}; stratified splitting needs at "
            "least 2 per class: add samples of those classes or remove them"
        )


def _subsample(ids: np.ndarray, y: np.ndarray, n: int, seed: int, name: str) -> np.ndarray:
    """A deterministic stratified subsample of `ids` of size `n` (largest remainders)."""
    if len(ids) <= n:
        return ids
    classes, counts = np.unique(y[ids], return_counts=True)
    if n < classes.size:
        raise DataError(
            f"data.max_samples is {n} but split '{name}' has {classes.size} classes; a "
            f"stratified subsample needs one sample per class: use max_samples >= {classes.size}"
        )
    quota = counts * n / counts.sum()
    take = np.maximum(np.floor(quota).astype(np.int64), 1)
    while take.sum() > n:  # the floor of 1 per class overshot: trim the largest
        take[np.argmax(take)] -= 1
    order = np.argsort(-(quota - take), kind="stable")
    for i in order[: n - int(take.sum())]:
        take[i] += 1
    rng = np.random.default_rng([seed, len(ids), n])
    picked = [
        rng.choice(ids[y[ids] == c], k, replace=False) for c, k in zip(classes, take, strict=True)
    ]
    return np.sort(np.concatenate(picked))


def stratified_split(
    x: np.ndarray,
    y: np.ndarray,
    split: SplitSpec,
    seed: int,
    kind: str,
    num_classes: int,
    *,
    x_test: np.ndarray | None = None,
    y_test: np.ndarray | None = None,
    max_samples: int | None = None,
    source_split: tuple[str, str] = ("all", "all"),
    prepare: Callable[[np.ndarray], np.ndarray] | None = None,
    info: dict[str, Any] | None = None,
) -> DataSplits:
    """Split into train/val/test with class proportions kept, deterministic for `seed`.

    With `x_test`/`y_test` (a source's own test split) only train/val are split from `x`, in
    the proportion train:val. `max_samples` then caps each split by a stratified subsample.
    `prepare` converts the selected inputs (e.g. uint8 -> float32 after selection, to save
    memory); `info` adds source facts (class names, label mapping) to the split record.
    """
    from sklearn.model_selection import train_test_split

    pool = f"the source split '{source_split[0]}'" if y_test is not None else "the data"
    index = np.arange(len(y))
    val_share = split.val / (split.train + split.val)
    if y_test is None:
        n_test = ceil(split.test * len(y))
        n_val = ceil(val_share * (len(y) - n_test))
        sizes = {"train": len(y) - n_test - n_val, "val": n_val, "test": n_test}
    else:
        n_val = ceil(val_share * len(y))
        sizes = {"train": len(y) - n_val, "val": n_val}
    _check_sizes(sizes, y, pool)
    try:
        if y_test is None:
            rest, test = train_test_split(
                index, test_size=split.test, random_state=seed, stratify=y
            )
        else:
            rest, test = index, np.arange(len(y_test))
        train, val = train_test_split(
            rest, test_size=val_share, random_state=seed, stratify=y[rest]
        )
    except ValueError as exc:  # what the size checks above cannot foresee
        raise DataError(
            f"stratified split of {pool} failed: {exc}; use more data or other fractions"
        ) from None
    train, val, test = np.sort(train), np.sort(val), np.sort(test)
    y_test_all = y if y_test is None else np.asarray(y_test)
    if max_samples is not None:
        train = _subsample(train, y, max_samples, seed, "train")
        val = _subsample(val, y, max_samples, seed, "val")
        test = _subsample(test, y_test_all, max_samples, seed, "test")

    def counts(ids: np.ndarray, labels: np.ndarray) -> list[int]:
        return np.bincount(labels[ids], minlength=num_classes).tolist()

    if y_test is None:
        fractions: dict[str, Any] = split.model_dump()
    else:
        fractions = {"train": 1 - val_share, "val": val_share, "test": "source"}
    record = {
        "seed": seed,
        "fractions": fractions,
        # Which split of the source each part was drawn from; `indices` index into that part.
        "source_split": {
            "train": source_split[0],
            "val": source_split[0],
            "test": source_split[0] if y_test is None else source_split[1],
        },
        "max_samples": max_samples,
        "sizes": {"train": len(train), "val": len(val), "test": len(test)},
        "class_counts": {
            "train": counts(train, y),
            "val": counts(val, y),
            "test": counts(test, y_test_all),
        },
        **(info or {}),
        "indices": {"train": train.tolist(), "val": val.tolist(), "test": test.tolist()},
    }
    keep = prepare or (lambda a: a)
    test_x = x if x_test is None else x_test
    return DataSplits(
        x_train=keep(x[train]),
        y_train=y[train],
        x_val=keep(x[val]),
        y_val=y[val],
        x_test=keep(test_x[test]),
        y_test=y_test_all[test],
        num_classes=num_classes,
        kind=kind,
        split=record,
    )


datasets: Registry[Dataset[Any]] = Registry("dataset", "effcli.data", Dataset)


def load_splits(spec: dict[str, Any], root: str | Path, seed: int) -> DataSplits:
    """The splits a run trains and reports on: the source named by a data spec (a plan's
    `data_spec`, relative paths from `root`) loaded, split, and normalized as it asks."""
    spec = dict(spec)
    dataset = datasets.get(spec.pop("source"))
    params = dataset.Params.model_validate(spec)
    splits = dataset(root=root).load(params, seed)
    return normalize_splits(splits, params.normalize) if params.normalize else splits
