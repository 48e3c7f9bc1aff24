"""Generated data for tests and smoke runs only: Gaussian noise around one random mean per
class, so a model can learn it, but its accuracy says nothing about real data."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import numpy as np
from pydantic import Field, model_validator

from effcli.data._arrays import KIND_RULE, infer_kind, to_inputs
from effcli.data.base import DataParams, Dataset, DataSplits, datasets, stratified_split

_MAX_VALUES = 100_000_000
Dim = Annotated[int, Field(ge=1, le=4096)]


class SyntheticParams(DataParams):
    shape: list[Dim] = Field(
        default_factory=lambda: [8, 8, 1],
        min_length=1,
        max_length=3,
        description="the shape of one input, 1 to 3 sizes of 1..4096, e.g. [8, 8, 1] (image), "
        "[40, 1] (sequence), [16] (tabular)",
    )
    classes: int = Field(10, ge=2, le=1000, description="the number of classes, 2..1000")
    num_samples: int = Field(
        1000, ge=20, le=1_000_000, description="samples generated, 20..1000000"
    )
    separation: float = Field(
        1.0,
        gt=0,
        le=100,
        description="distance scale of the class means relative to the noise (higher is "
        "easier), 0 < s <= 100",
    )
    kind: Literal["image", "sequence", "tabular"] | None = Field(None, description=KIND_RULE)

    @model_validator(mode="after")
    def _fits(self) -> SyntheticParams:
        total = int(np.prod(self.shape)) * self.num_samples
        if total > _MAX_VALUES:
            raise ValueError(
                f"num_samples x shape is {total} values; at most {_MAX_VALUES} (400 MB)"
            )
        sizes = {"image": (2, 3), "sequence": (1, 2), "tabular": (1, 2, 3)}
        if self.kind is not None and len(self.shape) not in sizes[self.kind]:
            raise ValueError(
                f"kind {self.kind} needs a shape of {' or '.join(map(str, sizes[self.kind]))} "
                f"size(s) (got {self.shape})"
            )
        return self


@datasets.register("synthetic")
class SyntheticDataset(Dataset[SyntheticParams]):
    """FOR TESTS AND SMOKE RUNS ONLY: `num_samples` float32 inputs of `shape`, classes in equal
    numbers, each class's inputs N(mean_c, 1) with mean_c ~ N(0, separation^2); generated from
    the recipe's seed, so no file and no network are needed."""

    Params = SyntheticParams
    baseline_by_default = False  # tests and smoke runs: no reference variant unless asked
    kind = "image"  # for the default [8, 8, 1]; the recipe's shape or kind decides

    @classmethod
    def data_kind(cls, params: SyntheticParams, root: str | Path) -> str | None:
        return params.kind or infer_kind(tuple(params.shape))

    def load(self, params: SyntheticParams, seed: int) -> DataSplits:
        shape = tuple(params.shape)
        rng = np.random.default_rng([seed, 0x5EED])
        y = rng.permutation(np.arange(params.num_samples) % params.classes).astype(np.int64)
        means = rng.normal(0.0, params.separation, size=(params.classes, *shape))
        x = (means[y] + rng.normal(size=(params.num_samples, *shape))).astype(np.float32)
        x, kind = to_inputs(x, params.kind, "synthetic")
        return stratified_split(
            x,
            y,
            params.split,
            seed,
            kind=kind,
            num_classes=params.classes,
            max_samples=params.max_samples,
            info={"generator": "synthetic: one Gaussian mean per class (tests and smoke runs)"},
        )
