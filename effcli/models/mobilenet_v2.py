"""MobileNetV2 (Sandler et al. 2018) from `tf_keras.applications`, built offline: inverted
residual blocks of 1x1 expansion, 3x3 depthwise and 1x1 projection convolutions.

`width_multiplier` is the architecture's `alpha` (channels of every block; the 1280-channel last
conv only grows above 1.0), `resolution_multiplier` / `input_size` the input side (at least 32).
MobileNetV2 has no depth knob. At 224x224x3 with 1000 classes and width 1.0 it has exactly
`tf_keras.applications.MobileNetV2`'s 3,538,984 parameters (tested).
"""

from __future__ import annotations

from typing import Any

from effcli.models._applications import ApplicationFamily, ApplicationParams
from effcli.models.base import families


class MobileNetV2Params(ApplicationParams):
    """The grow knobs (width = alpha), the input size and a weights file."""


@families.register("mobilenet_v2")
class MobileNetV2(ApplicationFamily[MobileNetV2Params]):
    Params = MobileNetV2Params
    architecture = "MobileNetV2"

    def backbone(self, params: MobileNetV2Params, x: Any, num_classes: int) -> Any:
        from effcli._tf import keras

        width, _, _ = params.effective()
        return keras.applications.MobileNetV2(
            input_tensor=x,
            alpha=width,
            weights=None,
            classes=num_classes,
            classifier_activation=None,
        )
