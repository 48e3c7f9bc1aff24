"""Pareto computation, loading many runs, and units (no TensorFlow)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from effcli.errors import UsageError
from effcli.frontier import format_value, load_results, pareto_mask
from effcli.frontier.query import compute_frontier


def test_pareto_mask_keeps_only_undominated_rows() -> None:
    # (quality, bytes): row 2 is dominated by row 1 (same bytes, lower quality)
    values = np.array([[0.90, 10], [0.95, 20], [0.93, 20], [0.99, 50], [0.80, 60]])
    assert pareto_mask(values, [True, False]).tolist() == [True, True, False, True, False]


def test_pareto_mask_keeps_exact_duplicates_and_drops_nan() -> None:
    values = np.array([[0.9, 10], [0.9, 10], [math.nan, 1], [0.95, math.nan]])
    assert pareto_mask(values, [True, False]).tolist() == [True, True, False, False]


def test_pareto_mask_with_two_footprints() -> None:
    # Row 1 is bigger but faster than row 0, so both stay; row 2 loses on both axes to row 0.
    values = np.array([[0.9, 10, 2.0], [0.9, 20, 1.0], [0.9, 11, 2.5]])
    assert pareto_mask(values, [True, False, False]).tolist() == [True, True, False]


def test_pareto_mask_rejects_shape_mismatch() -> None:
    with pytest.raises(ValueError):
        pareto_mask(np.zeros((3, 2)), [True])


def frame(rows: list[dict[str, object]]) -> pd.DataFrame:
    df = pd.DataFrame(rows)
    df.insert(0, "run", "r")
    return df


def test_compute_frontier_ignores_failed_rows_and_sorts_stably() -> None:
    df = frame(
        [
            {"variant": "c", "status": "ok", "tflite_accuracy": 0.97, "tflite_bytes": 300},
            {"variant": "a", "status": "ok", "tflite_accuracy": 0.90, "tflite_bytes": 100},
            {"variant": "b", "status": "ok", "tflite_accuracy": 0.90, "tflite_bytes": 100},
            {"variant": "x", "status": "failed", "tflite_accuracy": 1.0, "tflite_bytes": 1},
            {"variant": "n", "status": "ok", "tflite_accuracy": None, "tflite_bytes": 50},
        ]
    )
    result = compute_frontier(df)
    assert result.failed == 1
    assert result.excluded == 1
    assert result.rows["variant"].tolist() == ["a", "b", "c"]
    assert result.front["variant"].tolist() == ["a", "b", "c"]


def test_compute_frontier_errors_are_usage_errors() -> None:
    df = frame([{"variant": "a", "status": "ok", "tflite_accuracy": 0.9, "tflite_bytes": 1}])
    with pytest.raises(
        UsageError,
        match=r"--footprint tflite_byte: no such column \(did you mean 'tflite_bytes'\?\)",
    ):
        compute_frontier(df, footprints=["tflite_byte"])
    failed = frame([{"variant": "a", "status": "failed", "error": "boom"}])
    with pytest.raises(UsageError, match="no ok rows to compare \\(1 failed\\)"):
        compute_frontier(failed)
    text = frame([{"variant": "a", "status": "ok", "tflite_accuracy": 0.9, "tflite_bytes": "big"}])
    with pytest.raises(UsageError, match="not numeric"):
        compute_frontier(text)


def write_csv(path: Path, rows: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("variant,pipeline,status,error,tflite_accuracy,tflite_bytes\n" + rows)
    return path


def test_load_results_merges_runs_and_skips_foreign_csvs(tmp_path: Path) -> None:
    write_csv(tmp_path / "one" / "results.csv", "a,train,ok,,0.9,100\n")
    write_csv(tmp_path / "two" / "results.csv", "b,train,ok,,0.95,200\n")
    (tmp_path / "three").mkdir()
    (tmp_path / "three" / "results.csv").write_text("just,some\nother,file\n")
    warnings: list[str] = []
    df = load_results([tmp_path], warn=warnings.append)
    assert sorted(df["run"]) == ["one", "two"]
    assert (
        len(warnings) == 1 and "three" in warnings[0] and "not an effdl results file" in warnings[0]
    )


def test_load_results_names_clashing_runs_by_path(tmp_path: Path) -> None:
    write_csv(tmp_path / "x" / "run" / "results.csv", "a,train,ok,,0.9,100\n")
    write_csv(tmp_path / "y" / "run" / "results.csv", "b,train,ok,,0.9,100\n")
    df = load_results([tmp_path], warn=lambda _: None)
    assert sorted(df["run"]) == ["x/run", "y/run"]


def test_load_results_without_any_csv(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no results.csv under"):
        load_results([tmp_path], warn=lambda _: None)
    with pytest.raises(UsageError, match="no such file or directory"):
        load_results([tmp_path / "missing"], warn=lambda _: None)


@pytest.mark.parametrize(
    ("column", "value", "text"),
    [
        ("tflite_bytes", 999, "999 B"),
        ("tflite_bytes", 80_272, "80.3 KB"),
        ("gzip_bytes", 1_343_018, "1.34 MB"),
        ("latency_ms_p50", 0.01234, "0.012 ms"),
        ("train_seconds", 12.345, "12.3 s"),
        ("tflite_accuracy", 0.96389, "96.39 %"),
        ("sparsity", 0.8, "80.0 %"),
        ("params", 1343018, "1,343,018"),
        ("prune.enabled", True, "True"),
        ("train.width_multiplier", 0.25, "0.25"),
        ("error", float("nan"), ""),
    ],
)
def test_format_value_uses_human_units(column: str, value: object, text: str) -> None:
    assert format_value(column, value) == text
