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
    begin, end_step, freq = pruning_schedule_steps(total, ramp_end, frequency)
    assert begin == 0 and (end_step, freq) == expected
    assert end_step <= total
    assert end_step % freq == 0  # TF-MOT updates masks only where (step - begin) % freq == 0


@pytest.mark.parametrize(
    ("total", "ramp_begin", "ramp_end", "frequency", "expected"),
    [
        (400, 0.2, 0.7, None, (80, 280, 20)),  # a tenth of the 200-step ramp
        (400, 0.2, 0.7, 30, (80, 260, 30)),  # last update on a multiple of 30 after the begin
        (10, 0.95, 1.0, None, (9, 10, 1)),  # begin kept before the end
    ],
)
def test_a_late_start_keeps_updates_aligned_with_the_begin(
    total: int, ramp_begin: float, ramp_end: float, frequency: int | None, expected: tuple
) -> None:
    begin, end, freq = pruning_schedule_steps(total, ramp_end, frequency, ramp_begin)
    assert (begin, end, freq) == expected
    assert (end - begin) % freq == 0 and end <= total
