"""A frontier you can trust, on hand-made run directories (no TensorFlow): replicates become one
variant with mean, std and interval; the front says which steps are real; --robust, --compare
and --best answer with significance; failed replicates and bad arguments are handled."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from effcli.cli.main import app
from effcli.frontier import load_results
from effcli.frontier.query import compute_frontier
from effcli.frontier.significance import compare, front_steps, robust_set
from effcli.frontier.stats import Bootstrap, correctness
from effcli.measure.row import save_labels
from effcli.results import ResultsStore, RunDir
from effcli.results.rundir import unit_name

N = 360  # test samples, as on digits
rng = np.random.default_rng(0)
LABELS = rng.integers(0, 10, N)


def predictions_with(accuracy: float, seed: int) -> np.ndarray:
    """Predictions that get exactly round(accuracy * N) samples right (which ones: by seed)."""
    wrong = np.random.default_rng(seed).permutation(N)[: N - round(accuracy * N)]
    out = LABELS.copy()
    out[wrong] = (LABELS[wrong] + 1) % 10
    return out


def make_run(
    folder: Path,
    variants: dict[str, tuple[int, list[np.ndarray | None]]],
    baseline: str | None = None,
) -> Path:
    """A run directory: variant -> (tflite_bytes, per-replicate predictions; None = failed)."""
    run = RunDir(folder)
    run.root.mkdir(parents=True)
    save_labels(run, LABELS)
    store = ResultsStore(run.results)
    for variant, (size, replicates) in variants.items():
        for k, predicted in enumerate(replicates):
            row = {
                "variant": variant,
                "replicate": k,
                "replicate_seed": k,
                "pipeline": "train>quantize",
                "baseline": "linear" if variant == baseline else None,
            }
            if predicted is None:
                store.append({**row, "status": "failed", "error": "train: diverged"})
                continue
            folder_of = run.artifact(unit_name(variant, k))
            folder_of.path.mkdir(parents=True)
            np.save(folder_of.predictions, predicted.astype(np.int32))
            accuracy = float(np.mean(predicted == LABELS))
            store.append(
                {
                    **row,
                    "status": "ok",
                    "error": "",
                    "tflite_accuracy": accuracy,
                    "tflite_bytes": size,
                    "gzip_bytes": size - 10 - k,
                }
            )
    return run.root


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, [str(a) for a in args])
    return result.exit_code, result.output


@pytest.fixture
def study(tmp_path: Path) -> Path:
    """tiny (5 KB, ~60 %), small (10 KB, ~95 %), mid (20 KB, about the same: within noise), big
    (40 KB, ~99 %: significantly better), bloated (50 KB, ~95 %: significantly worse than the
    smaller big), one failed variant; 3 replicates each."""
    return make_run(
        tmp_path / "run",
        {
            "tiny": (5_000, [predictions_with(0.60, s) for s in (1, 2, 3)]),
            "small": (10_000, [predictions_with(0.95, s) for s in (4, 5, 6)]),
            "mid": (20_000, [predictions_with(a, s) for a, s in ((0.95, 4), (0.96, 7), (0.95, 8))]),
            "big": (40_000, [predictions_with(0.99, s) for s in (9, 10, 11)]),
            "bloated": (50_000, [predictions_with(0.95, s) for s in (12, 13, 14)]),
            "broken": (30_000, [None, None, None]),
        },
    )


def frontier_of(path: Path, **kwargs: object):  # type: ignore[no-untyped-def]
    return compute_frontier(load_results([path], warn=print), **kwargs)  # type: ignore[arg-type]


def test_replicates_are_one_variant_with_mean_std_and_interval(study: Path) -> None:
    result = frontier_of(study)
    rows = result.with_intervals(result.rows).set_index("variant")
    assert set(rows.index) == {"tiny", "small", "mid", "big", "bloated"}  # broken: none ok
    assert result.failed == 1 and result.replicated
    mid = rows.loc["mid"]
    per = [0.95, 0.96, 0.95]
    assert mid["n_replicates"] == 3
    assert mid["tflite_accuracy_mean"] == pytest.approx(np.mean([round(a * N) / N for a in per]))
    assert mid["tflite_accuracy_std"] == pytest.approx(
        np.std([round(a * N) / N for a in per], ddof=1)
    )
    assert (
        mid["tflite_accuracy_ci_low"] < mid["tflite_accuracy_mean"] < mid["tflite_accuracy_ci_high"]
    )
    # The interval is the bootstrap of stats.py on exactly these predictions (its own draws:
    # equal within Monte-Carlo error).
    files = [study / "artifacts" / unit_name("mid", k) / "predictions.npy" for k in range(3)]
    boot = Bootstrap(2000, 0.95, 0)
    boot.add("mid", correctness(np.stack([np.load(f) for f in files]), LABELS))
    expected = boot.estimate("mid")
    assert mid["tflite_accuracy_ci_low"] == pytest.approx(expected.low, abs=0.006)
    assert mid["tflite_accuracy_ci_high"] == pytest.approx(expected.high, abs=0.006)
    assert mid["gzip_bytes"] == pytest.approx(np.mean([19_990, 19_989, 19_988]))


def test_front_steps_say_which_gains_are_real(study: Path) -> None:
    result = frontier_of(study)
    steps = front_steps(result).set_index("variant")
    assert list(steps.index) == ["tiny", "small", "mid", "big"] or "mid" not in steps.index
    assert steps.loc["small", "vs_smaller_significant"] is True  # 60 % -> 95 %
    assert steps.loc["big", "vs_smaller_significant"] is True  # 95 % -> 99 %
    assert steps.loc["tiny", "vs_smaller_significant"] is None  # nothing smaller


def test_robust_set_and_the_one_to_take(study: Path) -> None:
    found = robust_set(frontier_of(study))
    # Nothing no larger beats tiny, small, mid (small is not significantly better) or big;
    # big is smaller than bloated and significantly better.
    assert list(found.candidates["variant"]) == ["tiny", "small", "mid", "big"]
    assert found.best == ("run", "big") and found.take == ("run", "big")
    # Without big, small and mid are indistinguishable from the best: take the smaller.
    everything = frontier_of(study)
    trimmed = dataclasses.replace(
        everything, rows=everything.rows[~everything.rows["variant"].isin(["big", "bloated"])]
    )
    found = robust_set(trimmed)
    assert found.best == ("run", "mid") and found.take == ("run", "small")


def test_compare_known_large_identical_and_one_sample(tmp_path: Path) -> None:
    same = predictions_with(0.95, 1)
    one_off = same.copy()
    wrong = np.flatnonzero(one_off != LABELS)[0]
    one_off[wrong] = LABELS[wrong]  # fixes exactly one sample
    run = make_run(
        tmp_path / "r",
        {
            "a": (1000, [same]),
            "twin": (1000, [same.copy()]),
            "plus_one": (1000, [one_off]),
            "much_worse": (1000, [predictions_with(0.80, 3)]),
        },
    )
    result = frontier_of(run)
    diff = compare(result, ("r", "a"), ("r", "much_worse")).difference
    assert diff.significant and diff.p_value < 0.01 and diff.mean == pytest.approx(0.15, abs=0.003)
    twin = compare(result, ("r", "a"), ("r", "twin")).difference
    assert not twin.significant and twin.mean == 0 and twin.p_value == 1
    one = compare(result, ("r", "plus_one"), ("r", "a")).difference
    assert not one.significant and one.mean == pytest.approx(1 / N)


def test_cli_table_shows_intervals_and_steps(study: Path) -> None:
    code, out = invoke("frontier", study)
    assert code == 0, out
    assert "3 replicates each" in out and "1 failed" in out
    assert "* +" in out  # a significant step
    assert "two-way bootstrap over test samples and replicates" in out
    code, out = invoke("frontier", study, "--format", "json")
    (first, *_), columns = json.loads(out), set(json.loads(out)[0])
    needed = {"tflite_accuracy_mean", "tflite_accuracy_std", "tflite_accuracy_ci_low"}
    assert needed | {"tflite_accuracy_ci_high", "n_replicates", "vs_smaller_p"} <= columns
    assert first["variant"] == "tiny" and first["n_replicates"] == 3


def test_cli_robust_names_the_candidates(study: Path) -> None:
    code, out = invoke("frontier", study, "--robust")
    assert code == 0, out
    assert "Robust candidates: 4 of 5 ok variants" in out
    assert "the smallest of them: big" in out


def test_cli_compare_and_its_errors(study: Path) -> None:
    code, out = invoke("frontier", study, "--compare", "big", "small")
    assert code == 0, out
    assert "big - small: +" in out and "(significant)" in out
    code, out = invoke("frontier", study, "--compare", "big", "small", "--format", "json")
    record = json.loads(out)
    assert record["significant"] is True and record["replicates"] == [3, 3]
    assert record["ci_low"] > 0 and record["test_samples"] == N
    code, out = invoke("frontier", study, "--compare", "big", "nope")
    assert code == 2 and out.count("\n") == 1 and "no ok variant with that id" in out
    code, out = invoke("frontier", study, "--compare", "big", "broken")
    assert code == 2 and out.count("\n") == 1
    assert "broken has no ok replicate (3 failed: train: diverged)" in out


@pytest.mark.parametrize("value", ["1.5", "0", "-0.2", "1"])
def test_bad_confidence_is_one_line(study: Path, value: str) -> None:
    code, out = invoke("frontier", study, "--confidence", value)
    assert code == 2 and out.count("\n") == 1
    assert f"--confidence {float(value):g}: must be between 0 and 1 (exclusive)" in out


def test_confidence_changes_the_interval_width(study: Path) -> None:
    def width(confidence: float) -> float:
        result = frontier_of(study, confidence=confidence)
        row = result.with_intervals(result.rows).set_index("variant").loc["mid"]
        return float(row["tflite_accuracy_ci_high"] - row["tflite_accuracy_ci_low"])

    assert width(0.8) < width(0.95) < width(0.99)


def test_some_failed_replicates_use_the_ok_ones(tmp_path: Path) -> None:
    run = make_run(
        tmp_path / "r",
        {"v": (1000, [predictions_with(0.9, 1), None, predictions_with(0.92, 2)])},
    )
    result = frontier_of(run)
    (row,) = result.rows.to_dict("records")
    assert row["n_replicates"] == 2 and row["replicates_total"] == 3
    assert row["tflite_accuracy_mean"] == pytest.approx((round(0.9 * N) + round(0.92 * N)) / 2 / N)
    assert result.failed == 0 and result.failed_replicates == 1
    code, out = invoke("frontier", run)
    assert "2 of 3" in out and "1 failed replicate(s) left out" in out


def test_a_varying_structural_footprint_is_flagged(tmp_path: Path) -> None:
    run = make_run(tmp_path / "r", {"v": (1000, [predictions_with(0.9, 1)] * 2)})
    store = ResultsStore(run / "results.csv")
    rows = store.rows()
    rows[1]["tflite_bytes"] = "1200"
    store.append(rows[1])
    (row,) = frontier_of(run).rows.to_dict("records")
    assert row["footprint_varies"] == "tflite_bytes"


def test_one_replicate_rows_get_a_test_sampling_interval(tmp_path: Path) -> None:
    run = make_run(tmp_path / "r", {"v": (1000, [predictions_with(0.9, 1)])})
    result = frontier_of(run)
    row = result.with_intervals(result.rows).iloc[0]
    assert (
        not result.replicated
        and row["n_replicates"] == 1
        and math.isnan(row["tflite_accuracy_std"])
    )
    # About +-3 points on 360 samples at 90 % (the binomial standard error is 1.6 points).
    assert (
        0.86 < row["tflite_accuracy_ci_low"] < 0.885
        and 0.915 < row["tflite_accuracy_ci_high"] < 0.94
    )


def test_rows_without_predictions_have_no_interval_but_still_a_front(tmp_path: Path) -> None:
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "results.csv").write_text(
        "variant,pipeline,status,error,tflite_accuracy,tflite_bytes\n"
        "a,train,ok,,0.9,1000\nb,train,ok,,0.95,2000\n"
    )
    result = frontier_of(tmp_path / "old")
    shown = result.with_intervals(result.front)
    assert list(shown["variant"]) == ["a", "b"] and shown["tflite_accuracy_ci_low"].isna().all()
    code, out = invoke("frontier", tmp_path / "old", "--compare", "a", "b")
    assert code == 2 and "no per-sample predictions for a, b" in out


def test_baseline_is_reported_by_robust(tmp_path: Path) -> None:
    run = make_run(
        tmp_path / "r",
        {
            "linear": (500, [predictions_with(0.97, s) for s in (1, 2, 3)]),
            "deep": (50_000, [predictions_with(0.975, s) for s in (4, 5, 6)]),
        },
        baseline="linear",
    )
    found = robust_set(frontier_of(run))
    assert found.baseline == ("r", "linear") and found.beats_baseline == 0
    code, out = invoke("frontier", run, "--robust")
    assert "baseline linear: no variant beats it significantly" in out


def test_plot_draws_an_error_bar_per_variant_and_marks_steps_within_noise(study: Path) -> None:
    from matplotlib.figure import Figure

    from effcli.frontier.plot import _draw_intervals, render_plot

    result = frontier_of(study)
    rows = result.with_intervals(result.rows)
    ax = Figure().add_subplot()
    _draw_intervals(ax, rows, "tflite_accuracy", "tflite_bytes", 1e-3, 100.0, "black")
    (bars,) = ax.containers
    segments = bars.lines[2][0].get_segments()  # one vertical segment per variant
    assert len(segments) == len(rows)
    lows = sorted(round(s[0][1], 6) for s in segments)
    assert lows == sorted(round(v * 100, 6) for v in rows["tflite_accuracy_ci_low"])
    png = render_plot(result)
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
