"""The Grow knobs' arithmetic (pure Python, no TensorFlow) and every family's knob schema."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from effcli.models._scaling import (
    ALPHA,
    BETA,
    GAMMA,
    GrowParams,
    effective_multipliers,
    repeats,
    scaled,
    scaled_size,
)
from effcli.models.base import families

KNOBS = ("width_multiplier", "depth_multiplier", "resolution_multiplier", "compound_phi")


def test_phi_zero_leaves_the_explicit_multipliers_alone() -> None:
    assert effective_multipliers(1.0, 1.0, 1.0, 0) == (1.0, 1.0, 1.0)
    assert effective_multipliers(0.5, 2.0, 1.5, 0) == (0.5, 2.0, 1.5)


def test_phi_one_uses_the_efficientnet_constants_times_the_explicit_multipliers() -> None:
    assert effective_multipliers(1.0, 1.0, 1.0, 1) == pytest.approx((1.1, 1.2, 1.15))
    assert effective_multipliers(0.5, 2.0, 0.5, 1) == pytest.approx((0.55, 2.4, 0.575))
    assert effective_multipliers(1.0, 1.0, 1.0, 2) == pytest.approx((1.21, 1.44, 1.3225))
    assert effective_multipliers(1.0, 1.0, 1.0, -1) == pytest.approx((1 / 1.1, 1 / 1.2, 1 / 1.15))


def test_each_step_of_phi_about_doubles_the_flops() -> None:
    """FLOPs ~ depth * width^2 * resolution^2: the paper picked alpha * beta^2 * gamma^2 ~= 2."""
    assert abs(ALPHA * BETA**2 * GAMMA**2 - 2.0) < 0.1  # 1.92
    w, d, r = effective_multipliers(1.0, 1.0, 1.0, 3)
    assert d * w**2 * r**2 == pytest.approx((ALPHA * BETA**2 * GAMMA**2) ** 3)


def test_scaled_keeps_the_survey_cnn_rounding_and_never_reaches_zero() -> None:
    assert [scaled(64, 0.5), scaled(128, 0.5), scaled(512, 0.25)] == [32, 64, 128]
    assert scaled(64, 1.1) == 70  # 70.4
    assert scaled(10, 0.25) == 2  # 2.5 -> 2: Python's round, as the survey CNN always had
    assert scaled(32, 0.001) == 1


@pytest.mark.parametrize(
    ("base", "depth", "expected"),
    [
        (2, 1.0, 2),
        (2, 0.5, 1),
        (2, 0.1, 1),
        (2, 1.2, 2),
        (2, 1.25, 3),
        (2, 1.5, 3),
        (2, 2.0, 4),
        (1, 1.2, 1),
        (1, 1.44, 1),
        (1, 1.5, 2),
        (1, 2.5, 3),
        (1, 0.01, 1),
        (3, 1 / 3, 1),
    ],
)
def test_repeats_rounds_half_up_and_never_below_one(base: int, depth: float, expected: int) -> None:
    assert repeats(base, depth) == expected


@pytest.mark.parametrize(
    ("size", "r", "expected"),
    [
        (32, 1.0, 32),
        (32, 1.15, 37),
        (8, 1.5, 12),
        (40, 0.5, 20),
        (5, 0.5, 3),
        (8, 0.01, 1),
        (7, 1 / 7, 1),
    ],
)
def test_scaled_size_rounds_half_up_and_never_below_one(size: int, r: float, expected: int) -> None:
    assert scaled_size(size, r) == expected


def test_larger_multipliers_never_give_smaller_sizes() -> None:
    steps = [i / 100 for i in range(1, 400)]
    assert all(repeats(2, a) <= repeats(2, b) for a, b in zip(steps, steps[1:], strict=False))
    assert all(
        scaled_size(13, a) <= scaled_size(13, b) for a, b in zip(steps, steps[1:], strict=False)
    )


def test_params_default_to_the_base_model_and_name_it() -> None:
    params = GrowParams()
    assert params.effective() == (1.0, 1.0, 1.0)
    assert params.tag("cnn") == "cnn_w1"
    assert GrowParams(width_multiplier=0.5).tag("cnn") == "cnn_w0.5"
    full = GrowParams(
        width_multiplier=0.5, depth_multiplier=2, resolution_multiplier=1.5, compound_phi=1
    )
    assert full.tag("mlp") == "mlp_w0.5_d2_r1.5_phi1"
    assert full.effective() == pytest.approx((0.55, 2.4, 1.725))


@pytest.mark.parametrize(
    "bad",
    [
        {"width_multiplier": 0},
        {"width_multiplier": 17},
        {"depth_multiplier": 0},
        {"depth_multiplier": -1},
        {"resolution_multiplier": 0},
        {"depth_multiplier": 17},
        {"resolution_multiplier": 17},
        {"compound_phi": 9},
        {"compound_phi": -9},
        {"depth": 2},  # unknown keys are errors
    ],
)
def test_out_of_range_knobs_are_refused(bad: dict[str, float]) -> None:
    with pytest.raises(ValidationError):
        GrowParams(**bad)


@pytest.mark.parametrize("name", ["cnn", "separable_cnn", "mlp", "conv1d"])
def test_every_builtin_family_has_the_grow_knobs_with_descriptions(name: str) -> None:
    fields = families.get(name).Params.model_fields
    for knob in KNOBS:
        assert knob in fields, f"{name} lacks {knob}"
        assert fields[knob].description
    assert families.get(name).Params().model_dump()["compound_phi"] == 0.0


def test_family_data_kinds() -> None:
    assert families.get("mlp").data_kinds == ("tabular", "image", "sequence")
    assert families.get("conv1d").data_kinds == ("sequence",)
    assert families.get("separable_cnn").data_kinds == ("image",)


def test_mlp_schema() -> None:
    params = families.get("mlp").Params
    assert params().hidden == (256, 128) and params().dropout == 0.0
    assert params.model_validate({"hidden": [64, 32, 16], "dropout": 0.2}).hidden == (64, 32, 16)
    for bad in ({"hidden": [0]}, {"dropout": 1.0}, {"dropout": -0.1}):
        with pytest.raises(ValidationError):
            params.model_validate(bad)
