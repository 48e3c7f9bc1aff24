"""Replicates through the real runner: N rows per variant, the shared prefix built once per
replicate, a rerun trains nothing, raising N trains only the new replicates; per-sample
predictions re-derive the rows; the frontier aggregates them; the baseline and op determinism."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from effcli.cli.main import app
from effcli.execute import NullReporter, run_plan
from effcli.plan import load_plan
from effcli.results.rundir import RunDir, unit_name
from tests.integration.helpers import project

pytestmark = pytest.mark.slow

RECIPE: dict[str, Any] = {
    "name": "reps",
    "extends": "base",
    "seed": 5,
    "replicates": 3,
    "train": {"epochs": 2, "early_stopping": {"enabled": False}},
    "pipeline": [
        {"stage": "train", "width_multiplier": 0.125},
        {"stage": "prune", "enabled": {"sweep": [False, True]}, "sparsity": 0.5, "epochs": 2},
        {"stage": "quantize", "calibration_samples": 32},
    ],
}


def rows_of(out: Path) -> list[dict[str, str]]:
    with open(out / "results.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def run(folder: Path, doc: dict[str, Any], name: str = "reps") -> Any:
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return run_plan(load_plan(path), folder / "out", NullReporter())


@pytest.fixture(scope="module")
def replicated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    folder = project(tmp_path_factory.mktemp("replicates"))
    return folder, run(folder, RECIPE)


def test_three_rows_per_variant_and_the_prefix_once_per_replicate(
    replicated: tuple[Path, Any],
) -> None:
    folder, summary = replicated
    rows = rows_of(folder / "out")
    assert len(rows) == 6 and {r["status"] for r in rows} == {"ok"}
    by_variant: dict[str, list[tuple[int, int]]] = {}
    for row in rows:
        by_variant.setdefault(row["variant"], []).append(
            (int(row["replicate"]), int(row["replicate_seed"]))
        )
    assert len(by_variant) == 2
    assert all(sorted(v) == [(0, 5), (1, 6), (2, 7)] for v in by_variant.values())
    # Per replicate: one train shared by both variants, one prune, two quantize.
    assert summary.nodes_ran == 3 * 4
    metas = [json.loads(p.read_text()) for p in (folder / "out" / "cache").glob("*/meta.json")]
    trains = sorted((m["replicate"], m["seed"]) for m in metas if m["stage"] == "train")
    assert trains == [(0, 5), (1, 6), (2, 7)]
    assert all(m["tensorflow"]["intra_op_threads"] >= 1 for m in metas)


def test_replicates_differ_and_predictions_re_derive_every_row(
    replicated: tuple[Path, Any],
) -> None:
    folder, _ = replicated
    run_dir = RunDir(folder / "out")
    labels = np.load(run_dir.labels)
    assert np.array_equal(labels, np.load(run_dir.test_npz)["y"])
    accuracies: dict[str, list[float]] = {}
    for row in rows_of(run_dir.root):
        artifact = run_dir.artifact(unit_name(row["variant"], int(row["replicate"])))
        predicted = np.load(artifact.predictions)
        assert predicted.shape == labels.shape
        assert float(row["tflite_accuracy"]) == pytest.approx(float(np.mean(predicted == labels)))
        assert json.loads(artifact.metrics.read_text())["replicate"] == int(row["replicate"])
        accuracies.setdefault(row["variant"], []).append(float(row["tflite_accuracy"]))
    # Different seeds train different models (the replicates are not copies of each other).
    for variant in accuracies:
        files = {run_dir.artifact(unit_name(variant, k)).tflite.read_bytes() for k in range(3)}
        assert len(files) == 3


def test_rerun_trains_nothing_and_four_replicates_train_only_the_fourth(
    replicated: tuple[Path, Any],
) -> None:
    folder, _ = replicated
    again = run(folder, RECIPE)
    assert again.nodes_ran == 0 and again.skipped == 6
    more = run(folder, {**RECIPE, "replicates": 4})
    assert more.nodes_ran == 4 and more.ok == 2 and more.skipped == 6
    rows = rows_of(folder / "out")
    assert len(rows) == 8 and sorted({r["replicate"] for r in rows}) == ["0", "1", "2", "3"]


def test_the_frontier_aggregates_replicates(replicated: tuple[Path, Any]) -> None:
    folder, _ = replicated
    result = CliRunner().invoke(app, ["frontier", str(folder / "out"), "--all", "--format", "json"])
    assert result.exit_code == 0, result.output
    records = json.loads(result.output)
    assert len(records) == 2
    rows = rows_of(folder / "out")
    for record in records:
        mine = [float(r["tflite_accuracy"]) for r in rows if r["variant"] == record["variant"]]
        assert record["n_replicates"] == len(mine)
        assert record["tflite_accuracy_mean"] == pytest.approx(np.mean(mine))
        assert record["tflite_accuracy_ci_low"] <= record["tflite_accuracy_mean"]
        assert record["tflite_accuracy_mean"] <= record["tflite_accuracy_ci_high"]
    robust = CliRunner().invoke(app, ["frontier", str(folder / "out"), "--robust"])
    assert robust.exit_code == 0 and "Robust candidates:" in robust.output


def test_effdl_plan_shows_replicates_and_trainings(replicated: tuple[Path, Any]) -> None:
    folder, _ = replicated
    result = CliRunner().invoke(
        app, ["plan", str(folder / "reps.yaml"), "--out", str(folder / "out")]
    )
    assert result.exit_code == 0, result.output
    assert "2 variants x 4 replicates (seeds 5, 6, 7, 8)" in result.output
    assert "(2 per replicate x 4 replicates)" in result.output


def test_a_tabular_baseline_is_a_linear_model_with_the_same_export(tmp_path: Path) -> None:
    doc = {
        "name": "tab",
        "baseline": True,
        "data": {"source": "synthetic", "shape": [12], "classes": 3, "num_samples": 240},
        "model": {"family": "mlp", "args": {"hidden": [16]}},
        "train": {"epochs": 2, "early_stopping": {"enabled": False}},
        "pipeline": [{"stage": "train"}, {"stage": "quantize", "calibration_samples": 16}],
    }
    run(tmp_path, doc, "tab")
    rows = {r["variant"]: r for r in rows_of(tmp_path / "out")}
    assert len(rows) == 2 and {r["status"] for r in rows.values()} == {"ok"}
    (base,) = [r for r in rows.values() if r["baseline"]]
    assert base["baseline"] == "linear" and base["pipeline"] == "train>quantize"
    layers = json.loads(RunDir(tmp_path / "out").artifact(base["variant"]).layers.read_text())
    assert [layer["op"] for layer in layers["layers"]] == ["FULLY_CONNECTED"]  # no hidden layer
    assert layers["weight_dtypes"].get("int8")  # exported like the recipe's variants


@pytest.mark.full  # reruns the recipe with op determinism; `make test-all`
def test_deterministic_nodes_run_with_op_determinism(tmp_path: Path) -> None:
    folder = project(tmp_path)
    doc = {**RECIPE, "replicates": 1, "deterministic": True, "name": "det"}
    doc["pipeline"] = [RECIPE["pipeline"][0], RECIPE["pipeline"][2]]
    summary = run(folder, doc, "det")
    assert summary.ok == 1
    metas = [json.loads(p.read_text()) for p in (folder / "out" / "cache").glob("*/meta.json")]
    assert metas and all(m["tensorflow"]["op_determinism"] for m in metas)
    record = json.loads((folder / "out" / "run.json").read_text())
    assert record["environment"]["op_determinism"] is True and record["environment"]["cpu"]
