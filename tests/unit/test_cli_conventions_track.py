"""`effdl run --track` / `tracking:` wiring, and `effdl export`, with a fake tracker and fake
run (nothing trains, MLflow is not touched; tests/integration/test_cli_overrides.py and the
tracker's own tests use the real ones)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from effcli.cli.main import app
from effcli.errors import UsageError
from effcli.execute import RunSummary
from effcli.results import RunDir
from effcli.track import TrackingReporter, TrackSummary

RECIPE = """\
name: conv
data: {source: digits}
pipeline:
  - stage: train
  - stage: quantize
    mode: {sweep: [int8, float16]}
"""


class FakeTracker:
    def __init__(self, events: list[str], run_dir: Path, uri: str | None, experiment: str | None):
        self.events = events
        self.run_dir = run_dir
        self.uri = uri or "sqlite:////work/mlflow.db"
        self.experiment = experiment or "conv"
        self.logged: set[str] = set()
        self.failed: list[str] = []

    def log_unit(self, unit: str) -> None:
        self.events.append(f"log_unit {unit}")
        self.logged.add(unit)

    def log_pending(self) -> TrackSummary:
        self.events.append("log_pending")
        return TrackSummary(0, len(self.logged), list(self.failed), self.uri, self.experiment)

    def close(self) -> None:
        self.events.append("close")


class World:
    """The fakes and what happened to them, in order."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.events: list[str] = []
        self.opened: list[tuple[str, Path, str | None, str | None]] = []
        self.reporters: list[Any] = []
        self.refuse: str | None = None
        self.tracker: FakeTracker | None = None
        monkeypatch.setattr("effcli.track.open_tracker", self.open_tracker)
        monkeypatch.setattr("effcli.execute.run_plan", self.run_plan)

    def open_tracker(
        self, kind: str, run_dir: Path, *, uri: str | None = None, experiment: str | None = None
    ) -> FakeTracker:
        self.events.append("open")
        self.opened.append((kind, Path(run_dir), uri, experiment))
        if self.refuse:
            raise UsageError(self.refuse)
        self.tracker = FakeTracker(self.events, Path(run_dir), uri, experiment)
        return self.tracker

    def run_plan(self, plan: Any, out: Path, reporter: Any, **kwargs: Any) -> RunSummary:
        self.events.append("run")
        self.reporters.append(reporter)
        reporter.started(plan, plan.variants, 0)
        for variant in plan.variants:
            reporter.variant_finished(variant, "ok", "")
        reporter.finished()
        results = RunDir(out).results
        n = len(plan.variants)
        return RunSummary(Path(out), results, n, 0, n, 0, 3, 0, 0.5, 0)


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> World:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("EFFDL_RESULTS", raising=False)
    (tmp_path / "r.yaml").write_text(RECIPE)
    (tmp_path / "tracked.yaml").write_text("tracking: mlflow\n" + RECIPE)
    return World(monkeypatch)


def invoke(*args: str) -> Any:
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})


def test_track_mlflow_opens_the_tracker_before_the_run_and_logs_after(world: World) -> None:
    result = invoke("run", "r.yaml", "--out", "run", "--track", "mlflow")
    assert result.exit_code == 0, result.output
    assert world.opened == [("mlflow", Path("run"), None, None)]
    assert world.events[:2] == ["open", "run"]
    assert sum(e.startswith("log_unit") for e in world.events) == 2  # each row as it lands
    assert world.events[-2:] == ["log_pending", "close"]  # then the catch-up, then closed
    (reporter,) = world.reporters
    assert isinstance(reporter, TrackingReporter)
    assert reporter.tracker is world.tracker
    assert "mlflow: 2 runs logged to sqlite:////work/mlflow.db (experiment conv)" in result.stdout
    assert "mlflow ui --backend-store-uri sqlite:////work/mlflow.db" in result.stdout


def test_the_recipe_key_turns_tracking_on_and_track_none_off(world: World) -> None:
    assert invoke("run", "tracked.yaml", "--out", "a").exit_code == 0
    assert [k for k, *_ in world.opened] == ["mlflow"]
    assert invoke("run", "tracked.yaml", "--out", "b", "--track", "none").exit_code == 0
    assert invoke("run", "r.yaml", "--out", "c").exit_code == 0
    assert len(world.opened) == 1  # neither of the last two opened a tracker
    assert world.events.count("run") == 3
    assert not any(isinstance(r, TrackingReporter) for r in world.reporters[1:])


def test_an_unreachable_store_fails_before_anything_runs(world: World) -> None:
    world.refuse = "mlflow: the tracking store http://nowhere does not answer; start it"
    result = invoke("run", "r.yaml", "--out", "run", "--track", "mlflow")
    assert result.exit_code == 2
    assert "error: mlflow: the tracking store http://nowhere does not answer" in result.stderr
    assert world.events == ["open"]


