"""The survey's CIFAR-10 CNN ("Efficient Deep Learning", Menghani), scaled by a width multiplier.

Three blocks of two 3x3 convolutions (each followed by BatchNorm) and a 2x2 max-pool; filters
32, 64*w, 128*w (the first block is not scaled), then Dense(512*w) and a logits head. On 32x32x3
with 10 classes this gives the survey's counts: 1,343,018 params at w=1.0 and 350,058 at w=0.5.
Activations are fused (`activation='relu'`) so QAT and the preserving schemes see every kernel.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field

from effcli.models.base import FamilyParams, ModelFamily, families

if TYPE_CHECKING:
    from effcli._tf import keras


class CNNParams(FamilyParams):
    width_multiplier: float = Field(
        1.0, gt=0, le=16, description="a positive scale of the filters and dense units, e.g. 0.5"
    )


def scaled(units: int, width: float) -> int:
    """Channels at a width multiplier; never below 1."""
    return max(1, int(round(units * width)))


@families.register("cnn")
class SurveyCNN(ModelFamily):
    Params = CNNParams
    data_kinds = ("image",)

    def build(
        self, params: CNNParams, input_shape: tuple[int, ...], num_classes: int
    ) -> keras.Model:
        from effcli._tf import keras

        if len(input_shape) not in (2, 3):
            raise ValueError(f"the cnn family needs image input (H, W, C); got shape {input_shape}")
        w = params.width_multiplier
        inputs = keras.Input(shape=input_shape, name="input")
        x = inputs if len(input_shape) == 3 else keras.layers.Reshape((*input_shape, 1))(inputs)
        height, width = int(x.shape[1]), int(x.shape[2])
        for block, filters in enumerate([32, scaled(64, w), scaled(128, w)], start=1):
            for conv in (1, 2):
                x = keras.layers.Conv2D(
                    filters, 3, padding="same", activation="relu", name=f"conv{block}_{conv}"
                )(x)
                x = keras.layers.BatchNormalization(name=f"bn{block}_{conv}")(x)
            # Pool only while there is something to pool, so tiny inputs (8x8 digits) still fit.
            if min(height, width) >= 2:
                x = keras.layers.MaxPooling2D(2, name=f"pool{block}")(x)
                height, width = height // 2, width // 2
        x = keras.layers.Flatten(name="flatten")(x)
        x = keras.layers.Dense(scaled(512, w), activation="relu", name="dense")(x)
        outputs = keras.layers.Dense(num_classes, name="logits")(x)
        return keras.Model(inputs, outputs, name=f"cnn_w{w:g}")
