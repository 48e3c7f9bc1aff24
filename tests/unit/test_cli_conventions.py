"""CLI conventions: shell completion, -h, closed sets as choices, EFFDL_* environment
variables, examples in every command's help, and `--format json` on stdout.

`effdl run` is exercised with a fake `run_plan` (nothing trains); the real run is in
tests/integration/test_cli_overrides.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.main import get_command
from typer.testing import CliRunner

from effcli.cli.main import app
from effcli.cli.run import ExecutorName
from effcli.execute import RunSummary, executors
from effcli.plan import load_plan
from effcli.results import ResultsStore, RunDir

RECIPE = """\
name: conv
data: {source: digits}
train: {epochs: 2}
pipeline:
  - stage: train
  - stage: quantize
    mode: {sweep: [int8, float16]}
"""

WIDE = {"COLUMNS": "200"}  # help lines unwrapped, so an example is one line


def invoke(*args: str, env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(app, list(args), prog_name="effdl", env={**WIDE, **(env or {})})


def commands() -> list[str]:
    group = get_command(app)
    assert isinstance(group, typer.core.TyperGroup)
    return sorted(group.commands)


@pytest.fixture
def recipe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)  # errors name r.yaml, default run dirs land in tmp_path
    monkeypatch.delenv("EFFDL_RESULTS", raising=False)
    monkeypatch.delenv("EFFDL_EXECUTOR", raising=False)
    monkeypatch.delenv("EFFDL_JOBS", raising=False)
    path = tmp_path / "r.yaml"
    path.write_text(RECIPE)
    return path


class FakeRun:
    """Stands in for effcli.execute.run_plan: records its arguments, writes one ok and one
    failed row, and returns the summary a real run would."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def __call__(self, plan: Any, out: Path, reporter: Any, **kwargs: Any) -> RunSummary:
        self.calls.append({"plan": plan, "out": Path(out), "reporter": reporter, **kwargs})
        store = ResultsStore(RunDir(out).results)
        first, second = plan.variants[0], plan.variants[1]
        store.append({"variant": first.id, "label": first.label, "status": "ok", "error": ""})
        store.append(
            {"variant": second.id, "label": second.label, "status": "failed", "error": "boom"}
        )
        return RunSummary(
            out=Path(out),
            results=RunDir(out).results,
            variants=len(plan.variants),
            skipped=0,
            ok=1,
            failed=1,
            nodes_ran=3,
            nodes_cached=0,
            seconds=1.25,
            failed_total=1,
        )


@pytest.fixture
def fake_run(monkeypatch: pytest.MonkeyPatch) -> FakeRun:
    fake = FakeRun()
    monkeypatch.setattr("effcli.execute.run_plan", fake)
    return fake


