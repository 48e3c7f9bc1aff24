"""A 1-D CNN for sequences, (L,) or (L, C), built from Conv2D so TF-MOT quantizes every kernel.

Three blocks of a k=5 convolution (fused ReLU) + BatchNorm, each followed by a max-pool of 2
while the length is at least 2 (so L = 40, the MNIST-1D length, and L = 8 both fit); filters
32, 64, 128 (all times the width multiplier), then Flatten, Dense(256*w) and a logits head.

Why Conv2D: TF-MOT 0.8.1's QAT registry does not support keras Conv1D
(`Default8BitQuantizeRegistry().supports(Conv1D)` is False), so QAT would leave every conv
float. The input is therefore reshaped to (L, 1, C) (layer "reshape") and each 1-D conv is a
Conv2D with kernel (5, 1) (pools are (2, 1)): the same arithmetic, and pruning, clustering, QAT
and int8 export reach all kernels.

Grow knobs (see `_scaling`): `depth_multiplier` d stacks max(1, round(d)) convs per block
(conv{block}_{i} / bn{block}_{i}), `resolution_multiplier` resizes the length to round(L*r)
(layer "resize", after the reshape), `compound_phi` scales all three EfficientNet-style.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from effcli.models._scaling import GrowParams, repeats, resize_images, scaled, sequence_input
from effcli.models.base import ModelFamily, families

if TYPE_CHECKING:
    from effcli._tf import keras

KERNEL = 5
CONVS_PER_BLOCK = 1


class Conv1DParams(GrowParams):
    """The 1-D CNN's arguments: only the Grow knobs."""


@families.register("conv1d")
class Conv1DNet(ModelFamily[Conv1DParams]):
    Params = Conv1DParams
    data_kinds = ("sequence",)

    def build(
        self, params: Conv1DParams, input_shape: tuple[int, ...], num_classes: int
    ) -> keras.Model:
        from effcli._tf import keras

        inputs, x = sequence_input(input_shape, "conv1d")
        w, d, r = params.effective()
        x = resize_images(x, r)
        length = int(x.shape[1])
        convs = repeats(CONVS_PER_BLOCK, d)
        for block, filters in enumerate([scaled(32, w), scaled(64, w), scaled(128, w)], start=1):
            for conv in range(1, convs + 1):
                x = keras.layers.Conv2D(
                    filters,
                    (KERNEL, 1),
                    padding="same",
                    activation="relu",
                    name=f"conv{block}_{conv}",
                )(x)
                x = keras.layers.BatchNormalization(name=f"bn{block}_{conv}")(x)
            if length >= 2:
                x = keras.layers.MaxPooling2D((2, 1), name=f"pool{block}")(x)
                length //= 2
        x = keras.layers.Flatten(name="flatten")(x)
        x = keras.layers.Dense(scaled(256, w), activation="relu", name="dense")(x)
        outputs = keras.layers.Dense(num_classes, name="logits")(x)
        return keras.Model(inputs, outputs, name=params.tag("conv1d"))
