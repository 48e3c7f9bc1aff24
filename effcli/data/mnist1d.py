"""MNIST-1D (Greydanus 2020): ten 1-D digit templates padded, scaled, shifted, sheared and
noised into length-40 signals; small, but it separates model families the way MNIST no longer
does. Generated offline by the `mnist1d` package's own generator, never downloaded."""

from __future__ import annotations

import os
import random

import numpy as np
from pydantic import Field

from effcli.data.base import DataParams, Dataset, DataSplits, datasets, stratified_split


class Mnist1dParams(DataParams):
    num_samples: int = Field(
        10_000,
        ge=100,
        le=1_000_000,
        multiple_of=10,
        description="signals generated in total (an equal number per digit; the generator's "
        "own 80/20 split gives the test split), a multiple of 10 from 100 to 1000000",
    )


@datasets.register("mnist1d")
class Mnist1dDataset(Dataset[Mnist1dParams]):
    """`mnist1d.data.make_dataset` with its default arguments (seed 42, 40 steps) and
    `num_samples`; inputs (40, 1) float32, standardized by the generator. The generator's test
    part is the test split (data.split.test is unused); train/val split its train part."""

    Params = Mnist1dParams
    kind = "sequence"

    def load(self, params: Mnist1dParams, seed: int) -> DataSplits:
        # mnist1d imports matplotlib.pyplot; no window is ever drawn, so never pick a GUI backend.
        os.environ.setdefault("MPLBACKEND", "Agg")
        from mnist1d.data import get_dataset_args, make_dataset

        args = get_dataset_args()
        args.num_samples = params.num_samples
        # The generator seeds the global `random`/`np.random` state: put the caller's back.
        np_state, py_state = np.random.get_state(), random.getstate()
        try:
            data = make_dataset(args)
        finally:
            np.random.set_state(np_state)
            random.setstate(py_state)
        x = data["x"].astype(np.float32)[..., np.newaxis]
        x_test = data["x_test"].astype(np.float32)[..., np.newaxis]
        return stratified_split(
            x,
            data["y"].astype(np.int64),
            params.split,
            seed,
            kind=self.kind,
            num_classes=10,
            x_test=x_test,
            y_test=data["y_test"].astype(np.int64),
            max_samples=params.max_samples,
            source_split=("generator train part (80 %)", "generator test part (20 %)"),
            info={"generator": f"mnist1d.data.make_dataset, seed {args.seed}"},
        )
