"""EfficientNet-B0 (Tan & Le 2019) from `tf_keras.applications`, built offline, with its own
compound scaling: `width_multiplier` and `depth_multiplier` are its width and depth coefficients
(B0: 1.0, 1.0), `compound_phi` scales both and the resolution as in the paper (effdl's grow
knobs), `resolution_multiplier` / `input_size` the input side (at least 32).

Why B0 and not EfficientNet-Lite: tf_keras ships no Lite variant (Lite drops squeeze-and-
excitation and swish for ReLU6, which quantizes better); B0 built here quantizes to full int8 and
goes through QAT with no layer left float (checked). Its input rescaling and normalization
layers (which assume 0-255 inputs) are removed: effdl's data are already scaled. At 224x224x3
and 1000 classes it has `tf_keras.applications.EfficientNetB0`'s parameters minus those 7
normalization statistics (tested).
"""

from __future__ import annotations

from typing import Any

from effcli.models._applications import ApplicationFamily, ApplicationParams
from effcli.models._rewrite import replace_layers
from effcli.models.base import families


class EfficientNetParams(ApplicationParams):
    """The grow knobs (EfficientNet's width and depth coefficients), input size, weights."""


@families.register("efficientnet_b0")
class EfficientNetB0(ApplicationFamily[EfficientNetParams]):
    Params = EfficientNetParams
    architecture = "EfficientNetB0"
    knobs = ("width_multiplier", "depth_multiplier", "resolution_multiplier", "compound_phi")

    def backbone(self, params: EfficientNetParams, x: Any, num_classes: int) -> Any:
        from effcli._tf import efficientnet_builder

        width, depth, _ = params.effective()
        model = efficientnet_builder()(
            width_coefficient=width,
            depth_coefficient=depth,
            default_size=224,
            dropout_rate=0.2,
            model_name=params.tag("efficientnet"),
            input_tensor=x,
            weights=None,
            classes=num_classes,
            classifier_activation=None,
        )
        preprocessing = [
            layer.name
            for layer in model.layers
            if type(layer).__name__ in ("Rescaling", "Normalization")
        ]
        return replace_layers(model, {name: lambda layer: [] for name in preprocessing})
