"""A TensorFlow Datasets dataset already prepared in a local `data_dir` (never downloaded).

Optional: needs `pip install tensorflow-datasets`, and importing it imports TensorFlow, so
`effdl data` on a tfds recipe is not TensorFlow-free. Prepare the data once on a machine with
network (`tfds build NAME --data_dir DIR`), then copy DIR here."""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field

from effcli.data._arrays import KIND_RULE, to_inputs
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


class TfdsParams(DataParams):
    name: str = Field(
        min_length=1,
        description="a TFDS dataset name, optionally with config and version, e.g. mnist or "
        "fashion_mnist/3.0.1",
    )
    data_dir: str = Field(
        description="the folder holding the prepared dataset (NAME/VERSION/...); relative to "
        "the recipe"
    )
    train_split: str = Field(
        "train", min_length=1, description="the TFDS split to train on, e.g. train"
    )
    test_split: str | None = Field(
        "test",
        description="the TFDS split used whole as the test split, e.g. test; null: split the "
        "train split three ways",
    )
    kind: Literal["image", "sequence", "tabular"] | None = Field(None, description=KIND_RULE)


def _install_hint(params: TfdsParams, folder: Path) -> str:
    return (
        "the tensorflow_datasets package is not installed; run `pip install "
        f"tensorflow-datasets`, and have '{params.name}' prepared in {folder} (on a machine "
        f"with network: tfds build {params.name} --data_dir {folder}; effdl never downloads)"
    )


@datasets.register("tfds")
class TfdsDataset(Dataset[TfdsParams]):
    """`tfds.load(name, data_dir=..., download=False, as_supervised=True)`; uint8 images are
    scaled to [0, 1]; the kind is given or inferred from the inputs' shape."""

    Params = TfdsParams
    kind = "image"

    @classmethod
    def check(cls, params: TfdsParams, root: str | Path) -> Iterable[tuple[Loc, str]]:
        folder = resolve_path(params.data_dir, root)
        what = f"the prepared TFDS dataset '{params.name}' (made by tfds build)"
        problem = path_problem(folder, "dir", what, key="data_dir")
        if problem:
            yield ("data", "data_dir"), problem

    @classmethod
    def data_kind(cls, params: TfdsParams, root: str | Path) -> str | None:
        """The given kind; else only loading can tell (most TFDS datasets are images)."""
        return params.kind

    def load(self, params: TfdsParams, seed: int) -> DataSplits:
        folder = resolve_path(params.data_dir, self.root)
        if importlib.util.find_spec("tensorflow_datasets") is None:
            raise DataError(_install_hint(params, folder))
        self.ensure_ready(params)
        importlib.import_module("effcli._tf")  # TensorFlow must start in legacy-Keras mode
        import tensorflow_datasets as tfds

        names = [params.train_split] + ([params.test_split] if params.test_split else [])
        try:
            parts: Any = tfds.as_numpy(
                tfds.load(
                    params.name,
                    split=names,
                    data_dir=str(folder),
                    download=False,
                    as_supervised=True,
                    batch_size=-1,
                )
            )
        except Exception as exc:  # tfds raises many types for "not prepared here"
            reason = " ".join(str(exc).split())[:300]
            raise DataError(
                f"tfds could not load '{params.name}' splits {', '.join(names)} from {folder} "
                f"({type(exc).__name__}: {reason}); prepare it there with tfds build "
                f"{params.name} --data_dir {folder}"
            ) from None
        where = f"tfds {params.name}"
        x, kind = to_inputs(np.asarray(parts[0][0]), params.kind, f"{where} {names[0]}")
        y_raw = np.asarray(parts[0][1])
        if params.test_split is None:
            y, n = class_labels(y_raw, f"{where} {names[0]}", settable=False)
            return stratified_split(
                x,
                y,
                params.split,
                seed,
                kind=kind,
                num_classes=n,
                max_samples=params.max_samples,
                source_split=(names[0], names[0]),
            )
        x_test, _ = to_inputs(np.asarray(parts[1][0]), kind, f"{where} {names[1]}")
        y_test_raw = np.asarray(parts[1][1])
        distinct = int(np.unique(np.concatenate([y_raw.ravel(), y_test_raw.ravel()])).size)
        y, n = class_labels(y_raw, f"{where} {names[0]}", distinct=distinct, settable=False)
        y_test, _ = class_labels(
            y_test_raw, f"{where} {names[1]}", distinct=distinct, settable=False
        )
        return stratified_split(
            x,
            y,
            params.split,
            seed,
            kind=kind,
            num_classes=n,
            x_test=x_test,
            y_test=y_test,
            max_samples=params.max_samples,
            source_split=(names[0], names[1]),
        )
