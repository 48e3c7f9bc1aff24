"""`effdl run --set ... --format json` for real (TensorFlow, TFLite), then `effdl export` of a
variant and `--track mlflow` / `effdl export mlflow` into a SQLite store in the test folder.

One module-scoped run: the same overrides given twice run nothing the second time (they change
node keys exactly as editing the file would), and the run's recipe.yaml records them.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from effcli.cli.main import app
from tests.integration.helpers import project

pytestmark = pytest.mark.slow

RECIPE = """\
name: tinyset
extends: base
train: {epochs: 20, early_stopping: {enabled: false}}
pipeline:
  - stage: train
    width_multiplier: 0.125
  - stage: quantize
    mode: int8
"""

OVERRIDES = [
    "--set",
    "train.epochs=1",
    "--set",
    "pipeline.1.mode={sweep: [int8, dynamic]}",
    "--set",
    "+data.max_samples=200",
]


def invoke(*args: str, env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "200", **(env or {})})


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path, dict[str, Any]]]:
    folder = project(tmp_path_factory.mktemp("overrides"))
    recipe = folder / "tinyset.yaml"
    recipe.write_text(RECIPE)
    out = folder / "out"
    result = invoke("run", str(recipe), "--out", str(out), *OVERRIDES, "--format", "json")
    assert result.exit_code == 0, result.output
    yield recipe, out, json.loads(result.stdout)


def test_json_summary_of_a_real_run(run: tuple[Path, Path, dict[str, Any]]) -> None:
    _, out, summary = run
    assert summary["counts"]["variants"] == 2
    assert summary["counts"]["ok"] == 2
    assert summary["counts"]["nodes_ran"] == 3  # one training shared by both exports
    assert summary["failed_units"] == []
    assert summary["run_dir"] == str(out)
    with open(summary["results"], newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert sorted(r["quantize.mode"] for r in rows) == ["dynamic", "int8"]


def test_the_run_records_the_overrides(run: tuple[Path, Path, dict[str, Any]]) -> None:
    _, out, _ = run
    recorded = yaml.safe_load((out / "recipe.yaml").read_text())
    assert recorded["train"]["epochs"] == 1
    assert recorded["data"]["max_samples"] == 200
    assert recorded["pipeline"][1]["mode"] == {"sweep": ["int8", "dynamic"]}


def test_the_same_overrides_again_run_nothing(run: tuple[Path, Path, dict[str, Any]]) -> None:
    recipe, out, _ = run
    again = invoke("run", str(recipe), "--out", str(out), *OVERRIDES, "--format", "json")
    assert again.exit_code == 0, again.output
    counts = json.loads(again.stdout)["counts"]
    assert (counts["skipped"], counts["nodes_ran"]) == (2, 0)
    planned = invoke("plan", str(recipe), "--out", str(out), *OVERRIDES, "--format", "json")
    assert json.loads(planned.stdout)["counts"]["to_run"] == 0
    # without the overrides it is another recipe: nothing of it is cached
    plain = invoke("plan", str(recipe), "--out", str(out), "--format", "json")
    assert json.loads(plain.stdout)["counts"]["cached"] == 0


def test_export_a_variant(run: tuple[Path, Path, dict[str, Any]], tmp_path: Path) -> None:
    _, out, _ = run
    with open(out / "results.csv", newline="") as handle:
        variant = next(csv.DictReader(handle))["variant"]
    result = invoke("export", str(out), variant[:8], "--to", str(tmp_path / "deploy"))
    assert result.exit_code == 0, result.output
    assert (tmp_path / "deploy" / "model.tflite").is_file()
    assert (tmp_path / "deploy" / "labels.txt").is_file()
    assert (tmp_path / "deploy" / "model_card.md").is_file()


def test_track_mlflow_and_export_mlflow(
    run: tuple[Path, Path, dict[str, Any]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("mlflow")
    monkeypatch.chdir(tmp_path)  # a SQLite store keeps its artifacts in ./mlruns
    recipe, out, _ = run
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    env = {"MLFLOW_TRACKING_URI": uri}
    result = invoke("run", str(recipe), "--out", str(out), *OVERRIDES, "--track", "mlflow", env=env)
    assert result.exit_code == 0, result.output
    assert f"mlflow: 2 runs logged to {uri} (experiment tinyset)" in result.stdout
    assert f"mlflow ui --backend-store-uri {uri}" in result.stdout
    again = invoke("export", "mlflow", str(out), env=env)
    assert again.exit_code == 0, again.output
    assert f"mlflow: 0 runs logged to {uri} (experiment tinyset), 2 logged before" in again.stdout
