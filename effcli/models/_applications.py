"""What the families built from `tf_keras.applications` share (MobileNetV2, MobileNetV3,
EfficientNet): offline construction (`weights=None`), logits heads, the grow knobs mapped to the
architecture's own, small inputs resized up, and weights users already have, loaded from disk.

The backbone is built on the family's input tensor (`input_tensor=`), so the model is one flat
graph (TF-MOT refuses nested models). `model: {weights: file.h5}` loads a weights file by layer
name (`_weights.py`: only the head and the stem may differ in shape): it is never downloaded, and
its hash is part of the node key.
"""

from __future__ import annotations

import math
from abc import abstractmethod
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from pydantic import Field

from effcli.models._scaling import GrowParams, image_input
from effcli.models._weights import load_by_name
from effcli.models.base import ModelFamily
from effcli.models.user import file_digest

if TYPE_CHECKING:
    from effcli._tf import keras

WEIGHT_SUFFIXES = (".h5", ".hdf5")


class ApplicationParams(GrowParams):
    """The grow knobs, a square input size, and a weights file (set by `model.weights`)."""

    input_size: int | None = Field(
        None,
        ge=8,
        le=2048,
        description="resize inputs to this square size first, e.g. 32 (the architecture's "
        "minimum) for 8x8 digits; default: the data's size times resolution_multiplier",
    )
    weights: str | None = Field(
        None, description="a weights file (.h5) loaded by layer name; set it as model.weights"
    )
    batchnorm_momentum: float = Field(
        0.9,
        gt=0,
        lt=1,
        description="momentum of every BatchNorm's moving statistics, 0 < m < 1 (PyTorch's "
        "default; MobileNet's own 0.999, and 0.99, left MobileNetV2 at chance on digits)",
    )


P = TypeVar("P", bound=ApplicationParams)


class ApplicationFamily(ModelFamily[P]):
    """A Keras Applications architecture as an effdl family; subclasses build the backbone."""

    data_kinds = ("image",)
    min_size: ClassVar[int] = 32  # smallest input side the architecture builds at
    knobs: ClassVar[tuple[str, ...]] = ("width_multiplier", "resolution_multiplier")
    architecture: ClassVar[str]  # the Keras Applications name, for messages

    @classmethod
    def check(cls, params: P) -> Iterable[tuple[tuple[Any, ...], str]]:
        defaults = ApplicationParams()
        for knob in ("depth_multiplier", "compound_phi"):
            if knob not in cls.knobs and getattr(params, knob) != getattr(defaults, knob):
                yield (
                    ("args", knob),
                    f"{cls.architecture} has no {knob.split('_')[0]} knob; use "
                    f"{' or '.join(cls.knobs)} (or the efficientnet_b0 family, which has all)",
                )
        if params.input_size is not None and params.input_size < cls.min_size:
            yield (
                ("args", "input_size"),
                f"{cls.architecture} builds at {cls.min_size}x{cls.min_size} or larger (got "
                f"{params.input_size}); set input_size >= {cls.min_size}",
            )
        if params.weights is not None:
            path = Path(params.weights)
            if not path.is_file():
                yield ("weights",), f"no weights file at {path}; put it there or fix the path"
            elif path.suffix.lower() not in WEIGHT_SUFFIXES:
                yield (
                    ("weights",),
                    f"{path.name}: load-by-name needs an HDF5 weights file (.h5); save one "
                    "with model.save_weights('weights.h5')",
                )

    @classmethod
    def fingerprint(cls, params: P) -> dict[str, Any]:
        if params.weights is None or not Path(params.weights).is_file():
            return {}
        return {"weights_sha256": file_digest(Path(params.weights))}

    @abstractmethod
    def backbone(self, params: P, x: Any, num_classes: int) -> Any:
        """The Keras Applications model built on tensor `x`, with a logits head."""

    def build(self, params: P, input_shape: tuple[int, ...], num_classes: int) -> keras.Model:
        from effcli._tf import keras

        inputs, x = image_input(input_shape, self.name)
        height, width = input_shape[:2]
        _, _, resolution = params.effective()
        size = params.input_size or math.floor(max(height, width) * resolution + 0.5)
        if size < self.min_size:
            need = math.ceil(self.min_size / max(height, width))
            raise ValueError(
                f"{height}x{width} inputs are smaller than {self.architecture} builds at "
                f"({self.min_size}x{self.min_size}); set model.args.input_size: "
                f"{self.min_size} (or resolution_multiplier: {need})"
            )
        if (size, size) != (height, width):
            x = keras.layers.Resizing(size, size, name="resize")(x)
        backbone = self.backbone(params, x, num_classes)  # built on x: inputs are ours (or a copy)
        model = keras.Model(backbone.inputs, backbone.outputs, name=params.tag(self.name))
        for layer in model.layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.momentum = params.batchnorm_momentum
        if params.weights is not None:
            load_by_name(model, Path(params.weights))
        return model