# -- completion and -h ------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["argument", "detected"])
def test_show_completion_prints_a_bash_script_for_effdl(
    how: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Typer finds the shell from the process tree (shellingham): under `make` that is sh, which
    # it does not support; pin what it sees, or name the shell (its own tests' switch).
    if how == "argument":
        monkeypatch.setenv("_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION", "1")
        result = invoke("--show-completion", "bash")
    else:
        import shellingham

        monkeypatch.setattr(shellingham, "detect_shell", lambda: ("bash", "/bin/bash"))
        result = invoke("--show-completion")
    assert result.exit_code == 0, result.output
    assert "complete -o default -F _effdl_completion effdl" in result.stdout
    assert "_EFFDL_COMPLETE=complete_bash" in result.stdout


def test_root_help_offers_completion() -> None:
    result = invoke("--help")
    assert result.exit_code == 0
    assert "--install-completion" in result.stdout
    assert "--show-completion" in result.stdout


@pytest.mark.parametrize("command", [None, *commands()])
def test_dash_h_is_help(command: str | None) -> None:
    args = [command] if command else []
    short, long = invoke(*args, "-h"), invoke(*args, "--help")
    assert short.exit_code == long.exit_code == 0, short.output
    assert short.stdout == long.stdout
    assert "Usage: effdl" in short.stdout


@pytest.mark.parametrize("command", commands())
def test_every_command_help_shows_an_example(command: str) -> None:
    lines = [line.strip() for line in invoke(command, "-h").stdout.splitlines()]
    assert any(line.startswith(f"effdl {command} ") for line in lines), (
        f"`effdl {command} -h` has no example line starting with 'effdl {command} '"
    )


# -- closed sets are choices --------------------------------------------------------------------


def test_executor_choices_are_the_registered_executors() -> None:
    assert [e.value for e in ExecutorName] == executors.names()
    help_text = invoke("run", "-h").stdout
    assert "<" + "|".join(executors.names()) + ">" in help_text


@pytest.mark.parametrize(
    "args",
    [
        ["run", "r.yaml", "--executor", "slurm"],
        ["run", "r.yaml", "--track", "wandb"],
        ["run", "r.yaml", "--format", "xml"],
        ["plan", "r.yaml", "--format", "csv"],
        ["validate", "r.yaml", "--format", "yaml"],
        ["measure", "m.tflite", "--format", "csv"],
        ["frontier", "results", "--format", "html"],
    ],
)
def test_a_wrong_choice_is_a_usage_error(recipe: Path, fake_run: FakeRun, args: list[str]) -> None:
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    assert "Invalid value for" in result.output
    assert not fake_run.calls


def test_a_wrong_executor_in_the_environment_is_a_usage_error(
    recipe: Path, fake_run: FakeRun
) -> None:
    result = invoke("run", str(recipe), env={"EFFDL_EXECUTOR": "slurm"})
    assert result.exit_code == 2
    assert "'slurm' is not one of 'auto', 'local', 'process', 'ray'" in result.output
    assert not fake_run.calls


# -- environment variables ---------------------------------------------------------------------


def test_environment_variables_are_documented() -> None:
    root = invoke("--help").stdout
    for name in (
        "EFFDL_DEBUG",
        "EFFDL_EXECUTOR",
        "EFFDL_JOBS",
        "EFFDL_RESULTS",
        "EFFDL_TF_THREADS",
    ):
        assert name in root
    run_help = invoke("run", "--help").stdout
    assert "[env var: EFFDL_EXECUTOR]" in run_help
    assert "[env var: EFFDL_JOBS]" in run_help


def test_executor_and_jobs_come_from_the_environment_unless_given(
    recipe: Path, fake_run: FakeRun
) -> None:
    env = {"EFFDL_EXECUTOR": "process", "EFFDL_JOBS": "3"}
    invoke("run", str(recipe), env=env)
    invoke("run", str(recipe), "--executor", "local", "-j", "1", env=env)
    chosen = [(call["executor"], call["jobs"]) for call in fake_run.calls]
    assert chosen == [("process", 3), ("local", 1)]


def test_the_default_executor_is_auto_with_a_worker_per_core(
    recipe: Path, fake_run: FakeRun
) -> None:
    invoke("run", str(recipe))
    assert [(call["executor"], call["jobs"]) for call in fake_run.calls] == [("auto", None)]


def test_effdl_results_is_the_default_root_of_run_directories(
    recipe: Path, fake_run: FakeRun, tmp_path: Path
) -> None:
    root = tmp_path / "elsewhere"
    invoke("run", str(recipe), env={"EFFDL_RESULTS": str(root)})
    invoke("run", str(recipe))
    invoke("run", str(recipe), "--out", "mine", env={"EFFDL_RESULTS": str(root)})
    assert [call["out"] for call in fake_run.calls] == [
        root / "conv",
        Path("results") / "conv",
        Path("mine"),
    ]
    shown = json.loads(
        invoke("plan", str(recipe), "--format", "json", env={"EFFDL_RESULTS": str(root)}).stdout
    )
    assert shown["run_dir"] == str(root / "conv")


# -- --format json -----------------------------------------------------------------------------


def test_validate_json_ok(recipe: Path) -> None:
    result = invoke("validate", str(recipe), "--format", "json")
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {
        "ok": True,
        "recipe": str(recipe),
        "name": "conv",
        "variants": 2,
        "replicates": 1,
        "nodes": 3,
        "warnings": [],
    }


def test_validate_json_locates_the_problem_in_the_file(recipe: Path) -> None:
    recipe.write_text(RECIPE.replace("epochs: 2", "epochs: ten"))
    result = invoke("validate", str(recipe), "--format", "json")
    assert result.exit_code == 2
    assert json.loads(result.stdout) == {
        "ok": False,
        "recipe": str(recipe),
        "problems": [
            {
                "file": "r.yaml",
                "set": None,
                "line": 3,
                "path": "train.epochs",
                "message": "expected a whole number (got 'ten')",
                "fix": "allowed: 0..10000; 0 keeps the model as built or loaded",
                "error": "r.yaml:3: train.epochs: expected a whole number (got 'ten'); "
                "allowed: 0..10000; 0 keeps the model as built or loaded",
            }
        ],
    }


def test_validate_json_names_the_override_that_is_wrong(recipe: Path) -> None:
    result = invoke("validate", str(recipe), "--set", "pipeline.1.mode=int4", "--format", "json")
    assert result.exit_code == 2
    (found,) = json.loads(result.stdout)["problems"]
    assert found["file"] is None and found["line"] is None
    assert found["set"] == "pipeline.1.mode=int4"
    assert found["path"] == "pipeline[1].mode"
    assert found["message"].startswith("must be one of 'float32', 'dynamic'")


def test_validate_json_reports_a_missing_file(tmp_path: Path) -> None:
    result = invoke("validate", str(tmp_path / "nope.yaml"), "--format", "json")
    assert result.exit_code == 2
    (found,) = json.loads(result.stdout)["problems"]
    assert (found["message"], found["fix"]) == ("file not found", "check the path")


def test_plan_json_lists_variants_nodes_and_counts(recipe: Path, tmp_path: Path) -> None:
    the_plan = load_plan(recipe)
    run_dir = RunDir(tmp_path / "run")
    train = next(n for n in the_plan.nodes.values() if n.kind == "train")
    run_dir.node_meta(train.key).parent.mkdir(parents=True)
    run_dir.node_meta(train.key).write_text("{}")  # the train node is cached
    first = the_plan.variants[0]
    ResultsStore(run_dir.results).append({"variant": first.id, "status": "ok", "error": ""})

    result = invoke("plan", str(recipe), "--out", str(run_dir.root), "--format", "json")
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert shown["counts"] == {
        "variants": 2,
        "nodes": 3,
        "by_stage": {"train": 1, "quantize": 2},
        "trainings": 1,
        "trainings_cached": 1,
        "cached": 1,
        "to_run": 2,
    }
    assert [v["id"] for v in shown["variants"]] == [v.id for v in the_plan.variants]
    assert [v["recorded"] for v in shown["variants"]] == [["ok"], [None]]
    assert shown["variants"][1]["knobs"] == {"quantize.mode": "float16"}
    assert shown["variants"][1]["pipeline"] == "train>quantize"
    assert "label" in shown["variants"][0]
    cached = {n["key"]: n["cached"] for n in shown["nodes"]}
    assert cached == {key: key == train.key for key in the_plan.nodes}


def test_run_json_is_one_object_on_stdout(recipe: Path, fake_run: FakeRun) -> None:
    result = invoke("run", str(recipe), "--out", "run", "--format", "json")
    assert result.exit_code == 1  # one variant failed
    shown = json.loads(result.stdout)
    failed = fake_run.calls[0]["plan"].variants[1]
    assert shown["counts"] == {
        "variants": 2,
        "ok": 1,
        "failed": 1,
        "skipped": 0,
        "failed_total": 1,
        "nodes_ran": 3,
        "nodes_cached": 0,
    }
    assert shown["run_dir"] == "run"
    assert shown["results"] == str(Path("run") / "results.csv")
    assert shown["seconds"] == 1.25
    assert shown["failed_units"] == [
        {
            "unit": failed.unit,
            "variant": failed.id,
            "replicate": 0,
            "label": failed.label,
            "error": "boom",
        }
    ]
    assert shown["tracking"] is None
    assert "failed" in result.stderr  # the advice line goes to stderr, not into the JSON
    # progress goes to stderr in json mode
    assert fake_run.calls[0]["reporter"].console.stderr


def test_run_table_prints_the_summary_lines(recipe: Path, fake_run: FakeRun) -> None:
    result = invoke("run", str(recipe), "--out", "run")
    assert result.exit_code == 1
    assert "done in 1.2s: 1 ok, 1 failed, 0 already done; nodes: 3 ran, 0 cached" in result.stdout
    assert "rerun with --retry-failed" in result.stdout


def test_measure_json_lists_the_measured_rows(tmp_path: Path) -> None:
    from tests.unit.test_cli_measure_report import dense_tflite

    model = tmp_path / "dense.tflite"
    model.write_bytes(dense_tflite())
    result = invoke("measure", str(model), "--format", "json")
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.stdout)
    assert row["variant"] == "dense"
    assert row["tflite_bytes"] == model.stat().st_size
    assert row["params"] == 15  # 3x4 kernel + 3 biases
    assert "measuring" in result.stderr
