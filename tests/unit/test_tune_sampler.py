"""The tune stage's sampler settings: scaled to the budget, in the node key, a plan-time warning
when the whole budget is random start, and `parallel_trials` checked against the recipe.
No TensorFlow; Optuna only where a sampler is built."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from effcli.cli.main import app
from effcli.stages._study import _sampler, random_start, sampler_settings
from tests.unit.recipes import error_of, plan_of

HEAD = """\
name: t
data: {source: synthetic, shape: [16], classes: 4}
model: {family: mlp}
train: {epochs: 2}
pipeline:
  - stage: tune
    space: {learning_rate: {float: [1.0e-4, 1.0e-2], log: true}}
"""


@pytest.mark.parametrize(
    ("n_trials", "tpe", "nsga2"),
    [(1, 2, 2), (2, 2, 2), (8, 2, 2), (9, 3, 2), (12, 4, 3), (30, 10, 7), (300, 10, 50)],
)
def test_random_start_is_scaled_to_the_budget(n_trials: int, tpe: int, nsga2: int) -> None:
    assert sampler_settings("tpe", n_trials, None, None) == {"n_startup_trials": tpe}
    assert sampler_settings("nsga2", n_trials, None, None) == {"population_size": nsga2}
    assert sampler_settings("random", n_trials, None, None) == {}
    if n_trials >= 6:  # the model guides at least two thirds of any budget that allows it
        assert n_trials - tpe >= 2 * n_trials / 3


def test_given_settings_win_and_name_the_random_start() -> None:
    assert sampler_settings("tpe", 8, 5, None) == {"n_startup_trials": 5}
    assert sampler_settings("nsga2", 8, None, 4) == {"population_size": 4}
    assert random_start("tpe", {"n_startup_trials": 5}) == 5
    assert random_start("nsga2", {"population_size": 4}) == 4
    assert random_start("random", {}) is None


def test_the_optuna_samplers_get_the_settings() -> None:
    tpe = _sampler("tpe", 0, {"n_startup_trials": 3})
    nsga2 = _sampler("nsga2", 0, {"population_size": 4})
    assert tpe._n_startup_trials == 3 and nsga2._population_size == 4


def test_the_effective_settings_are_in_the_key(tmp_path: Path) -> None:
    def node(tail: str = "") -> tuple[str, dict[str, object]]:
        (one,) = plan_of(tmp_path, HEAD + "    n_trials: 12\n" + tail).nodes.values()
        return one.key, one.resolved

    key, resolved = node()
    assert resolved["sampler_settings"] == {"n_startup_trials": 4}
    assert resolved["parallel_trials"] == 1
    assert node("    startup_trials: 4\n")[0] == key  # the scaled value, written out
    assert node("    startup_trials: 5\n")[0] != key
    assert node("    parallel_trials: 2\n")[0] != key
    assert node("    sampler: nsga2\n")[1]["sampler_settings"] == {"population_size": 3}


def test_a_budget_within_the_random_start_is_a_warning(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, HEAD + "    n_trials: 4\n    startup_trials: 5\n")
    (warning,) = plan.warnings
    assert warning.replace(str(tmp_path) + "/", "") == (
        "r.yaml:9: pipeline[0].startup_trials: n_trials 4 <= startup_trials 5: TPE draws its "
        "first 5 trials at random, so this search is a random search; raise n_trials above 5 "
        "or lower startup_trials"
    )
    (scaled,) = plan_of(tmp_path, HEAD + "    sampler: nsga2\n    n_trials: 2\n").warnings
    assert scaled.replace(str(tmp_path) + "/", "") == (
        "r.yaml:9: pipeline[0].n_trials: n_trials 2 <= population_size 2 (scaled default): "
        "NSGA-II draws its first 2 trials at random, so this search is a random search; "
        "raise n_trials above 2"
    )
    assert not plan_of(tmp_path, HEAD + "    n_trials: 4\n    startup_trials: 3\n").warnings
    assert not plan_of(tmp_path, HEAD + "    n_trials: 3\n").warnings  # 2 random, 1 guided
    assert not plan_of(tmp_path, HEAD + "    n_trials: 2\n    sampler: random\n").warnings


@pytest.mark.parametrize("command", ["validate", "plan"])
def test_validate_and_plan_print_the_warning(tmp_path: Path, command: str) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text(HEAD + "    n_trials: 4\n    startup_trials: 5\n")
    result = CliRunner().invoke(app, [command, str(recipe)])
    assert result.exit_code == 0, result.output
    assert "pipeline[0].startup_trials: n_trials 4 <= startup_trials 5" in result.output


@pytest.mark.parametrize(
    ("tail", "message"),
    [
        (
            "    sampler: random\n    startup_trials: 3\n",
            "r.yaml:9: pipeline[0].startup_trials: startup_trials is a setting of sampler tpe, "
            "not random; remove it",
        ),
        (
            "    sampler: nsga2\n    startup_trials: 3\n",
            "r.yaml:9: pipeline[0].startup_trials: startup_trials is a setting of sampler tpe, "
            "not nsga2 (its random start is population_size); remove it",
        ),
        (
            "    population_size: 4\n",
            "r.yaml:8: pipeline[0].population_size: population_size is a setting of sampler "
            "nsga2, not tpe (its random start is startup_trials); remove it",
        ),
        (
            "    parallel_trials: 17\n",
            "r.yaml:8: pipeline[0].parallel_trials: must be <= 16 (got 17); allowed: trials run "
            "at once, each in its own process, 1..16",
        ),
    ],
)
def test_bad_search_settings_are_one_line(tmp_path: Path, tail: str, message: str) -> None:
    assert error_of(tmp_path, HEAD + tail) == message
