"""The bad-recipe corpus (tests/bad_recipes/): every file fails with its exact one-line message.

Each `NN-name.yaml` starts with comment lines saying what `load_plan` must raise:

    # expect: <path>: <message>      what follows "file:line: " in the error
    # expect-line: N                 the line (`none` when the error has none, e.g. an empty file)
    # expect-file: presets/x.yaml    optional: the error is located in another file (a preset)

In `expect`, `{here}` stands for the corpus folder's absolute path (data and model paths are
printed resolved) and `{stages}` / `{starters}` / `{datasets}` / `{families}` for the registered
names a "choose one of" lists, so the corpus does not change when a plug-in is added.
No TensorFlow is imported and nothing trains.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from effcli.cli.main import app
from effcli.data.base import datasets
from effcli.errors import RecipeError
from effcli.models.base import families
from effcli.plan import load_plan
from effcli.stages.base import stages

CORPUS = Path(__file__).resolve().parents[1] / "bad_recipes"
FILES = sorted(CORPUS.glob("*.yaml"), key=lambda p: (len(p.name.split("-")[0]), p.name))
HEADER = re.compile(r"^# expect(-line|-file|-when)?: (.*)$")


def header(path: Path) -> dict[str, str]:
    fields: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        match = HEADER.match(line)
        if not match:
            break
        fields[match.group(1) or ""] = match.group(2)
    return fields


def expectation(path: Path) -> str:
    """The full error string the file declares: '<file>[:<line>]: <message>'."""
    fields = header(path)
    assert "" in fields and "-line" in fields, (
        f"{path.name}: needs '# expect:' and '# expect-line:'"
    )
    message = fields[""]
    for name, names in (
        ("{stages}", stages.names()),
        ("{starters}", [n for n in stages.names() if "none" in stages.get(n).accepts]),
        ("{datasets}", datasets.names()),
        ("{families}", families.names()),
        ("{here}", [str(CORPUS.resolve())]),
    ):
        message = message.replace(name, ", ".join(names))
    line = fields["-line"]
    where = fields.get("-file", path.name) + ("" if line == "none" else f":{int(line)}")
    return f"{where}: {message}"


@pytest.fixture
def in_corpus(monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run from the corpus folder, so file names in messages are relative and exact."""
    monkeypatch.chdir(CORPUS)
    return CORPUS


def test_the_corpus_is_large_and_well_named() -> None:
    assert len(FILES) >= 40
    assert all(re.fullmatch(r"\d{2,3}-[a-z0-9-]+\.yaml", p.name) for p in FILES)
    numbers = [int(p.name.split("-")[0]) for p in FILES]
    assert len(set(numbers)) == len(numbers), "two corpus files share a number"


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_load_plan_raises_the_expected_message(in_corpus: Path, path: Path) -> None:
    with pytest.raises(RecipeError) as info:
        load_plan(path.name)
    message = str(info.value)
    assert message == expectation(path)
    assert len(message.splitlines()) == 1
    assert info.value.exit_code == 2


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_validate_prints_one_line_and_exits_2(in_corpus: Path, path: Path) -> None:
    """Data missing on this machine (`expect-when: run`) is an error for `effdl run` and
    `effdl data` (load_plan above) but a warning for validate/plan: a recipe for data kept
    elsewhere (the survey's CIFAR-10 study) validates anywhere."""
    result = CliRunner().invoke(app, ["validate", path.name])
    if header(path).get("-when") == "run":
        assert result.exit_code == 0, result.output
        warning = f"warning: {expectation(path)} (effdl run needs it there)"
        assert result.output.splitlines()[0] == warning
        return
    assert result.exit_code == 2, result.output
    assert result.output.splitlines() == [f"error: {expectation(path)}"]


@pytest.mark.parametrize("stage", ["[/x]", "[bold]x"])
def test_validate_prints_brackets_in_a_message_verbatim(tmp_path: Path, stage: str) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"name: t\npipeline:\n  - stage: '{stage}'\n")
    result = CliRunner().invoke(app, ["validate", str(recipe)])
    assert result.exit_code == 2
    assert f"unknown stage '{stage}'" in result.output
