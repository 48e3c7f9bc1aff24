"""The survey's CIFAR-10 CNN ("Efficient Deep Learning", Menghani), with the Grow knobs.

Three blocks of two 3x3 convolutions (each followed by BatchNorm) and a 2x2 max-pool; filters
32, 64*w, 128*w (the first block is not scaled), then Dense(512*w) and a logits head. On 32x32x3
with 10 classes this gives the survey's counts: 1,343,018 params at w=1.0 and 350,058 at w=0.5.
Activations are fused (`activation='relu'`) so QAT and the preserving schemes see every kernel.

Grow knobs (see `_scaling`): `depth_multiplier` d gives each block max(1, round(2*d)) convs
(named conv{block}_{i} / bn{block}_{i}), `resolution_multiplier` resizes the input first, and
`compound_phi` scales all three EfficientNet-style. At the defaults the model is the survey's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from effcli.models._scaling import GrowParams, image_input, repeats, resize_images, scaled
from effcli.models.base import ModelFamily, families

if TYPE_CHECKING:
    from effcli._tf import keras

__all__ = ["CNNParams", "SurveyCNN", "build_survey_cnn", "scaled"]


class CNNParams(GrowParams):
    """The survey CNN's arguments: only the Grow knobs."""


CONVS_PER_BLOCK = 2  # the survey's block: two 3x3 convs, then a pool


def build_survey_cnn(
    params: GrowParams,
    input_shape: tuple[int, ...],
    num_classes: int,
    family: str,
    separable: bool = False,
) -> keras.Model:
    """The survey CNN; with `separable`, every 3x3 conv after the stem is depthwise + 1x1.

    The separable form is two plain layers (DepthwiseConv2D, then a 1x1 Conv2D with the fused
    ReLU), not keras SeparableConv2D, so pruning, clustering, low-rank and QAT reach both kernels.
    """
    from effcli._tf import keras

    w, d, r = params.effective()
    inputs, x = image_input(input_shape, family)
    x = resize_images(x, r)
    height, width = int(x.shape[1]), int(x.shape[2])
    convs = repeats(CONVS_PER_BLOCK, d)
    for block, filters in enumerate([32, scaled(64, w), scaled(128, w)], start=1):
        for conv in range(1, convs + 1):
            x = _conv3x3(x, filters, f"{block}_{conv}", separable and (block, conv) != (1, 1))
            x = keras.layers.BatchNormalization(name=f"bn{block}_{conv}")(x)
        # Pool only while there is something to pool, so tiny inputs (8x8 digits) still fit.
        if min(height, width) >= 2:
            x = keras.layers.MaxPooling2D(2, name=f"pool{block}")(x)
            height, width = height // 2, width // 2
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(scaled(512, w), activation="relu", name="dense")(x)
    outputs = keras.layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, outputs, name=params.tag(family))


def _conv3x3(x: Any, filters: int, suffix: str, separable: bool) -> Any:
    """conv{suffix}: a 3x3 Conv2D, or depthwise 3x3 (dwconv{suffix}) + 1x1 Conv2D when separable."""
    from effcli._tf import keras

    if separable:
        # No bias on the depthwise half: the 1x1 conv right after it (linear, no activation in
        # between) absorbs it, exactly as in keras SeparableConv2D.
        x = keras.layers.DepthwiseConv2D(3, padding="same", use_bias=False, name=f"dwconv{suffix}")(
            x
        )
        return keras.layers.Conv2D(filters, 1, activation="relu", name=f"conv{suffix}")(x)
    return keras.layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"conv{suffix}")(
        x
    )


@families.register("cnn")
class SurveyCNN(ModelFamily[CNNParams]):
    Params = CNNParams
    data_kinds = ("image",)

    def build(
        self, params: CNNParams, input_shape: tuple[int, ...], num_classes: int
    ) -> keras.Model:
        return build_survey_cnn(params, input_shape, num_classes, "cnn")
