"""The survey CNN with depthwise-separable convolutions: the survey's efficient-layer example.

Same topology, knobs and layer names as `cnn`, but every 3x3 Conv2D except the stem (conv1_1,
which sees only 1-3 input channels, where a separable conv saves nothing) becomes a 3x3
DepthwiseConv2D (dwconv{block}_{i}, no bias) followed by a 1x1 Conv2D with the fused ReLU
(conv{block}_{i}): 3*3*c + c*f weights and MACs per position instead of 3*3*c*f, close to
9x fewer for wide layers. They are two plain layers rather than keras SeparableConv2D so TF-MOT
pruning, clustering and QAT, and effdl's low-rank stage (which factorizes 1x1 convs), apply to
them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from effcli.models._scaling import GrowParams
from effcli.models.base import ModelFamily, families
from effcli.models.cnn import build_survey_cnn

if TYPE_CHECKING:
    from effcli._tf import keras


class SeparableCNNParams(GrowParams):
    """The separable CNN's arguments: only the Grow knobs."""


@families.register("separable_cnn")
class SeparableCNN(ModelFamily[SeparableCNNParams]):
    Params = SeparableCNNParams
    data_kinds = ("image",)

    def build(
        self, params: SeparableCNNParams, input_shape: tuple[int, ...], num_classes: int
    ) -> keras.Model:
        return build_survey_cnn(params, input_shape, num_classes, "separable_cnn", separable=True)
