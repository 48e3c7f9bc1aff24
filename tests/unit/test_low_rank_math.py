"""Truncated-SVD rank choice and factorization (numpy only, no TensorFlow)."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from effcli.stages.low_rank import (
    LowRankParams,
    choose_rank,
    energy_kept,
    factorize,
    factorized_params,
)


def test_rank_from_energy_on_a_known_spectrum() -> None:
    values = np.array([3.0, 2.0, 1.0, 0.0])  # energies 9, 4, 1, 0 of 14
    assert choose_rank(values, None, 9 / 14) == 1
    assert choose_rank(values, None, 9 / 14 + 1e-6) == 2
    assert choose_rank(values, None, 13 / 14) == 2
    assert choose_rank(values, None, 1.0) == 3
    assert energy_kept(values, 2) == pytest.approx(13 / 14)


def test_fixed_rank_is_capped_at_full_rank() -> None:
    values = np.array([5.0, 1.0])
    assert choose_rank(values, 1, None) == 1
    assert choose_rank(values, 64, None) == 2


def test_full_rank_factorization_is_exact() -> None:
    rng = np.random.default_rng(0)
    kernel = rng.normal(size=(12, 7)).astype(np.float32)
    a, b = factorize(kernel, 7)
    assert a.shape == (12, 7) and b.shape == (7, 7)
    np.testing.assert_allclose(a @ b, kernel, atol=1e-5)


def test_truncation_error_is_the_dropped_energy() -> None:
    """Eckart-Young: the Frobenius error of the best rank-r approximation."""
    rng = np.random.default_rng(1)
    kernel = rng.normal(size=(20, 10))
    values = np.linalg.svd(kernel, compute_uv=False)
    for r in (1, 3, 6):
        a, b = factorize(kernel, r)
        error = np.sum((kernel - a.astype(np.float64) @ b) ** 2)
        assert error == pytest.approx(np.sum(values[r:] ** 2), rel=1e-4)


def test_params_of_the_two_factors() -> None:
    assert factorized_params(512, 10, 4) == 4 * 522
    assert factorized_params(100, 100, 50) == 100 * 100  # no saving at half rank of a square


@pytest.mark.parametrize("args", [{}, {"rank": 4, "energy": 0.9}])
def test_exactly_one_of_rank_or_energy(args: dict[str, float]) -> None:
    with pytest.raises(ValidationError, match="exactly one of 'rank'.*or 'energy'"):
        LowRankParams.model_validate(args)
    assert LowRankParams.model_validate({"energy": 0.9}).rank is None
