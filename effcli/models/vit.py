"""A Vision Transformer (Dosovitskiy et al. 2021) small enough to train here: square patches
embedded by a strided convolution, a positional depthwise convolution, pre-norm encoder blocks
with multi-head self-attention, global average pooling (no class token) and a logits head.

Sizes and knobs: see effcli.models._transformer. `patch_size` must divide into the (resized)
input at least once per side; 8x8 digits with patch 2 give 16 tokens.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field

from effcli.models._scaling import image_input, resize_images
from effcli.models._transformer import TransformerParams, classifier, embedding_width
from effcli.models.base import ModelFamily, families

if TYPE_CHECKING:
    from effcli._tf import keras


class ViTParams(TransformerParams):
    patch_size: int = Field(2, ge=1, le=64, description="side of a square patch in pixels")


@families.register("vit")
class ViT(ModelFamily[ViTParams]):
    Params = ViTParams
    data_kinds = ("image",)

    def build(
        self, params: ViTParams, input_shape: tuple[int, ...], num_classes: int
    ) -> keras.Model:
        from effcli._tf import keras

        inputs, x = image_input(input_shape, "vit")
        width, _, resolution = params.effective()
        x = resize_images(x, resolution)
        height, side = int(x.shape[1]), int(x.shape[2])
        patch = params.patch_size
        if height < patch or side < patch:
            raise ValueError(
                f"patch_size {patch} does not fit {height}x{side} inputs; use patch_size <= "
                f"{min(height, side)} or a larger resolution_multiplier"
            )
        dim = embedding_width(params, width)
        x = keras.layers.Conv2D(dim, patch, strides=patch, name="patch_embed")(x)
        return classifier(inputs, x, params, num_classes, "vit")
