"""The survey's study recipes: paper_cifar10 validates and plans without CIFAR-10 on disk (a
warning; `effdl run` needs the data), and both have the survey's shape: every width plain and
distilled from the widest, with and without augmentation, int8, the teacher trained once."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from effcli.cli.main import app
from effcli.errors import RecipeError
from effcli.plan import Plan, load_plan

RECIPES = Path(__file__).resolve().parents[2] / "recipes"
CIFAR = RECIPES / "paper_cifar10.yaml"


def shape(plan: Plan) -> tuple[int, int, int]:
    """(variants, trainings, students of the teacher) of one replicate."""
    nodes = [node for node in plan.nodes.values() if node.replicate == 0]
    trainings = sum(node.trains for node in nodes)
    (teacher,) = {dep for node in nodes for dep in node.deps}
    students = sum(teacher in node.deps for node in nodes)
    return len(plan.first_replicates()), trainings, students


@pytest.mark.parametrize(
    ("recipe", "widths", "expected"),
    [
        ("paper_cifar10.yaml", [0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.4], (27, 26, 12)),
        ("paper_study.yaml", [0.1, 0.25, 0.5, 1.0, 2.0], (19, 18, 8)),
    ],
)
def test_study_shape(recipe: str, widths: list[float], expected: tuple[int, int, int]) -> None:
    plan = load_plan(RECIPES / recipe, require_data=False)
    assert shape(plan) == expected
    plain = [v for v in plan.first_replicates() if v.branch == "plain"]
    assert sorted({v.knobs["train.width_multiplier"] for v in plain}) == widths
    assert all(v.pipeline.endswith(">quantize") for v in plan.variants if v.branch != "teacher")
    # The teacher is the widest augmented plain model: one node, trained once for both.
    (teacher,) = [v for v in plan.first_replicates() if v.branch == "teacher"]
    assert any(teacher.leaf in v.nodes for v in plain)


def test_paper_cifar10_validates_without_the_data_and_run_refuses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.keras/datasets/cifar-10-batches-py here
    for command in ("validate", "plan"):
        result = CliRunner().invoke(app, [command, str(CIFAR)])
        assert result.exit_code == 0, result.output
        assert "cifar-10-batches-py does not exist" in result.output
        assert "(effdl run needs it there)" in result.output
    with pytest.raises(RecipeError, match="does not exist; put the CIFAR-10 python version"):
        load_plan(CIFAR)
    result = CliRunner().invoke(app, ["run", str(CIFAR), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2 and not (tmp_path / "out" / "results.csv").exists()


def test_efficient_architectures_recipe_shape() -> None:
    # Four families at two widths, each int8, 80 % sparse-format and channel-pruned + int8; the
    # three pipelines of a model share its trained base (one train node per model/replicate).
    plan = load_plan(RECIPES / "efficient_architectures.yaml")
    first = plan.first_replicates()
    assert len(first) == 24 and {v.branch for v in first} == {"int8", "sparse", "channels"}
    assert len(plan.variants) == 72 and len(plan.nodes) == 144
    families = {
        (v.knobs["model"]["family"], v.knobs["model"]["args"]["width_multiplier"]) for v in first
    }
    assert {family for family, _ in families} == {"cnn", "separable_cnn", "mobilenet_v2", "vit"}
    assert len(families) == 8
    trains = [n for n in plan.nodes.values() if n.replicate == 0 and n.kind == "train"]
    assert len(trains) == 8
