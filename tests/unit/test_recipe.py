"""Recipe loading and validation: exact one-line messages with file, line and recipe path."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from effcli.cli.main import app
from effcli.data.base import datasets
from effcli.errors import RecipeError
from effcli.models.base import families
from effcli.plan import load_plan
from effcli.stages.base import stages

# Every registered stage, as the "choose one of" hint lists them (grows with each technique).
STAGE_NAMES = ", ".join(stages.names())
DATASET_NAMES = ", ".join(datasets.names())
FAMILY_NAMES = ", ".join(families.names())
STARTERS = ", ".join(n for n in stages.names() if "none" in stages.get(n).accepts)

ROOT = Path(__file__).resolve().parents[2]


def write(folder: Path, text: str, name: str = "r.yaml") -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path


def error_of(path: Path) -> str:
    with pytest.raises(RecipeError) as info:
        load_plan(path)
    return str(info.value)


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run from tmp_path so file names in messages are short and exact."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


CASES = [
    (
        "typo in a stage key, with suggestion",
        """\
        name: t
        pipeline:
          - stage: train
          - stage: prune
            sparsty: 0.5
        """,
        "r.yaml:5: pipeline[1].sparsty: unknown key 'sparsty' (did you mean 'sparsity'?); "
        "allowed keys: enabled, epochs, frequency, initial_sparsity, keep_first_dense, "
        "keep_last_dense, layer_names, layer_types, learning_rate, m_by_n, ramp_begin, ramp_end, "
        "schedule, sparsity, stage, structure, tolerance",
    ),
    (
        "unknown top-level key",
        "name: t\npipline: []\n",
        "r.yaml:2: pipline: unknown key 'pipline' (did you mean 'pipeline'?); allowed keys: "
        "baseline, data, description, deterministic, measure, model, name, pipeline, replicates, "
        "seed, tracking, train",
    ),
    (
        "typo in a nested train section",
        "name: t\ntrain:\n  early_stopping: {patiense: 3}\npipeline: [{stage: train}]\n",
        "r.yaml:3: train.early_stopping.patiense: unknown key 'patiense' (did you mean "
        "'patience'?); allowed keys: enabled, monitor, patience, restore_best, start_from_epoch",
    ),
    (
        "sparsity out of range",
        "name: t\npipeline:\n  - stage: train\n  - stage: prune\n    sparsity: 1.5\n",
        "r.yaml:5: pipeline[1].sparsity: must be < 1.0 (got 1.5); allowed: target fraction of "
        "zero weights in pruned kernels (channels: of filters removed), 0 <= s < 1",
    ),
    (
        "bad value inside a sweep points at that value's line",
        """\
        name: t
        pipeline:
          - stage: train
          - stage: prune
            sparsity:
              sweep:
                - 0.5
                - 1.5
        """,
        "r.yaml:8: pipeline[1].sparsity.sweep[1]: must be < 1.0 (got 1.5); allowed: target "
        "fraction of zero weights in pruned kernels (channels: of filters removed), 0 <= s < 1",
    ),
    (
        "wrong type",
        "name: t\ntrain: {epochs: ten}\npipeline: [{stage: train}]\n",
        "r.yaml:2: train.epochs: expected a whole number (got 'ten'); allowed: 0..10000; 0 keeps "
        "the model as built or loaded",
    ),
    (
        "fractional batch size",
        "name: t\ntrain: {batch_size: 2.5}\npipeline: [{stage: train}]\n",
        "r.yaml:2: train.batch_size: expected a whole number (got 2.5); allowed: a whole "
        "number, 1..65536",
    ),
    (
        "unknown stage",
        "name: t\npipeline:\n  - stage: trian\n",
        "r.yaml:3: pipeline[0].stage: unknown stage 'trian' (did you mean 'train'?); choose one "
        f"of: {STAGE_NAMES}",
    ),
    (
        "unknown dataset",
        "name: t\ndata: {source: digit}\npipeline: [{stage: train}]\n",
        "r.yaml:2: data.source: unknown dataset 'digit' (did you mean 'digits'?); choose one "
        f"of: {DATASET_NAMES}",
    ),
    (
        "unknown model family",
        "name: t\nmodel: {family: cnm}\npipeline: [{stage: train}]\n",
        "r.yaml:2: model.family: unknown model family 'cnm' (did you mean 'cnn'?); choose one "
        f"of: {FAMILY_NAMES}",
    ),
    (
        "split fractions",
        "name: t\ndata: {split: {train: 0.5, val: 0.1, test: 0.2}}\npipeline: [{stage: train}]\n",
        "r.yaml:2: data.split: train + val + test must sum to 1 (got 0.8)",
    ),
    (
        "missing name",
        "pipeline: [{stage: train}]\n",
        "r.yaml:1: name: missing required key 'name' (1-64 letters, digits, '.', '_' or '-', "
        "starting with a letter or digit)",
    ),
    (
        "empty pipeline",
        "name: t\npipeline: []\n",
        "r.yaml:2: pipeline: needs at least 1 item(s); allowed: a list of stages, e.g. - {stage: train}",
    ),
    (
        "quantize first",
        "name: t\npipeline:\n  - stage: quantize\n",
        "r.yaml:3: pipeline[0].stage: 'quantize' needs a model to work on, so it cannot be the "
        f"first stage; start with one of: {STARTERS}",
    ),
    (
        "prune after int8",
        "name: t\npipeline:\n  - stage: train\n  - stage: quantize\n  - stage: prune\n    sparsity: 0.5\n",
        "r.yaml:5: pipeline[2].stage: 'prune' cannot follow 'quantize' (it needs keras input, "
        "gets tflite); reorder the pipeline",
    ),
    (
        "every stage disabled",
        "name: t\npipeline:\n  - stage: train\n    enabled: false\n",
        "r.yaml:2: pipeline: every stage is disabled; enable at least one",
    ),
    (
        "width the family rejects",
        "name: t\npipeline:\n  - stage: train\n    width_multiplier: -1\n",
        "r.yaml:4: pipeline[0].width_multiplier: must be > 0.0 (got -1); allowed: a positive "
        "scale of the model's width, e.g. 0.5",
    ),
    (
        "sweeping the seed",
        "name: t\nseed: {sweep: [1, 2]}\npipeline: [{stage: train}]\n",
        "r.yaml:2: seed: this cannot be swept; sweep stage, model or train arguments, or write "
        "one recipe per value",
    ),
    (
        "sweeping a stage kind",
        "name: t\npipeline:\n  - stage: {sweep: [train]}\n",
        "r.yaml:3: pipeline[0].stage: this cannot be swept; sweep stage, model or "
        "train arguments, or write one recipe per value",
    ),
    (
        "empty sweep",
        "name: t\ntrain: {epochs: {sweep: []}}\npipeline: [{stage: train}]\n",
        "r.yaml:2: train.epochs.sweep: a sweep needs a non-empty list of values, e.g. {sweep: "
        "[0.5, 0.8]}",
    ),
    (
        "extra key beside sweep",
        "name: t\ntrain: {epochs: {sweep: [1, 2], step: 1}}\npipeline: [{stage: train}]\n",
        "r.yaml:2: train.epochs.step: a sweep takes only the key 'sweep' (found 'step')",
    ),
    (
        "duplicate sweep value",
        "name: t\ntrain: {epochs: {sweep: [1, 1]}}\npipeline: [{stage: train}]\n",
        "r.yaml:2: train.epochs.sweep[1]: value 1 appears twice in the sweep",
    ),
    (
        "nested sweep",
        "name: t\ntrain:\n  early_stopping: {sweep: [{patience: {sweep: [1]}}]}\npipeline: [{stage: train}]\n",
        "r.yaml:3: train.early_stopping.sweep[0]: sweeps cannot be nested; flatten the values",
    ),
    (
        "duplicate key",
        "name: t\nname: u\npipeline: [{stage: train}]\n",
        "r.yaml:2: name: duplicate key 'name' (first at line 1); keep one of them",
    ),
    (
        "bad YAML",
        "name: t\npipeline:\n  - stage: train\n    width_multiplier: [1\n",
        "r.yaml:5: invalid YAML: expected ',' or ']', but got '<stream end>' (while parsing a "
        "flow sequence at line 4); check indentation, colons and quoting",
    ),
    (
        "not a mapping",
        "- stage: train\n",
        "r.yaml:1: a recipe must be a mapping of keys (name, data, model, train, pipeline), not a list",
    ),
    ("empty file", "", "r.yaml: the file is empty; a recipe needs name, data, model and pipeline"),
    (
        "missing preset",
        "name: t\nextends: nope\npipeline: [{stage: train}]\n",
        "r.yaml:2: extends: preset 'nope' not found next to the recipe or in a configs/ folder "
        "above it; create it or fix the name",
    ),
]


@pytest.mark.parametrize(("text", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_recipe_gives_exact_message(here: Path, text: str, message: str) -> None:
    assert error_of(write(here, text)) == message


def test_missing_file(here: Path) -> None:
    assert error_of(here / "nope.yaml") == "nope.yaml: file not found; check the path"


def test_extends_cycle(here: Path) -> None:
    write(here, "extends: b\n", "a.yaml")
    write(here, "extends: a\n", "b.yaml")
    message = error_of(write(here, "name: t\nextends: a\npipeline: [{stage: train}]\n"))
    assert message.startswith("b.yaml:1: extends: preset 'a' extends itself through")


def test_extends_deep_merges_and_errors_point_into_the_preset(here: Path) -> None:
    (here / "configs").mkdir()
    write(here / "configs", "train:\n  epochs: 7\n  batch_size: 0\n", "preset.yaml")
    recipe = write(
        here, "name: t\nextends: preset\ntrain: {epochs: 3}\npipeline: [{stage: train}]\n"
    )
    assert error_of(recipe).startswith("configs/preset.yaml:3: train.batch_size: must be >= 1")
    write(here / "configs", "train:\n  epochs: 7\n  batch_size: 16\n", "preset.yaml")
    plan = load_plan(recipe)
    train = plan.variants[0].recipe.train
    assert (train.epochs, train.batch_size) == (3, 16)


def test_quickstart_is_valid() -> None:
    plan = load_plan(ROOT / "recipes" / "quickstart.yaml")
    assert len(plan.first_replicates()) == 9 and plan.replicates == 3


@pytest.mark.parametrize("args", [["validate"], ["plan"], ["run"]])
def test_cli_prints_one_line_and_exits_2(here: Path, args: list[str]) -> None:
    recipe = write(here, "name: t\npipeline:\n  - stage: trian\n")
    result = CliRunner().invoke(app, [*args, str(recipe)])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        "error: r.yaml:3: pipeline[0].stage: unknown stage 'trian' (did you mean 'train'?); "
        f"choose one of: {STAGE_NAMES}"
    ]
