"""A Transformer encoder for sequences (e.g. MNIST-1D): segments of `patch_size` steps embedded
by a strided convolution (a (k, 1) Conv2D on (L, 1, C), like the conv1d family, which TF-MOT's
QAT supports), a positional depthwise convolution, pre-norm encoder blocks, global average
pooling and a logits head. Sizes and knobs: see effcli.models._transformer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field

from effcli.models._scaling import resize_images, sequence_input
from effcli.models._transformer import TransformerParams, classifier, embedding_width
from effcli.models.base import ModelFamily, families

if TYPE_CHECKING:
    from effcli._tf import keras


class SequenceTransformerParams(TransformerParams):
    patch_size: int = Field(4, ge=1, le=1024, description="steps per token")


@families.register("transformer")
class SequenceTransformer(ModelFamily[SequenceTransformerParams]):
    Params = SequenceTransformerParams
    data_kinds = ("sequence",)

    def build(
        self, params: SequenceTransformerParams, input_shape: tuple[int, ...], num_classes: int
    ) -> keras.Model:
        from effcli._tf import keras

        inputs, x = sequence_input(input_shape, "transformer")
        width, _, resolution = params.effective()
        x = resize_images(x, resolution)
        patch = params.patch_size
        if int(x.shape[1]) < patch:
            raise ValueError(
                f"patch_size {patch} is longer than the {int(x.shape[1])}-step sequence; use a "
                "smaller patch_size"
            )
        dim = embedding_width(params, width)
        x = keras.layers.Conv2D(dim, (patch, 1), strides=(patch, 1), name="patch_embed")(x)
        return classifier(inputs, x, params, num_classes, "transformer")
