"""The tune stage's search space and settings, checked at plan time: every mistake is one exact
line. No TensorFlow, no Optuna."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from effcli.stages._search_space import (
    SEARCHABLE,
    Dimension,
    SpaceError,
    apply_values,
    assign,
    objective_problems,
    parse_dimension,
    parse_space,
    space_problems,
)
from effcli.stages.tune import TuneStage
from tests.unit.recipes import error_of, plan_of

SCALARS = (
    "width_multiplier, depth_multiplier, resolution_multiplier, compound_phi, epochs, batch_size, "
    "optimizer, learning_rate, weight_decay, label_smoothing"
)

SPACE_CASES: list[tuple[str, dict[str, Any], dict[str, Any], tuple[Any, ...], str]] = [
    (
        "unknown name",
        {"learning_rat": {"float": [1e-4, 1e-2]}},
        {},
        ("space", "learning_rat"),
        "unknown parameter 'learning_rat' (did you mean 'learning_rate'?); search one of: "
        f"{SCALARS}, or augment.<field>, lr_schedule.<field>, early_stopping.<field>",
    ),
    (
        "unknown name, nothing close",
        {"dropout": {"float": [0.0, 0.5]}},
        {},
        ("space", "dropout"),
        f"unknown parameter 'dropout'; search one of: {SCALARS}, or augment.<field>, "
        "lr_schedule.<field>, early_stopping.<field>",
    ),
    (
        "a whole group",
        {"augment": {"float": [0.0, 0.2]}},
        {},
        ("space", "augment"),
        "'augment' is a group of settings; search its fields one by one as augment.<field> "
        "(fields: flip, translate, rotate, zoom, contrast, noise, cutout, mixup)",
    ),
    (
        "unknown group field",
        {"augment.transl": {"float": [0.0, 0.2]}},
        {},
        ("space", "augment.transl"),
        "unknown parameter 'augment.transl' (did you mean 'augment.translate'?); augment "
        "fields: flip, translate, rotate, zoom, contrast, noise, cutout, mixup",
    ),
    (
        "not a mapping",
        {"learning_rate": [1e-4, 1e-2]},
        {},
        ("space", "learning_rate"),
        "expected a mapping like {float: [low, high]}, {int: [low, high]} or "
        "{categorical: [a, b]} (got [0.0001, 0.01])",
    ),
    (
        "no kind",
        {"learning_rate": {"log": True}},
        {},
        ("space", "learning_rate"),
        "give exactly one of float, int or categorical; e.g. learning_rate: "
        "{float: [1.0e-4, 1.0e-2], log: true}",
    ),
    (
        "two kinds",
        {"batch_size": {"int": [16, 64], "categorical": [16, 32]}},
        {},
        ("space", "batch_size"),
        "give exactly one of float, int or categorical (got int and categorical); e.g. "
        "learning_rate: {float: [1.0e-4, 1.0e-2], log: true}",
    ),
    (
        "unknown option",
        {"learning_rate": {"float": [1e-4, 1e-2], "lg": True}},
        {},
        ("space", "learning_rate", "lg"),
        "unknown key 'lg' (did you mean 'log'?); allowed keys for float: float, log, step",
    ),
    (
        "option of another kind",
        {"optimizer": {"categorical": ["adam", "sgd"], "log": True}},
        {},
        ("space", "optimizer", "log"),
        "unknown key 'log'; allowed keys for categorical: categorical",
    ),
    (
        "not a pair",
        {"learning_rate": {"float": [1e-4]}},
        {},
        ("space", "learning_rate", "float"),
        "float needs [low, high] (got [0.0001])",
    ),
    (
        "not numbers",
        {"learning_rate": {"float": ["small", 1e-2]}},
        {},
        ("space", "learning_rate", "float"),
        "low and high must be numbers (got ['small', 0.01])",
    ),
    (
        "int range of floats",
        {"batch_size": {"int": [16.5, 64]}},
        {},
        ("space", "batch_size", "int"),
        "low and high must be whole numbers (got [16.5, 64])",
    ),
    (
        "low == high",
        {"width_multiplier": {"float": [0.5, 0.5]}},
        {},
        ("space", "width_multiplier", "float"),
        "low must be < high (got [0.5, 0.5])",
    ),
    (
        "low > high",
        {"batch_size": {"int": [64, 16]}},
        {},
        ("space", "batch_size", "int"),
        "low must be < high (got [64, 16])",
    ),
    (
        "log with a zero low",
        {"weight_decay": {"float": [0.0, 1e-3], "log": True}},
        {},
        ("space", "weight_decay", "float"),
        "a log scale needs low > 0 (got 0.0)",
    ),
    (
        "log not a boolean",
        {"learning_rate": {"float": [1e-4, 1e-2], "log": "yes"}},
        {},
        ("space", "learning_rate", "log"),
        "expected true or false (got 'yes')",
    ),
    (
        "a non-positive step",
        {"batch_size": {"int": [16, 64], "step": 0}},
        {},
        ("space", "batch_size", "step"),
        "step must be a whole number > 0 (got 0)",
    ),
    (
        "step with log",
        {"learning_rate": {"float": [1e-4, 1e-2], "log": True, "step": 1e-4}},
        {},
        ("space", "learning_rate", "step"),
        "step cannot be combined with log: true (Optuna samples a log range continuously); "
        "drop one",
    ),
    (
        "empty categorical",
        {"optimizer": {"categorical": []}},
        {},
        ("space", "optimizer", "categorical"),
        "categorical needs a non-empty list of choices (got [])",
    ),
    (
        "a non-scalar choice",
        {"lr_schedule.kind": {"categorical": [{"kind": "cosine"}]}},
        {},
        ("space", "lr_schedule.kind", "categorical"),
        "choices must be numbers, strings or true/false (got {'kind': 'cosine'})",
    ),
    (
        "a null choice (it would mean the default, which is not a value to search)",
        {"epochs": {"categorical": [None, 4]}},
        {},
        ("space", "epochs", "categorical"),
        "choices must be numbers, strings or true/false (got None)",
    ),
    (
        "a repeated choice",
        {"optimizer": {"categorical": ["adam", "adam"]}},
        {},
        ("space", "optimizer", "categorical"),
        "choice 'adam' appears twice",
    ),
    (
        "float range of a whole-number argument",
        {"batch_size": {"float": [16, 64]}},
        {},
        ("space", "batch_size", "float"),
        "'batch_size' is a whole number; search it with {int: [low, high]} or {categorical: [...]}",
    ),
    (
        "range of a literal argument",
        {"optimizer": {"int": [0, 3]}},
        {},
        ("space", "optimizer", "int"),
        "'optimizer' takes one of adam, adamw, sgd, rmsprop; search it with {categorical: [...]}",
    ),
    (
        "range of a boolean argument",
        {"augment.flip": {"float": [0, 1]}},
        {},
        ("space", "augment.flip", "float"),
        "'augment.flip' takes one of true, false; search it with {categorical: [...]}",
    ),
    (
        "low the train stage rejects",
        {"width_multiplier": {"float": [0.0, 1.0]}},
        {},
        ("space", "width_multiplier", "float"),
        "the train stage rejects low 0.0: must be > 0.0",
    ),
    (
        "high the train stage rejects",
        {"width_multiplier": {"float": [0.25, 20.0]}},
        {},
        ("space", "width_multiplier", "float"),
        "the train stage rejects high 20.0: must be <= 16.0",
    ),
    (
        "a group field's high the train stage rejects",
        {"augment.translate": {"float": [0.0, 0.6]}},
        {},
        ("space", "augment.translate", "float"),
        "the train stage rejects high 0.6: must be <= 0.5",
    ),
    (
        "label smoothing reaching 1",
        {"label_smoothing": {"float": [0.0, 1.0]}},
        {},
        ("space", "label_smoothing", "float"),
        "the train stage rejects high 1.0: must be < 1.0",
    ),
    (
        "a choice the train stage rejects",
        {"optimizer": {"categorical": ["adam", "adamx"]}},
        {},
        ("space", "optimizer", "categorical"),
        "the train stage rejects choice 'adamx': must be one of 'adam', 'adamw', 'sgd' or "
        "'rmsprop'",
    ),
    (
        "a group field choice the train stage rejects",
        {"lr_schedule.kind": {"categorical": ["cosine", "linear"]}},
        {},
        ("space", "lr_schedule.kind", "categorical"),
        "the train stage rejects choice 'linear': must be one of 'constant', 'cosine', 'step' "
        "or 'plateau'",
    ),
    (
        "epochs reaching 0",
        {"epochs": {"int": [0, 4]}},
        {},
        ("space", "epochs", "int"),
        "every trial trains: epochs must be >= 1 (got low 0)",
    ),
    (
        "fixed and searched",
        {"learning_rate": {"float": [1e-4, 1e-2], "log": True}},
        {"learning_rate": 0.01},
        ("space", "learning_rate"),
        "'learning_rate' is both fixed and searched; remove one",
    ),
    (
        "a group field fixed and searched",
        {"augment.translate": {"float": [0.0, 0.2]}},
        {"augment": {"translate": 0.1}},
        ("space", "augment.translate"),
        "'augment.translate' is both fixed and searched; remove one",
    ),
    (
        "empty",
        {},
        {},
        ("space",),
        "the search space is empty; add at least one parameter, e.g. learning_rate: "
        "{float: [1.0e-4, 1.0e-2], log: true}",
    ),
]


@pytest.mark.parametrize(
    ("space", "fixed", "loc", "message"),
    [case[1:] for case in SPACE_CASES],
    ids=[case[0] for case in SPACE_CASES],
)
def test_space_problems_are_exact_lines(
    space: dict[str, Any], fixed: dict[str, Any], loc: tuple[Any, ...], message: str
) -> None:
    assert space_problems(space, fixed) == [(loc, message)]


def test_a_good_space_has_no_problem_and_parses() -> None:
    space = {
        "learning_rate": {"float": [1e-4, 1e-2], "log": True},
        "width_multiplier": {"float": [0.25, 1.0]},
        "batch_size": {"int": [16, 64], "step": 16},
        "optimizer": {"categorical": ["adam", "sgd"]},
        "augment.translate": {"float": [0.0, 0.2]},
        "augment.flip": {"categorical": [True, False]},
        "lr_schedule.kind": {"categorical": ["constant", "cosine"]},
        "epochs": {"int": [2, 8], "log": True},
        "weight_decay": {"float": [0.0, 1e-3], "step": 1e-4},
    }
    assert space_problems(space, {"label_smoothing": 0.1, "augment": {"noise": 0.1}}) == []
    dims = parse_space(space)
    assert [d.name for d in dims] == list(space)
    assert dims[0] == Dimension("learning_rate", "float", 1e-4, 1e-2, None, True)
    assert dims[2] == Dimension("batch_size", "int", 16, 64, 16, False)
    assert dims[3] == Dimension("optimizer", "categorical", choices=("adam", "sgd"))
    assert dims[2].values_to_check() == [("low", 16), ("high", 64)]
    assert dims[3].values_to_check() == [("choice", "adam"), ("choice", "sgd")]


def test_parse_raises_the_first_problem() -> None:
    with pytest.raises(SpaceError) as info:
        parse_dimension("batch_size", {"int": [64, 16]})
    assert info.value.loc == ("space", "batch_size", "int")
    assert str(info.value) == "low must be < high (got [64, 16])"


def test_every_train_argument_is_searchable() -> None:
    assert SEARCHABLE["width_multiplier"] == "float"
    assert SEARCHABLE["batch_size"] == "int"
    assert SEARCHABLE["optimizer"] == "choice"
    assert SEARCHABLE["augment.flip"] == "choice"
    assert SEARCHABLE["lr_schedule.step_epochs"] == "int"
    assert SEARCHABLE["early_stopping.patience"] == "int"
    assert "augment" not in SEARCHABLE and "early_stopping" not in SEARCHABLE


def test_trial_values_go_to_model_args_or_the_train_spec() -> None:
    args, train = apply_values(
        {"width_multiplier": 1.0, "hidden": [32]},
        {"learning_rate": 1e-3, "augment": {"translate": 0.0, "noise": 0.1}},
        {"width_multiplier": 0.5, "learning_rate": 0.01, "augment.translate": 0.2},
    )
    assert args == {"width_multiplier": 0.5, "hidden": [32]}
    assert train == {"learning_rate": 0.01, "augment": {"translate": 0.2, "noise": 0.1}}
    assert assign({}, "lr_schedule.kind", "cosine") == {"lr_schedule": {"kind": "cosine"}}


OBJECTIVE_CASES = [
    (
        "unknown",
        ["val_accuracy", "tflite_byte"],
        None,
        ("objectives", 1),
        "unknown objective 'tflite_byte' (did you mean 'tflite_bytes'?); choose from: "
        "val_accuracy, params, tflite_bytes, macs",
    ),
    (
        "twice",
        ["val_accuracy", "params", "params"],
        False,
        ("objectives", 2),
        "objective 'params' is listed twice",
    ),
    (
        "no quality",
        ["params"],
        None,
        ("objectives",),
        "objectives must include val_accuracy (trials are scored on the validation split), e.g. "
        "[val_accuracy, params]",
    ),
    (
        "pruning a multi-objective study",
        ["val_accuracy", "params"],
        True,
        ("prune",),
        "Optuna cannot prune a multi-objective study; set prune: false or keep one objective",
    ),
]


@pytest.mark.parametrize(
    ("objectives", "prune", "loc", "message"),
    [case[1:] for case in OBJECTIVE_CASES],
    ids=[case[0] for case in OBJECTIVE_CASES],
)
def test_objective_problems_are_exact_lines(
    objectives: list[str], prune: bool | None, loc: tuple[Any, ...], message: str
) -> None:
    assert objective_problems(objectives, prune) == [(loc, message)]


@pytest.mark.parametrize(
    ("objectives", "prune"),
    [
        (["val_accuracy"], None),
        (["val_accuracy"], True),
        (["val_accuracy", "params"], None),  # pruning defaults to off here
        (["tflite_bytes", "val_accuracy", "macs"], False),
    ],
)
def test_good_objectives(objectives: list[str], prune: bool | None) -> None:
    assert objective_problems(objectives, prune) == []


# -- through the recipe: file, line and path ------------------------------------------------------

HEAD = """\
name: t
data: {source: synthetic, shape: [16], classes: 4}
model: {family: mlp}
train: {epochs: 2}
pipeline:
  - stage: tune
