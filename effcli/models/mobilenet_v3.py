"""MobileNetV3 Small and Large (Howard et al. 2019) from `tf_keras.applications`, built offline:
inverted residuals with squeeze-and-excitation and hard-swish, found by architecture search.

`width_multiplier` is `alpha`; the input is resized to at least 32x32. The built-in input
rescaling is left out (`include_preprocessing=False`): effdl's data are already scaled, and a
Rescaling layer would block QAT. Parameter counts at 224x224x3 / 1000 classes equal
`tf_keras.applications`' own (tested). QAT: TF-MOT 0.8.1 cannot wrap MobileNetV3's hard-swish
(a TFOpLambda before a ZeroPadding2D makes it build a rank-5 pad); the quantize stage refuses
it in one line; post-training int8 works.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field

from effcli.models._applications import ApplicationFamily, ApplicationParams
from effcli.models.base import families


class MobileNetV3Params(ApplicationParams):
    """The grow knobs (width = alpha), input size, weights file, and the minimalistic variant."""

    minimalistic: bool = Field(
        False, description="true: no squeeze-and-excitation, ReLU instead of hard-swish, 3x3 only"
    )


class _MobileNetV3(ApplicationFamily[MobileNetV3Params]):
    Params = MobileNetV3Params
    size: ClassVar[str]

    def backbone(self, params: MobileNetV3Params, x: Any, num_classes: int) -> Any:
        from effcli._tf import keras

        build = getattr(keras.applications, f"MobileNetV3{self.size}")
        width, _, _ = params.effective()
        return build(
            input_tensor=x,
            alpha=width,
            minimalistic=params.minimalistic,
            weights=None,
            classes=num_classes,
            classifier_activation=None,
            include_preprocessing=False,
        )


@families.register("mobilenet_v3_small")
class MobileNetV3Small(_MobileNetV3):
    size = "Small"
    architecture = "MobileNetV3Small"


@families.register("mobilenet_v3_large")
class MobileNetV3Large(_MobileNetV3):
    size = "Large"
    architecture = "MobileNetV3Large"
