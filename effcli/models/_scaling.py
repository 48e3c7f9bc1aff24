"""Grow knobs shared by the built-in model families: width, depth, resolution and compound scaling.

Every built-in family's Params subclasses `GrowParams`, which adds four knobs:

- `width_multiplier` w scales channels and hidden units (`scaled`, at least 1);
- `depth_multiplier` d scales how often a family's repeatable block is stacked (`repeats`: a
  block of `base` layers gets max(1, round(base * d)) of them);
- `resolution_multiplier` r resizes the input (a `Resizing` layer right after the input) to
  round(H * r) x round(W * r) for images or round(L * r) for sequences (`scaled_size`); when the
  size does not change (r = 1.0) there is no layer at all;
- `compound_phi` scales all three together the EfficientNet way (Tan & Le, 2019): depth by
  alpha**phi, width by beta**phi and resolution by gamma**phi with the paper's alpha = 1.2,
  beta = 1.1, gamma = 1.15, chosen so that alpha * beta**2 * gamma**2 ~= 2: each +1 of phi
  roughly doubles the FLOPs. These factors multiply the explicit multipliers, so
  `width_multiplier: 0.5, compound_phi: 1` means width 0.55 (`effective_multipliers`).

`repeats` and `scaled_size` round half up (2.5 -> 3), so a larger multiplier never gives a
smaller model; `scaled` keeps the survey CNN's original `int(round(...))` (exact at the widths
the survey uses). The arithmetic here is pure Python (unit-tested without TensorFlow); the few
Keras helpers import TensorFlow inside the function, like every family.
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import Field

from effcli.models.base import FamilyParams

ALPHA = 1.2  # depth base of EfficientNet's compound scaling
BETA = 1.1  # width base
GAMMA = 1.15  # resolution base


class GrowParams(FamilyParams):
    """The Grow knobs every built-in family accepts (defaults: the family's base model)."""

    width_multiplier: float = Field(
        1.0, gt=0, le=16, description="a positive scale of the filters and dense units, e.g. 0.5"
    )
    depth_multiplier: float = Field(
        1.0,
        gt=0,
        le=16,
        description="a positive scale of how often the family's repeated block is stacked, "
        "0 < d <= 16 (each block keeps at least one layer)",
    )
    resolution_multiplier: float = Field(
        1.0,
        gt=0,
        le=16,
        description="a positive scale of the input size (a Resizing layer after the input), "
        "0 < r <= 16; 1.0 adds no layer",
    )
    compound_phi: float = Field(
        0.0,
        ge=-8,
        le=8,
        description="EfficientNet compound scaling, -8 <= phi <= 8: depth x 1.2**phi, width x "
        "1.1**phi, resolution x 1.15**phi on top of the explicit multipliers (+1 ~ 2x FLOPs)",
    )

    def effective(self) -> tuple[float, float, float]:
        """(width, depth, resolution) after compound scaling."""
        return effective_multipliers(
            self.width_multiplier,
            self.depth_multiplier,
            self.resolution_multiplier,
            self.compound_phi,
        )

    def tag(self, family: str) -> str:
        """Model name: the family and every knob, non-default ones only except the width.

        With only a width set this is the name the survey CNN always had (`cnn_w0.5`).
        """
        name = f"{family}_w{self.width_multiplier:g}"
        if self.depth_multiplier != 1.0:
            name += f"_d{self.depth_multiplier:g}"
        if self.resolution_multiplier != 1.0:
            name += f"_r{self.resolution_multiplier:g}"
        if self.compound_phi != 0.0:
            name += f"_phi{self.compound_phi:g}"
        return name


def effective_multipliers(
    width: float, depth: float, resolution: float, phi: float
) -> tuple[float, float, float]:
    """(w, d, r): the explicit multipliers times EfficientNet's beta**phi, alpha**phi and
    gamma**phi."""
    return (width * BETA**phi, depth * ALPHA**phi, resolution * GAMMA**phi)


def _round_half_up(value: float) -> int:
    # A tiny epsilon so that products like 2 * 1.25 that land a hair below .5 still round up.
    return math.floor(value + 0.5 + 1e-9)


def scaled(units: int, width: float) -> int:
    """Channels at a width multiplier; never below 1."""
    return max(1, int(round(units * width)))


def repeats(base: int, depth: float) -> int:
    """How many times a block of `base` layers is stacked at a depth multiplier; never below 1."""
    return max(1, _round_half_up(base * depth))


def scaled_size(size: int, resolution: float) -> int:
    """One spatial (or sequence) dimension at a resolution multiplier; never below 1."""
    return max(1, _round_half_up(size * resolution))


def resize_images(x: Any, resolution: float) -> Any:
    """`x` (batch, H, W, C) resized by `resolution` (a `Resizing` named "resize"), or `x` itself
    when the size would not change. Sequences pass (batch, L, 1, C) and keep their width of 1."""
    from effcli._tf import keras

    height, width = int(x.shape[1]), int(x.shape[2])
    new_height = scaled_size(height, resolution)
    new_width = width if width == 1 else scaled_size(width, resolution)
    if (new_height, new_width) == (height, width):
        return x
    return keras.layers.Resizing(new_height, new_width, name="resize")(x)


def sequence_input(input_shape: tuple[int, ...], family: str) -> tuple[Any, Any]:
    """The input layer ("input") of a sequence family and a (batch, L, 1, C) view of it: the
    sequence families convolve with (k, 1) Conv2D kernels, which TF-MOT's QAT supports."""
    from effcli._tf import keras

    if len(input_shape) not in (1, 2) or min(input_shape) < 1:
        raise ValueError(
            f"the {family} family needs sequence input (L,) or (L, C); got shape {input_shape}"
        )
    channels = input_shape[1] if len(input_shape) == 2 else 1
    inputs = keras.Input(shape=input_shape, name="input")
    return inputs, keras.layers.Reshape((input_shape[0], 1, channels), name="reshape")(inputs)


def image_input(input_shape: tuple[int, ...], family: str) -> tuple[Any, Any]:
    """The input layer ("input") of an image family and a (batch, H, W, C) view of it."""
    from effcli._tf import keras

    if len(input_shape) not in (2, 3) or min(input_shape) < 1:
        raise ValueError(
            f"the {family} family needs image input (H, W, C); got shape {input_shape}"
        )
    inputs = keras.Input(shape=input_shape, name="input")
    x = inputs if len(input_shape) == 3 else keras.layers.Reshape((*input_shape, 1))(inputs)
    return inputs, x
