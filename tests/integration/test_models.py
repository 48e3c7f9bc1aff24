"""The built-in model family matches the survey's parameter counts and adapts to input shapes."""

from __future__ import annotations

import pytest

from effcli.models.base import families

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(
    ("width", "expected"),
    [(1.0, 1_343_018), (0.5, 350_058)],
)
def test_cnn_has_the_survey_parameter_counts(width: float, expected: int) -> None:
    family = families.get("cnn")
    model = family().build(family.Params(width_multiplier=width), (32, 32, 3), 10)
    assert model.count_params() == expected


@pytest.mark.parametrize("shape", [(8, 8, 1), (28, 28), (4, 4, 1), (64, 48, 3)])
def test_cnn_adapts_to_input_shape(shape: tuple[int, ...]) -> None:
    family = families.get("cnn")
    model = family().build(family.Params(width_multiplier=0.25), shape, 7)
    assert model.output_shape == (None, 7)
    assert model.input_shape == (None, *shape)


def test_cnn_uses_fused_activations_only() -> None:
    """Separate ReLU layers would break QAT preservation schemes (see docs)."""
    family = families.get("cnn")
    model = family().build(family.Params(), (8, 8, 1), 10)
    assert not [layer for layer in model.layers if type(layer).__name__ in ("ReLU", "Activation")]


def test_cnn_refuses_flat_input() -> None:
    family = families.get("cnn")
    with pytest.raises(ValueError, match="needs image input"):
        family().build(family.Params(), (64,), 10)
