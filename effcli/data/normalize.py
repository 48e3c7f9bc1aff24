"""Normalization described in the recipe: `data.normalize`, with statistics from train only.

Sources already give float32 inputs (uint8 scaled to [0, 1], CSV features standardized). A
recipe can ask for more: `standardize` (zero mean, unit variance) or `scale` (train min/max
mapped to a range), per channel (the last axis: image or sequence channels, table features) or
over all values. The statistics come from the training split only, so nothing about the
validation or test data leaks into training; they are written to split.json so a deployment
can apply the same transform before calling the exported model, which takes normalized inputs.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

import numpy as np
from pydantic import Field, model_validator

from effcli.recipe.schema import StrictModel

# Below this spread a channel is constant: it is only shifted, never divided by ~0.
_FLAT = 1e-7


class NormalizeSpec(StrictModel):
    """How inputs are normalized; `normalize: standardize` is short for `{mode: standardize}`."""

    mode: Literal["standardize", "scale"] = Field(
        description="standardize: (x - mean) / std | scale: train [min, max] mapped to `range`"
    )
    per: Literal["channel", "global"] = Field(
        "channel",
        description="channel: statistics per last-axis channel (image/sequence channels, table "
        "features) | global: one statistic over all values",
    )
    range: tuple[float, float] = Field(
        (0.0, 1.0), description="scale: the [low, high] the training min/max map to"
    )

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"mode": value}
        if not isinstance(value, dict):
            raise ValueError(
                f"give standardize, scale or a mapping {{mode, per, range}} (got {value!r})"
            )
        return value

    @model_validator(mode="after")
    def _range_increases(self) -> NormalizeSpec:
        low, high = self.range
        if not low < high:
            raise ValueError(f"range must be [low, high] with low < high (got [{low:g}, {high:g}])")
        return self


def _reduce_axes(x: np.ndarray, per: str, kind: str) -> tuple[int, ...] | None:
    """Axes to reduce over: all but the channel axis per channel, all of them for global.
    Images (N, H, W) and sequences (N, L) have a single, implicit channel."""
    full_rank = {"image": 4, "sequence": 3}.get(kind, x.ndim)
    if per == "global" or x.ndim < full_rank or x.ndim < 2:
        return None
    return tuple(range(x.ndim - 1))


def fit_normalization(x_train: np.ndarray, spec: NormalizeSpec, kind: str) -> dict[str, Any]:
    """The statistics of `spec` measured on the training inputs of `kind` data (JSON-ready)."""
    axes = _reduce_axes(x_train, spec.per, kind)
    values = x_train.astype(np.float64, copy=False)
    if spec.mode == "standardize":
        mean, std = values.mean(axis=axes), values.std(axis=axes)
        offset, divisor = mean, np.where(std > _FLAT, std, 1.0)
        stats = {"mean": np.atleast_1d(mean).tolist(), "std": np.atleast_1d(std).tolist()}
    else:
        low, high = values.min(axis=axes), values.max(axis=axes)
        target_low, target_high = spec.range
        spread = high - low
        divisor = np.where(spread > _FLAT, spread / (target_high - target_low), 1.0)
        offset = low - target_low * divisor
        stats = {"min": np.atleast_1d(low).tolist(), "max": np.atleast_1d(high).tolist()}
    return {
        **spec.model_dump(mode="json"),
        **stats,
        # x_normalized = (x - offset) / divisor, channel-wise along the last axis.
        "offset": np.atleast_1d(offset).tolist(),
        "divisor": np.atleast_1d(divisor).tolist(),
    }


def apply_normalization(x: np.ndarray, record: dict[str, Any]) -> np.ndarray:
    """`x` normalized with a record from `fit_normalization` (float32)."""
    offset = np.asarray(record["offset"], dtype=np.float64)
    divisor = np.asarray(record["divisor"], dtype=np.float64)
    if offset.size == 1:
        offset, divisor = offset[0], divisor[0]
    return ((x.astype(np.float64, copy=False) - offset) / divisor).astype(np.float32)


def normalize_splits(splits: Any, spec: NormalizeSpec) -> Any:
    """`splits` (a DataSplits) with every split normalized by statistics of its train split."""
    record = fit_normalization(splits.x_train, spec, splits.kind)
    return dataclasses.replace(
        splits,
        x_train=apply_normalization(splits.x_train, record),
        x_val=apply_normalization(splits.x_val, record),
        x_test=apply_normalization(splits.x_test, record),
        split={**splits.split, "normalize": record},
    )