"""


RECIPE_CASES = [
    (
        "a bad range, on its line",
        "    n_trials: 3\n    space:\n      learning_rate: {float: [1.0e-2, 1.0e-4], log: true}\n",
        "r.yaml:9: pipeline[0].space.learning_rate.float: low must be < high (got [0.01, 0.0001])",
    ),
    (
        "an unknown name",
        "    space:\n      lerning_rate: {float: [1.0e-4, 1.0e-2]}\n",
        "r.yaml:8: pipeline[0].space.lerning_rate: unknown parameter 'lerning_rate' (did you "
        f"mean 'learning_rate'?); search one of: {SCALARS}, or augment.<field>, "
        "lr_schedule.<field>, early_stopping.<field>",
    ),
    (
        "an augmentation the data kind does not take",
        "    space:\n      augment.translate: {float: [0.0, 0.2]}\n",
        "r.yaml:8: pipeline[0].space.augment.translate.float: high 0.2: 'translate' augments "
        "image or sequence data, but this recipe's data is tabular; remove it",
    ),
    (
        "an unknown objective",
        "    space: {learning_rate: {float: [1.0e-4, 1.0e-2]}}\n"
        "    objectives: [val_accuracy, size]\n",
        "r.yaml:8: pipeline[0].objectives[1]: unknown objective 'size'; choose from: "
        "val_accuracy, params, tflite_bytes, macs",
    ),
    (
        "pruning a multi-objective study",
        "    space: {learning_rate: {float: [1.0e-4, 1.0e-2]}}\n"
        "    objectives: [val_accuracy, params]\n    prune: true\n",
        "r.yaml:9: pipeline[0].prune: Optuna cannot prune a multi-objective study; set "
        "prune: false or keep one objective",
    ),
    (
        "an unknown sampler",
        "    space: {learning_rate: {float: [1.0e-4, 1.0e-2]}}\n    sampler: cmaes\n",
        "r.yaml:8: pipeline[0].sampler: must be one of 'tpe', 'random' or 'nsga2' (got 'cmaes')",
    ),
    (
        "zero epochs for every trial",
        "    space: {learning_rate: {float: [1.0e-4, 1.0e-2]}}\n    epochs: 0\n",
        "r.yaml:8: pipeline[0].epochs: every trial trains: epochs must be >= 1 (got 0)",
    ),
    (
        "a field fixed by the stage and searched",
        "    augment: {noise: 0.1}\n    space:\n      augment.noise: {float: [0.0, 0.2]}\n",
        "r.yaml:9: pipeline[0].space.augment.noise: 'augment.noise' is both fixed and searched; "
        "remove one",
    ),
]


@pytest.mark.parametrize(
    ("tail", "message"),
    [case[1:] for case in RECIPE_CASES],
    ids=[case[0] for case in RECIPE_CASES],
)
def test_recipe_errors_name_file_line_and_path(tmp_path: Path, tail: str, message: str) -> None:
    got = error_of(tmp_path, HEAD + tail)
    assert got == message


GOOD = (
    HEAD
    + """\
    n_trials: 4
    space:
      learning_rate: {float: [1.0e-4, 1.0e-2], log: true}
      augment.noise: {float: [0.0, 0.2]}
