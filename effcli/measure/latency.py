"""The latency columns of a row: p50/p95 and their spread, the timing floor, more thread
counts, and throughput at a batch, as `measure:` in a recipe (MeasureSpec) asks.

| column | meaning |
|---|---|
| latency_ms_p50, latency_ms_p95 | one sample at the default threads (see LiteRTModel.timing) |
| latency_ms_cv | std / mean of the 3 repeats' p50s: how far to trust latency_ms_p50 |
| latency_floor_ms | p50 of a one-op model of the same input, in this process (floor.py) |
| latency_near_floor | latency_ms_p50 < NEAR_FLOOR_FACTOR x latency_floor_ms (empty: no floor) |
| latency_ms_p50_tT, _p95_tT | the same at T threads, for every other T in latency_threads |
| throughput_per_s | samples/s at `throughput_batch` (empty: the model has a fixed batch) |
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from effcli._native import native_quiet
from effcli.measure.floor import timing_floor_ms
from effcli.measure.litert import LiteRTModel
from effcli.recipe.schema import MeasureSpec

# Under this multiple of the floor, most of a latency is the cost of calling invoke() at all.
NEAR_FLOOR_FACTOR = 5.0


def near_floor(p50_ms: float, floor_ms: float, factor: float = NEAR_FLOOR_FACTOR) -> bool | None:
    """Whether a p50 is under `factor` x the floor; None when either is unknown (NaN)."""
    if math.isnan(p50_ms) or math.isnan(floor_ms):
        return None
    return p50_ms < factor * floor_ms


def thread_columns(threads: int) -> tuple[str, str]:
    """The p50 and p95 column names of the extra thread count `threads`."""
    return f"latency_ms_p50_t{threads}", f"latency_ms_p95_t{threads}"


def latency_metrics(
    runtime: LiteRTModel, sample: np.ndarray, settings: MeasureSpec
) -> dict[str, Any]:
    """Every latency column of one model; `runtime`'s own thread count gives the plain ones."""
    timing = runtime.timing(sample)
    detail = runtime.input_detail
    floor = timing_floor_ms(detail["shape"], detail["dtype"], runtime.num_threads)
    metrics: dict[str, Any] = {
        "latency_ms_p50": timing.p50_ms,
        "latency_ms_p95": timing.p95_ms,
        "latency_ms_cv": timing.cv,
        "latency_floor_ms": floor,
        "latency_near_floor": near_floor(timing.p50_ms, floor),
    }
    for threads in settings.latency_threads:
        if threads == runtime.num_threads:
            continue
        with native_quiet():  # LiteRT logs its XNNPACK delegate on fd 2
            other = runtime.with_threads(threads)
        p50, p95 = thread_columns(threads)
        timed = other.timing(sample)
        metrics[p50], metrics[p95] = timed.p50_ms, timed.p95_ms
    return metrics


def throughput_metrics(
    runtime: LiteRTModel, sample: np.ndarray, settings: MeasureSpec
) -> dict[str, Any]:
    """`throughput_per_s` when the settings ask for it (None: the model cannot take the batch)."""
    if settings.throughput_batch is None:
        return {}
    return {"throughput_per_s": runtime.throughput_per_s(sample, settings.throughput_batch)}
