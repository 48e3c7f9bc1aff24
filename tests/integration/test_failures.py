"""A failing variant is recorded with its reason and the rest of the sweep still runs."""

from __future__ import annotations

import csv
import shutil
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from effcli.artifacts import Artifact
from effcli.cli.main import app
from effcli.errors import StageFailed
from effcli.stages.base import Stage, StageContext, StageParams, StageResult, stages

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


class ExplodeParams(StageParams):
    explode: bool = True


class ExplodeStage(Stage):
    """A stage that fails on demand, registered only while a test uses it."""

    Params = ExplodeParams

    def run(self, parent: Artifact | None, ctx: StageContext) -> StageResult:
        if self.params.explode:  # type: ignore[attr-defined]
            raise StageFailed("exploded on purpose")
        assert parent is not None
        return StageResult(artifact=parent)


@pytest.fixture
def explode_stage() -> Iterator[None]:
    stages.register("test_explode")(ExplodeStage)
    yield
    stages.unregister("test_explode")


@pytest.mark.usefixtures("explode_stage")
def test_failed_variant_is_recorded_and_sweep_continues(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "configs", tmp_path / "configs")
    recipe = tmp_path / "fail.yaml"
    recipe.write_text(
        textwrap.dedent(
            """\
            name: fail
            extends: base
            train: {epochs: 2, early_stopping: {enabled: false}}
            pipeline:
              - stage: train
                width_multiplier: 0.125
              - stage: test_explode
                explode: {sweep: [true, false]}
            """
        )
    )
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["run", str(recipe), "--out", str(out)])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    with open(out / "results.csv", newline="") as handle:
        rows = {r["test_explode.explode"]: r for r in csv.DictReader(handle)}
    assert rows["True"]["status"] == "failed"
    assert rows["True"]["error"] == "test_explode: exploded on purpose"
    assert rows["False"]["status"] == "ok"
    # The sibling variant was exported (float32: nothing quantized it) and measured.
    assert 0.0 <= float(rows["False"]["tflite_accuracy"]) <= 1.0
    assert (
        int(rows["False"]["tflite_bytes"])
        == (out / "artifacts" / rows["False"]["variant"] / "model.tflite").stat().st_size
    )

    # A rerun skips the failed variant; --retry-failed runs it again (and it fails again).
    again = CliRunner().invoke(app, ["run", str(recipe), "--out", str(out)])
    assert "0 to run, 2 already in results.csv" in again.output
    retry = CliRunner().invoke(app, ["run", str(recipe), "--out", str(out), "--retry-failed"])
    assert "1 to run" in retry.output
    assert retry.exit_code == 1
