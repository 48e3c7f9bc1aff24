"""A multilayer perceptron for any input: tabular rows, images or sequences, flattened.

Hidden Dense layers (`hidden`, default [256, 128], each scaled by the width multiplier) with the
ReLU fused into each Dense (QAT and the preserving schemes see every kernel), optional Dropout
after each, and a logits head. Grow knobs (see `_scaling`):

- `depth_multiplier` d stacks each hidden width max(1, round(d)) times, keeping the funnel:
  [256, 128] at d=2 is 256, 256, 128, 128. Layers are named dense{i}_{j} (width i, copy j).
- `resolution_multiplier` resizes the input before flattening: (H, W, C) images in H and W,
  2-D inputs are read as (L, C) sequences and resized in L only (image datasets in effdl give
  (H, W, C)). It does not apply to 1-D (tabular) input: an explicit multiplier is refused there
  and compound scaling (`compound_phi`) scales only width and depth.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from pydantic import Field

from effcli.models._scaling import GrowParams, repeats, resize_images, scaled
from effcli.models.base import ModelFamily, families

if TYPE_CHECKING:
    from effcli._tf import keras


class MLPParams(GrowParams):
    """The MLP's arguments: the Grow knobs, the hidden widths and dropout."""

    hidden: tuple[Annotated[int, Field(ge=1, le=65536)], ...] = Field(
        (256, 128),
        max_length=64,
        description="hidden Dense widths before the width multiplier, e.g. [256, 128] "
        "([] is a linear model)",
    )
    dropout: float = Field(
        0.0, ge=0, lt=1, description="dropout rate after each hidden layer, 0 <= p < 1 (0: none)"
    )


@families.register("mlp")
class MLP(ModelFamily[MLPParams]):
    Params = MLPParams
    data_kinds = ("tabular", "image", "sequence")

    def build(
        self, params: MLPParams, input_shape: tuple[int, ...], num_classes: int
    ) -> keras.Model:
        from effcli._tf import keras

        if not input_shape or min(input_shape) < 1:
            raise ValueError(f"the mlp family needs a non-empty input shape; got {input_shape}")
        w, d, r = params.effective()
        if params.resolution_multiplier != 1.0 and len(input_shape) not in (2, 3):
            raise ValueError(
                f"resolution_multiplier needs image (H, W, C) or sequence (L, C) input; input "
                f"shape {input_shape} has no resolution to scale (e.g. tabular data): drop it"
            )
        inputs = keras.Input(shape=input_shape, name="input")
        x = inputs
        if len(input_shape) == 2:  # (L, C): resize along L only
            x = keras.layers.Reshape((input_shape[0], 1, input_shape[1]), name="reshape")(x)
            x = resize_images(x, r)
        elif len(input_shape) == 3:
            x = resize_images(x, r)
        x = keras.layers.Flatten(name="flatten")(x)
        copies = repeats(1, d)
        for i, units in enumerate(params.hidden, start=1):
            for j in range(1, copies + 1):
                x = keras.layers.Dense(scaled(units, w), activation="relu", name=f"dense{i}_{j}")(x)
                if params.dropout > 0:
                    x = keras.layers.Dropout(params.dropout, name=f"dropout{i}_{j}")(x)
        outputs = keras.layers.Dense(num_classes, name="logits")(x)
        return keras.Model(inputs, outputs, name=params.tag("mlp"))
