"""`--set KEY=VALUE` on run, plan, validate (and data), and the recipe's `tracking:` key.

An override is applied to the merged document after `extends:`, validated like the file, and
changes node keys exactly as editing the file would; errors in it name the `--set`.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from effcli.cli.main import app
from effcli.errors import RecipeError
from effcli.plan import load_plan

PRESET = """\
train: {epochs: 20, batch_size: 32}
"""

RECIPE = """\
name: over
extends: preset
data: {source: digits}
pipeline:
  - stage: train
  - stage: prune
    sparsity: 0.8
  - stage: quantize
    mode: int8
"""


@pytest.fixture
def recipe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "preset.yaml").write_text(PRESET)
    path = tmp_path / "r.yaml"
    path.write_text(RECIPE)
    return path


def keys(path: Path, *overrides: str) -> list[str]:
    return sorted(load_plan(path, overrides=list(overrides)).nodes)


def error(path: Path, *overrides: str) -> str:
    with pytest.raises(RecipeError) as info:
        load_plan(path, overrides=list(overrides))
    return str(info.value)


def test_an_override_gives_the_node_keys_of_the_edited_file(recipe: Path, tmp_path: Path) -> None:
    edited = tmp_path / "edited.yaml"
    edited.write_text(
        RECIPE.replace("sparsity: 0.8", "sparsity: 0.5").replace(
            "pipeline:", "train: {epochs: 2}\npipeline:"
        )
    )
    overridden = keys(recipe, "train.epochs=2", "pipeline.1.sparsity=0.5")
    assert overridden == keys(edited)
    assert overridden != keys(recipe)
    # bracket indices, as errors print paths, mean the same
    assert keys(recipe, "train.epochs=2", "pipeline[1].sparsity=0.5") == overridden


def test_an_override_is_recorded_in_the_merged_document(recipe: Path) -> None:
    plan = load_plan(recipe, overrides=["train.epochs=2", "+data.max_samples=300"])
    doc = plan.source.doc  # what the workspace writes as the run's recipe.yaml
    assert doc["train"] == {"epochs": 2, "batch_size": 32}
    assert doc["data"] == {"source": "digits", "max_samples": 300}
    assert plan.data_spec["max_samples"] == 300
    assert "extends" not in doc


def test_a_swept_override_makes_variants(recipe: Path) -> None:
    plan = load_plan(recipe, overrides=["pipeline.1.sparsity={sweep: [0.5, 0.8]}"])
    assert [v.knobs for v in plan.first_replicates()] == [
        {"prune.sparsity": 0.5},
        {"prune.sparsity": 0.8},
    ]


def test_overrides_apply_in_order(recipe: Path) -> None:
    plan = load_plan(recipe, overrides=["train.epochs=2", "train.epochs=3"])
    assert plan.source.doc["train"]["epochs"] == 3


def test_a_bad_value_names_the_override_not_a_line(recipe: Path) -> None:
    assert error(recipe, "train.epochs=abc") == (
        "--set train.epochs=abc: train.epochs: expected a whole number (got 'abc'); "
        "allowed: 0..10000; 0 keeps the model as built or loaded"
    )
    # a value inside an overridden mapping: its old line in the preset is forgotten
    assert error(recipe, "train={epochs: abc}").startswith(
        "--set train={epochs: abc}: train.epochs: expected a whole number"
    )
    assert error(recipe, "pipeline.1.sparsity={sweep: [0.5, 1.5]}").startswith(
        "--set pipeline.1.sparsity={sweep: [0.5, 1.5]}: pipeline[1].sparsity.sweep[1]: "
        "must be < 1.0 (got 1.5)"
    )


def test_other_errors_keep_their_file_and_line(recipe: Path) -> None:
    recipe.write_text(RECIPE.replace("mode: int8", "mode: int4"))
    assert error(recipe, "train.epochs=2").startswith("r.yaml:9: pipeline[2].mode: must be one of")


def test_a_key_not_in_the_recipe_needs_a_plus(recipe: Path) -> None:
    assert error(recipe, "train.epoch=2") == (
        "--set train.epoch=2: train.epoch: not in the recipe (did you mean 'epochs'?); "
        "to add a key, write --set +train.epoch=2"
    )
    assert error(recipe, "+train.epochs=2") == (
        "--set +train.epochs=2: train.epochs: already in the recipe (it is 20); to change it, "
        "write --set train.epochs=2"
    )
    # ++ sets whether or not the key is there; + creates the mappings on the way
    assert load_plan(recipe, overrides=["++train.epochs=2"]).source.doc["train"]["epochs"] == 2
    plan = load_plan(recipe, overrides=["+train.augment.flip=true"])
    assert plan.source.doc["train"]["augment"] == {"flip": True}
    # an added key is still checked by the schema, and located at its --set
    assert error(recipe, "+train.epoch=2").startswith(
        "--set +train.epoch=2: train.epoch: unknown key 'epoch' (did you mean 'epochs'?)"
    )


def test_list_items_by_index(recipe: Path) -> None:
    assert error(recipe, "pipeline.3.mode=int8") == (
        "--set pipeline.3.mode=int8: pipeline[3].mode: pipeline has 3 item(s), numbered from 0"
    )
    assert error(recipe, "pipeline.5={stage: quantize}") == (
        "--set pipeline.5={stage: quantize}: pipeline[5]: pipeline has 3 item(s), numbered from "
        "0; add one at the end with --set +pipeline.3=..."
    )
    appended = load_plan(
        recipe,
        overrides=["pipeline.2={stage: prune, sparsity: 0.9}", "+pipeline.3={stage: quantize}"],
    )
    assert [s["stage"] for s in appended.source.doc["pipeline"]] == [
        "train",
        "prune",
        "prune",
        "quantize",
    ]
    # an appended stage is checked like any other, and located at its --set
    assert error(recipe, "+pipeline.3={stage: quantize}") == (
        "--set +pipeline.3={stage: quantize}: pipeline[3].stage: 'quantize' cannot follow "
        "'quantize' (it needs keras input, gets tflite); reorder the pipeline"
    )
    assert error(recipe, "pipeline.0.stage.x=1") == (
        "--set pipeline.0.stage.x=1: pipeline[0].stage.x: pipeline[0].stage is 'train', not a "
        "mapping or a list"
    )


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train.epochs", "--set train.epochs: expected KEY=VALUE with a dotted key"),
        ("=3", "--set =3: expected KEY=VALUE"),
        ("train..epochs=3", "--set train..epochs=3: expected KEY=VALUE"),
        ("train.epochs=[1", "--set train.epochs=[1: the value is not valid YAML"),
        ("extends=other", "--set extends=other: extends: presets are merged before --set"),
    ],
)
def test_malformed_overrides(recipe: Path, override: str, message: str) -> None:
    assert error(recipe, override).startswith(message)


@pytest.mark.parametrize("command", ["validate", "plan", "run", "data"])
def test_commands_take_set_and_exit_2_on_a_bad_one(recipe: Path, command: str) -> None:
    result = CliRunner().invoke(app, [command, str(recipe), "--set", "train.epochs=abc"])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: --set train.epochs=abc: train.epochs: expected")


def test_validate_counts_the_overridden_variants(recipe: Path) -> None:
    result = CliRunner().invoke(
        app, ["validate", str(recipe), "--set", "pipeline.1.sparsity={sweep: [0.5, 0.8]}"]
    )
    assert result.exit_code == 0
    assert "2 variant(s)" in result.stdout


# -- tracking: ----------------------------------------------------------------------------------


def test_tracking_is_a_recipe_key_outside_every_node_key(recipe: Path, tmp_path: Path) -> None:
    tracked = tmp_path / "tracked.yaml"
    tracked.write_text("tracking: mlflow\n" + RECIPE)
    assert keys(tracked) == keys(recipe)
    assert load_plan(tracked).source.doc["tracking"] == "mlflow"
    assert keys(recipe, "+tracking=none") == keys(recipe)


def test_tracking_takes_a_tracker_or_none(recipe: Path) -> None:
    assert error(recipe, "+tracking=wandb") == (
        "--set +tracking=wandb: tracking: must be one of 'mlflow', 'tensorboard' or 'none' (got 'wandb')"
    )


def test_tracking_cannot_be_swept(recipe: Path, tmp_path: Path) -> None:
    swept = tmp_path / "swept.yaml"
    swept.write_text("tracking: {sweep: [mlflow, none]}\n" + RECIPE)
    assert error(swept) == "swept.yaml:1: tracking: tracking cannot be swept; set mlflow or none"