def test_rows_not_logged_are_counted(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    original = world.open_tracker

    def failing(*args: Any, **kwargs: Any) -> FakeTracker:
        tracker = original(*args, **kwargs)
        tracker.failed = ["abc: Connection refused"]
        return tracker

    monkeypatch.setattr("effcli.track.open_tracker", failing)
    result = invoke("run", "r.yaml", "--out", "run", "--track", "mlflow")
    assert result.exit_code == 0  # tracking never fails a run
    assert "(experiment conv), 1 not logged" in result.stdout


def test_run_json_carries_the_tracking_summary(world: World) -> None:
    result = invoke("run", "r.yaml", "--out", "run", "--track", "mlflow", "--format", "json")
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert shown["tracking"] == {
        "kind": "mlflow",
        "uri": "sqlite:////work/mlflow.db",
        "experiment": "conv",
        "runs": 2,
        "not_logged": [],
    }
    assert "mlflow: 2 runs logged" in result.stderr


# -- effdl export -------------------------------------------------------------------------------


@pytest.fixture
def exported(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    calls: list[tuple[Any, ...]] = []

    def export_model(
        run_dir: Path,
        variant: str,
        to: Path,
        replicate: int | None = None,
        include_keras: bool = False,
    ) -> Path:
        calls.append((run_dir, variant, to, replicate, include_keras))
        return to

    monkeypatch.setattr("effcli.deploy.export.export_model", export_model)
    return calls


def test_export_copies_a_variant(world: World, exported: list[Any], tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    result = invoke("export", "run", "abc123", "--to", "deploy")
    assert result.exit_code == 0, result.output
    assert exported == [(Path("run"), "abc123", Path("deploy"), None, False)]
    assert "exported abc123 from run to deploy" in result.stdout
    assert invoke("export", "run", "abc123", "--to", "d2", "--replicate", "2").exit_code == 0
    assert exported[-1] == (Path("run"), "abc123", Path("d2"), 2, False)
    assert invoke("export", "run", "abc123", "--to", "d3", "--keras").exit_code == 0
    assert exported[-1] == (Path("run"), "abc123", Path("d3"), None, True)


def test_export_mlflow_logs_an_existing_run(world: World, tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    result = invoke(
        "export", "mlflow", "run", "--uri", "http://localhost:5000", "--experiment", "digits"
    )
    assert result.exit_code == 0, result.output
    assert world.opened == [("mlflow", Path("run"), "http://localhost:5000", "digits")]
    assert world.events == ["open", "log_pending", "close"]
    assert "mlflow: 0 runs logged to http://localhost:5000 (experiment digits)" in result.stdout


def test_export_mlflow_exits_1_when_rows_are_not_logged(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "run").mkdir()
    original = world.open_tracker

    def failing(*args: Any, **kwargs: Any) -> FakeTracker:
        tracker = original(*args, **kwargs)
        tracker.failed = ["abc: Connection refused"]
        return tracker

    monkeypatch.setattr("effcli.track.open_tracker", failing)
    result = invoke("export", "mlflow", "run")
    assert result.exit_code == 1
    assert "not logged: abc: Connection refused" in result.stderr
    assert world.events[-1] == "close"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["export", "run", "abc"], "name the variant and the destination"),
        (["export", "run"], "name the variant and the destination"),
        (["export", "nowhere", "abc", "--to", "d"], "nowhere: no such run directory"),
        (["export", "run", "abc", "--to", "d", "--uri", "x"], "--uri and --experiment apply to"),
        (["export", "mlflow"], "name the run directory to log"),
        (["export", "mlflow", "nowhere"], "nowhere: no such run directory"),
        (
            ["export", "mlflow", "run", "--replicate", "1"],
            "--replicate and --keras apply to exporting",
        ),
    ],
)
def test_export_usage_errors(
    world: World, exported: list[Any], tmp_path: Path, args: list[str], message: str
) -> None:
    (tmp_path / "run").mkdir()
    result = invoke(*args)
    assert result.exit_code == 2
    assert message in result.stderr
    assert not exported and not world.opened


def test_track_choices_are_the_registered_trackers() -> None:
    from effcli.cli.run import Track
    from effcli.recipe.schema import RecipeDoc
    from effcli.track import trackers

    assert sorted(t.value for t in Track if t.value != "none") == sorted(trackers.names())
    choices = RecipeDoc.model_fields["tracking"].annotation
    assert set(trackers.names()) | {"none"} <= set(str(choices).replace("'", '"').split('"'))
