"""The ModelFamily interface and its registry."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from effcli.recipe.schema import StrictModel
from effcli.registry import Registry

if TYPE_CHECKING:
    from effcli._tf import keras


class FamilyParams(StrictModel):
    """Base of every family's argument schema."""


FP = TypeVar("FP", bound=FamilyParams)


class ModelFamily(ABC, Generic[FP]):
    """Builds an uncompiled tf_keras Functional model that outputs logits
    (`class SurveyCNN(ModelFamily[CNNParams])`)."""

    name: ClassVar[str]
    Params: ClassVar[type[FamilyParams]] = FamilyParams
    data_kinds: ClassVar[tuple[str, ...]] = ("image",)

    @classmethod
    def check(cls, params: FP) -> Iterable[tuple[tuple[Any, ...], str]]:
        """Plan-time problems as (location under `model`, message); none by default."""
        return ()

    @classmethod
    def fingerprint(cls, params: FP) -> dict[str, Any]:
        """What decides the model besides its arguments (a file's content hash), for node keys."""
        return {}

    @abstractmethod
    def build(self, params: FP, input_shape: tuple[int, ...], num_classes: int) -> keras.Model:
        """The model for this input shape and class count (logits, no softmax)."""


families: Registry[ModelFamily[Any]] = Registry("model family", "effcli.models", ModelFamily)
