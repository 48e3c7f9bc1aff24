"""scikit-learn's bundled 8x8 handwritten digits: real data that needs no network."""

from __future__ import annotations

import numpy as np

from effcli.data.base import DataParams, Dataset, DataSplits, datasets, stratified_split


@datasets.register("digits")
class DigitsDataset(Dataset[DataParams]):
    """1,797 grayscale 8x8 images of 10 digits, scaled to [0, 1] as 8x8x1 inputs."""

    Params = DataParams
    kind = "image"

    def load(self, params: DataParams, seed: int) -> DataSplits:
        from sklearn.datasets import load_digits

        bunch = load_digits()
        x = (bunch.images / 16.0).astype(np.float32)[..., np.newaxis]
        y = bunch.target.astype(np.int64)
        return stratified_split(
            x, y, params.split, seed, kind=self.kind, num_classes=10, max_samples=params.max_samples
        )