"""
)


def test_resolve_holds_the_search_and_the_train_defaults(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, GOOD)
    (node,) = plan.nodes.values()
    r = node.resolved
    assert node.trains and node.kind == "tune"
    assert r["space"]["learning_rate"] == {"float": [1e-4, 1e-2], "log": True}
    assert r["n_trials"] == 4 and r["sampler"] == "tpe" and r["objectives"] == ["val_accuracy"]
    assert r["prune"] is True  # on by default with one objective
    assert r["prune_warmup_epochs"] == 8  # the train section's early-stopping warm-up
    assert r["train"]["epochs"] == 2 and r["model"]["family"] == "mlp"
    assert node.label == "tune(space=learning_rate|augment.noise, n_trials=4)"
    multi = plan_of(tmp_path, GOOD + "    objectives: [val_accuracy, params]\n")
    (node,) = multi.nodes.values()
    assert node.resolved["prune"] is False  # off by default with several objectives
    assert multi.nodes.keys() != plan.nodes.keys()


def test_multi_objective_tune_before_another_stage_is_a_warning(tmp_path: Path) -> None:
    text = GOOD + "    objectives: [val_accuracy, tflite_bytes]\n  - {stage: quantize}\n"
    plan = plan_of(tmp_path, text)
    (warning,) = plan.variants[0].recipe.warnings
    assert warning.replace(str(tmp_path) + "/", "") == (
        "r.yaml:11: pipeline[0].objectives: multi-objective tune is not the last stage: only its "
        "best-val_accuracy Pareto trial continues to the next stages and the other "
        "Pareto-optimal trials get no rows; make tune the last stage to measure them all"
    )
    assert not plan_of(tmp_path, GOOD + "  - {stage: quantize}\n").variants[0].recipe.warnings


def test_tune_is_an_improve_stage_that_starts_a_pipeline() -> None:
    assert TuneStage.role == "improve" and TuneStage.accepts == ("none",)
    assert TuneStage.examples  # run by the contract suite over every stage


def test_importing_the_stage_imports_neither_tensorflow_nor_optuna() -> None:
    code = (
        "import sys\n"
        "import effcli.stages.tune\n"
        "print('tensorflow' in sys.modules, 'tf_keras' in sys.modules, 'optuna' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False False False"
