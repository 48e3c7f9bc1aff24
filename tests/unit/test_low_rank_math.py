"""Truncated-SVD rank choice and factorization (numpy only, no TensorFlow)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from pydantic import ValidationError

from effcli.stages.low_rank import (
    LowRankParams,
    LowRankStage,
    choose_rank,
    energy_kept,
    factorize,
    factorized_params,
    max_useful_rank,
)


def test_importing_the_stage_does_not_import_tensorflow() -> None:
    code = (
        "import sys\n"
        "import effcli.stages.low_rank, effcli.models._rewrite\n"
        "print('tensorflow' in sys.modules, 'tf_keras' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False False"


def test_rank_from_energy_on_a_known_spectrum() -> None:
    values = np.array([3.0, 2.0, 1.0, 0.0])  # energies 9, 4, 1, 0 of 14
    assert choose_rank(values, None, 0.1) == 1
    assert choose_rank(values, None, 9 / 14) == 1
    assert choose_rank(values, None, 9 / 14 + 1e-6) == 2
    assert choose_rank(values, None, 13 / 14) == 2
    assert choose_rank(values, None, 1.0) == 3  # the zero value is never needed
    assert choose_rank(np.zeros(3), None, 0.9) == 1
    assert energy_kept(values, 2) == pytest.approx(13 / 14)
    assert energy_kept(np.zeros(3), 1) == 1.0


def test_fixed_rank_is_capped_at_full_rank() -> None:
    values = np.array([5.0, 1.0])
    assert choose_rank(values, 1, None) == 1
    assert choose_rank(values, 64, None) == 2
    with pytest.raises(ValueError, match="exactly one"):
        choose_rank(values, 1, 0.5)


def test_full_rank_factorization_is_exact() -> None:
    rng = np.random.default_rng(0)
    kernel = rng.normal(size=(12, 7)).astype(np.float32)
    a, b = factorize(kernel, 7)
    assert a.shape == (12, 7) and b.shape == (7, 7)
    assert a.dtype == b.dtype == np.float32
    np.testing.assert_allclose(a @ b, kernel, atol=1e-5)


def test_truncation_error_is_the_dropped_energy() -> None:
    """Eckart-Young: the best rank-r approximation misses exactly the dropped sum(S^2)."""
    rng = np.random.default_rng(1)
    kernel = rng.normal(size=(20, 10))
    values = np.linalg.svd(kernel, compute_uv=False)
    for r in (1, 3, 6):
        a, b = factorize(kernel, r)
        assert a.shape == (20, r) and b.shape == (r, 10)
        error = np.sum((kernel - a @ b) ** 2)
        assert error == pytest.approx(np.sum(values[r:] ** 2), rel=1e-9)
        assert 1 - error / np.sum(kernel**2) == pytest.approx(energy_kept(values, r), rel=1e-9)


def test_params_of_the_two_factors() -> None:
    assert factorized_params(512, 10, 4) == 4 * 522
    assert factorized_params(100, 100, 50) == 100 * 100  # no saving at half rank of a square
    assert max_useful_rank(100, 100) == 49
    assert max_useful_rank(32, 128) == 25  # 25 * 160 = 4000 < 4096 <= 26 * 160
    assert max_useful_rank(100, 100, 0.5) == 24  # saves 52% > 50%; rank 25 saves exactly 50%
    assert max_useful_rank(1, 1) == 0


@pytest.mark.parametrize("args", [{}, {"rank": 4, "energy": 0.9}])
def test_exactly_one_of_rank_or_energy(args: dict[str, float]) -> None:
    with pytest.raises(ValidationError, match="exactly one of 'rank'.*or 'energy'"):
        LowRankParams.model_validate(args)


def test_params_defaults_and_limits() -> None:
    p = LowRankParams.model_validate({"energy": 0.9})
    assert (p.rank, p.epochs, p.keep_first_dense, p.keep_last_dense) == (None, 3, True, True)
    assert LowRankStage.is_training(p)
    assert not LowRankStage.is_training(LowRankParams.model_validate({"rank": 2, "epochs": 0}))
    for bad in ({"rank": 0}, {"energy": 0.0}, {"energy": 1.5}, {"rank": 2, "epochs": -1}):
        with pytest.raises(ValidationError):
            LowRankParams.model_validate(bad)
    with pytest.raises(ValidationError, match="Dense and 1x1 Conv2D layers only"):
        LowRankParams.model_validate({"rank": 2, "layer_types": ["Conv2D", "DepthwiseConv2D"]})
    for example in LowRankStage.examples:
        LowRankParams.model_validate(example)
