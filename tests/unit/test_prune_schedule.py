"""The pruning schedule is computed from the real step count (no TensorFlow needed)."""

from __future__ import annotations

import pytest

from effcli.stages.prune import pruning_schedule_steps


@pytest.mark.parametrize(
    ("total", "ramp_end", "frequency", "expected"),
    [
        (400, 0.7, None, (280, 28)),  # a tenth of the ramp between mask updates
        (400, 0.7, 100, (200, 100)),  # last update must land on end_step: 280 -> 200
        (90, 1.0, 100, (90, 90)),  # frequency above the run is clamped, or nothing is pruned
        (5, 0.7, None, (4, 1)),
        (1, 0.5, None, (1, 1)),
    ],
)
def test_schedule_fits_inside_the_real_steps(
    total: int, ramp_end: float, frequency: int | None, expected: tuple[int, int]
) -> None:
    end_step, freq = pruning_schedule_steps(total, ramp_end, frequency)
    assert (end_step, freq) == expected
    assert end_step <= total
    assert end_step % freq == 0  # TF-MOT updates masks only where (step - begin) % freq == 0
