"""Your own arrays in NumPy .npz files: one file split three ways, or a train file and a test
file (then the test file is the test split and train/val are split from the train file)."""

from __future__ import annotations

import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from effcli.data._arrays import KIND_RULE, infer_kind, to_inputs
from effcli.data.base import (
    DataError,
    DataParams,
    Dataset,
    DataSplits,
    class_labels,
    datasets,
    label_array,
    path_problem,
    resolve_path,
    stratified_split,
)
from effcli.recipe.source import Loc

_WHAT = "an .npz file (numpy.savez) with the inputs and labels"


class NpzParams(DataParams):
    path: str | None = Field(
        None, description="one .npz file split into train/val/test; relative to the recipe"
    )
    train_path: str | None = Field(
        None, description="a .npz file split into train/val (with test_path instead of path)"
    )
    test_path: str | None = Field(
        None, description="a .npz file used whole as the test split (with train_path)"
    )
    x_key: str = Field("x", min_length=1, description="the array name of the inputs in the file")
    y_key: str = Field("y", min_length=1, description="the array name of the integer labels 0..n-1")
    kind: Literal["image", "sequence", "tabular"] | None = Field(None, description=KIND_RULE)
    num_classes: int | None = Field(
        None,
        ge=2,
        description="the class count when some class has no sample, >= 2; omitted: the number "
        "of distinct labels",
    )

    @model_validator(mode="after")
    def _one_layout(self) -> NpzParams:
        pair = self.train_path is not None or self.test_path is not None
        if (self.path is None) == (not pair) or (
            pair and (self.train_path is None or self.test_path is None)
        ):
            raise ValueError("give either path, or both train_path and test_path")
        return self


@datasets.register("npz")
class NpzDataset(Dataset[NpzParams]):
    """Arrays `x_key` (inputs) and `y_key` (labels) from .npz files; uint8 inputs are scaled to
    [0, 1], others cast to float32 as they are; the kind is given or inferred from x's shape."""

    Params = NpzParams
    kind = "tabular"  # the usual case; the recipe's `kind` or x's shape decides per recipe

    @classmethod
    def check(cls, params: NpzParams, root: str | Path) -> Iterable[tuple[Loc, str]]:
        for key in ("path", "train_path", "test_path"):
            value = getattr(params, key)
            if value is not None:
                problem = path_problem(resolve_path(value, root), "file", _WHAT, key)
                if problem:
                    yield ("data", key), problem

    @classmethod
    def data_kind(cls, params: NpzParams, root: str | Path) -> str | None:
        """The given kind, else the one x's shape implies, read from the .npy header only."""
        if params.kind is not None:
            return params.kind
        path = resolve_path(params.path or params.train_path or "", root)
        try:
            with zipfile.ZipFile(path) as archive, archive.open(f"{params.x_key}.npy") as f:
                version = np.lib.format.read_magic(f)
                read = (
                    np.lib.format.read_array_header_1_0
                    if version == (1, 0)
                    else np.lib.format.read_array_header_2_0
                )
                shape = read(f)[0]
        except (OSError, KeyError, ValueError, zipfile.BadZipFile):
            return None  # loading will say what is wrong
        return infer_kind(tuple(shape[1:])) if len(shape) >= 2 else None

    def _read(self, params: NpzParams, value: str) -> tuple[np.ndarray, np.ndarray, str]:
        path = resolve_path(value, self.root)
        try:
            archive = np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            raise DataError(
                f"{path}: cannot read it as .npz ({exc}); write it with numpy.savez(path, x=..., "
                "y=...)"
            ) from None
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise DataError(
                f"{path}: a single .npy array, not an .npz archive; write both arrays with "
                "numpy.savez(path, x=..., y=...)"
            )
        with archive:
            keys = list(archive.files)
            missing = [k for k in (params.x_key, params.y_key) if k not in keys]
            if missing:
                raise DataError(
                    f"{path}: no array '{missing[0]}' (arrays: {', '.join(keys) or 'none'}); "
                    "set data.x_key and data.y_key to the names used in the file"
                )
            try:
                x, y = archive[params.x_key], archive[params.y_key]
            except (OSError, ValueError, zipfile.BadZipFile) as exc:
                raise DataError(
                    f"{path}: cannot read its arrays ({exc}); save plain numeric arrays, not "
                    "object arrays"
                ) from None
        labels = label_array(y, str(path))
        samples = x.shape[0] if x.ndim else 1
        if samples != len(labels):
            raise DataError(
                f"{path}: x has {samples} samples but y has {len(labels)}; both need one entry "
                "per sample"
            )
        return x, labels, str(path)

    def load(self, params: NpzParams, seed: int) -> DataSplits:
        self.ensure_ready(params)
        if params.path is not None:
            x, y, where = self._read(params, params.path)
            labels, n = class_labels(y, where, params.num_classes)
            inputs, kind = to_inputs(x, params.kind, where)
            return stratified_split(
                inputs,
                labels,
                params.split,
                seed,
                kind=kind,
                num_classes=n,
                max_samples=params.max_samples,
            )
        assert params.train_path is not None and params.test_path is not None
        x, y, where = self._read(params, params.train_path)
        xt, yt, where_t = self._read(params, params.test_path)
        if x.shape[1:] != xt.shape[1:]:
            raise DataError(
                f"{where_t}: test inputs have shape {xt.shape[1:]} per sample but the train "
                f"file's have {x.shape[1:]}; both files need the same sample shape"
            )
        distinct = int(np.unique(np.concatenate([y, yt])).size)
        labels, n = class_labels(y, where, params.num_classes, distinct=distinct)
        labels_t, _ = class_labels(yt, where_t, params.num_classes, distinct=distinct)
        inputs, kind = to_inputs(x, params.kind, where)
        inputs_t, _ = to_inputs(xt, kind, where_t)
        return stratified_split(
            inputs,
            labels,
            params.split,
            seed,
            kind=kind,
            num_classes=n,
            x_test=inputs_t,
            y_test=labels_t,
            max_samples=params.max_samples,
            source_split=(Path(where).name, Path(where_t).name),
        )
