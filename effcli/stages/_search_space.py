"""The tune stage's search-space language (pure: pydantic only, no Optuna, no TensorFlow).

```yaml
space:
  learning_rate: {float: [1.0e-4, 1.0e-2], log: true}
  width_multiplier: {float: [0.25, 1.0]}
  batch_size: {int: [16, 64], step: 16}
  optimizer: {categorical: [adam, sgd]}
  augment.translate: {float: [0.0, 0.2]}
```
Any argument the train stage takes can be searched (groups by `group.field`). Everything here is
checked at plan time, so every mistake is a one-line recipe error before anything trains.
"""

from __future__ import annotations

import math
import typing
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from effcli.recipe.schema import AugmentSpec, EarlyStoppingSpec, LRScheduleSpec
from effcli.registry import did_you_mean
from effcli.stages._train_spec import DATA_ARGS, GROW_KNOBS, TrainParams

Loc = tuple[Any, ...]

GROUPS: dict[str, type[BaseModel]] = {
    "augment": AugmentSpec,
    "lr_schedule": LRScheduleSpec,
    "early_stopping": EarlyStoppingSpec,
}
OBJECTIVES: dict[str, Literal["maximize", "minimize"]] = {  # name -> Optuna direction
    "val_accuracy": "maximize",
    "params": "minimize",
    "tflite_bytes": "minimize",
    "macs": "minimize",
}
QUALITY = "val_accuracy"
KINDS = ("float", "int", "categorical")
OPTIONS = {"float": ("float", "log", "step"), "int": ("int", "log", "step")}
EXAMPLE = "e.g. learning_rate: {float: [1.0e-4, 1.0e-2], log: true}"


def _value_type(annotation: Any) -> str:
    """'float', 'int' or 'choice' (booleans, literals): how a field can be searched."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)] or [annotation]
    if any(a is bool or typing.get_origin(a) is Literal for a in args):
        return "choice"
    if int in args and float not in args:
        return "int"
    return "float"


def _searchable() -> dict[str, str]:
    """Every searchable name -> its value type: the train stage's scalar arguments, and the
    fields of its groups as `group.field`."""
    names: dict[str, str] = {}
    for name, info in TrainParams.model_fields.items():
        if name in DATA_ARGS:
            continue
        if name in GROUPS:
            for sub, sub_info in GROUPS[name].model_fields.items():
                names[f"{name}.{sub}"] = _value_type(sub_info.annotation)
        else:
            names[name] = _value_type(info.annotation)
    return names


SEARCHABLE = _searchable()


class SpaceError(ValueError):
    """One problem in the space: where below the stage (`loc`) and a one-line message."""

    def __init__(self, loc: Loc, message: str) -> None:
        super().__init__(message)
        self.loc = loc
        self.message = message


@dataclass(frozen=True)
class Dimension:
    """One searched parameter: a float or int range, or a list of choices."""

    name: str
    kind: str  # float | int | categorical
    low: float | int | None = None
    high: float | int | None = None
    step: float | int | None = None
    log: bool = False
    choices: tuple[Any, ...] = ()

    def values_to_check(self) -> list[tuple[str, Any]]:
        """(which, value) pairs that must all be valid train arguments: both ends, or each
        choice (a range between two valid ends is valid: every bound is an interval)."""
        if self.kind == "categorical":
            return [("choice", c) for c in self.choices]
        return [("low", self.low), ("high", self.high)]

    def suggest(self, trial: Any) -> Any:
        """This parameter's value for an Optuna trial."""
        if self.kind == "float":
            return trial.suggest_float(self.name, self.low, self.high, step=self.step, log=self.log)
        if self.kind == "int":
            return trial.suggest_int(
                self.name, self.low, self.high, step=self.step or 1, log=self.log
            )
        return trial.suggest_categorical(self.name, list(self.choices))


def _field(name: str) -> Any:
    group, _, sub = name.partition(".")
    return GROUPS[group].model_fields[sub] if sub else TrainParams.model_fields[name]


def _choices(name: str) -> str:
    """The values a boolean or literal argument takes, for messages: 'adam, sgd'."""
    for arg in [_field(name).annotation, *typing.get_args(_field(name).annotation)]:
        if arg is bool:
            return "true, false"
        if typing.get_origin(arg) is Literal:
            return ", ".join(map(str, typing.get_args(arg)))
    return "a set of values"


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_name(name: Any) -> str:
    """The name if the train stage takes it, else a SpaceError with a did-you-mean."""
    loc: Loc = ("space", name)
    if isinstance(name, str) and name in SEARCHABLE:
        return name
    text = str(name)
    if text in DATA_ARGS:
        raise SpaceError(
            loc,
            f"'{text}' chooses the training data, not the model: a search on validation accuracy "
            f"would pick the whole split; sweep it instead ({text}: {{sweep: [0.25, 1.0]}})",
        )
    if text in GROUPS:
        fields = ", ".join(GROUPS[text].model_fields)
        raise SpaceError(
            loc,
            f"'{text}' is a group of settings; search its fields one by one as {text}.<field> "
            f"(fields: {fields})",
        )
    group, _, sub = text.partition(".")
    if sub and group in GROUPS:
        members = list(GROUPS[group].model_fields)
        raise SpaceError(
            loc,
            f"unknown parameter '{text}'{did_you_mean(text, [f'{group}.{f}' for f in members])}; "
            f"{group} fields: {', '.join(members)}",
        )
    scalars = [n for n in SEARCHABLE if "." not in n]
    groups = ", ".join(f"{g}.<field>" for g in GROUPS)
    raise SpaceError(
        loc,
        f"unknown parameter '{text}'{did_you_mean(text, list(SEARCHABLE))}; search one of: "
        f"{', '.join(scalars)}, or {groups}",
    )


def parse_dimension(name: Any, spec: Any) -> Dimension:
    """One space entry, e.g. `{float: [0.25, 1.0]}`, checked for shape and ranges only (whether
    the train stage takes the values is `value_problems`); raises SpaceError."""
    name = check_name(name)
    loc: Loc = ("space", name)
    value_type = SEARCHABLE[name]
    if not isinstance(spec, dict):
        raise SpaceError(
            loc,
            f"expected a mapping like {{float: [low, high]}}, {{int: [low, high]}} or "
            f"{{categorical: [a, b]}} (got {spec!r})",
        )
    kinds = [k for k in KINDS if k in spec]
    if len(kinds) != 1:
        found = f" (got {' and '.join(kinds)})" if kinds else ""
        raise SpaceError(loc, f"give exactly one of float, int or categorical{found}; {EXAMPLE}")
    kind = kinds[0]
    allowed = OPTIONS.get(kind, ("categorical",))
    for key in spec:
        if key not in allowed:
            raise SpaceError(
                (*loc, key),
                f"unknown key '{key}'{did_you_mean(str(key), list(allowed))}; allowed keys for "
                f"{kind}: {', '.join(allowed)}",
            )
    if kind == "categorical":
        return _categorical(name, spec["categorical"], loc)
    if value_type == "choice":
        raise SpaceError(
            (*loc, kind),
            f"'{name}' takes one of {_choices(name)}; search it with {{categorical: [...]}}",
        )
    if kind == "float" and value_type == "int":
        raise SpaceError(
            (*loc, kind),
            f"'{name}' is a whole number; search it with {{int: [low, high]}} or "
            "{categorical: [...]}",
        )
    bounds = spec[kind]
    if not isinstance(bounds, list) or len(bounds) != 2:
        raise SpaceError((*loc, kind), f"{kind} needs [low, high] (got {bounds!r})")
    low, high = bounds
    good = _is_int if kind == "int" else _is_number
    if not (good(low) and good(high)):
        what = "whole numbers" if kind == "int" else "numbers"
        raise SpaceError((*loc, kind), f"low and high must be {what} (got {bounds!r})")
    if low >= high:
        raise SpaceError((*loc, kind), f"low must be < high (got [{low!r}, {high!r}])")
    log = spec.get("log", False)
    if not isinstance(log, bool):
        raise SpaceError((*loc, "log"), f"expected true or false (got {log!r})")
    if log and low <= 0:
        raise SpaceError((*loc, kind), f"a log scale needs low > 0 (got {low!r})")
    step = spec.get("step")
    if step is not None:
        if not good(step) or step <= 0:
            what = "a whole number" if kind == "int" else "a number"
            raise SpaceError((*loc, "step"), f"step must be {what} > 0 (got {step!r})")
        if log and not (kind == "int" and step == 1):
            raise SpaceError(
                (*loc, "step"),
                "step cannot be combined with log: true (Optuna samples a log range "
                "continuously); drop one",
            )
    return Dimension(name=name, kind=kind, low=low, high=high, step=step, log=log)


def _categorical(name: str, choices: Any, loc: Loc) -> Dimension:
    if not isinstance(choices, list) or not choices:
        raise SpaceError(
            (*loc, "categorical"),
            f"categorical needs a non-empty list of choices (got {choices!r})",
        )
    for choice in choices:
        if not isinstance(choice, (bool, int, float, str)):  # what Optuna stores
            raise SpaceError(
                (*loc, "categorical"),
                f"choices must be numbers, strings or true/false (got {choice!r})",
            )
    seen: list[Any] = []
    for choice in choices:
        if any(type(choice) is type(s) and choice == s for s in seen):
            raise SpaceError((*loc, "categorical"), f"choice {choice!r} appears twice")
        seen.append(choice)
    return Dimension(name=name, kind="categorical", choices=tuple(choices))


def parse_space(space: Mapping[Any, Any]) -> list[Dimension]:
    """Every dimension of a space; raises SpaceError at the first problem."""
    return [parse_dimension(name, spec) for name, spec in space.items()]


def assign(fixed: Mapping[str, Any], name: str, value: Any) -> dict[str, Any]:
    """Train arguments `fixed` with `name` (a scalar or `group.field`) set to `value`."""
    out = dict(fixed)
    group, _, sub = name.partition(".")
    if sub:
        out[group] = {**(out.get(group) or {}), sub: value}
    else:
        out[name] = value
    return out


def validation_reason(err: ErrorDetails) -> str:
    """A pydantic error in the recipe's words: 'must be > 0'."""
    ops = {
        "greater_than": (">", "gt"),
        "greater_than_equal": (">=", "ge"),
        "less_than": ("<", "lt"),
        "less_than_equal": ("<=", "le"),
    }
    ctx = err.get("ctx") or {}
    if err["type"] in ops:
        op, key = ops[err["type"]]
        return f"must be {op} {ctx.get(key)}"
    if err["type"] == "literal_error":
        return f"must be one of {ctx.get('expected')}"
    if err["type"] == "int_from_float":
        return "must be a whole number"
    msg = err["msg"]
    return msg[:1].lower() + msg[1:]


def value_problems(
    dimensions: Iterable[Dimension], fixed: Mapping[str, Any]
) -> Iterator[tuple[Loc, str]]:
    """Values the train stage would reject: each end of a range (or each choice) is validated
    as a TrainParams on top of the stage's fixed train arguments `fixed`."""
    for dim in dimensions:
        loc: Loc = ("space", dim.name, dim.kind)
        for which, value in dim.values_to_check():
            if dim.name == "epochs" and _is_number(value) and value < 1:
                yield loc, f"every trial trains: epochs must be >= 1 (got {which} {value!r})"
                break
            try:
                TrainParams.model_validate(assign(fixed, dim.name, value))
            except ValidationError as exc:
                err = exc.errors(include_url=False)[0]
                yield loc, f"the train stage rejects {which} {value!r}: {validation_reason(err)}"
                break


def fixed_names(fixed: Mapping[str, Any]) -> set[str]:
    """The searchable names the stage also sets to a fixed value."""
    names: set[str] = set()
    for key, value in fixed.items():
        if key in GROUPS and isinstance(value, dict):
            names.update(f"{key}.{sub}" for sub in value)
        else:
            names.add(key)
    return names


def space_problems(space: Mapping[Any, Any], fixed: Mapping[str, Any]) -> list[tuple[Loc, str]]:
    """Every problem of a space, given the stage's fixed train arguments (as set in the recipe):
    shape and ranges, names both fixed and searched, values the train stage rejects."""
    if not space:
        return [(("space",), f"the search space is empty; add at least one parameter, {EXAMPLE}")]
    problems: list[tuple[Loc, str]] = []
    dimensions = []
    for name, spec in space.items():
        try:
            dimensions.append(parse_dimension(name, spec))
        except SpaceError as exc:
            problems.append((exc.loc, exc.message))
    both = fixed_names(fixed)
    for dim in dimensions:
        if dim.name in both:
            problems.append(
                (("space", dim.name), f"'{dim.name}' is both fixed and searched; remove one")
            )
    problems.extend(value_problems(dimensions, fixed))
    return problems


def objective_problems(objectives: list[str], prune: bool | None) -> list[tuple[Loc, str]]:
    """Known, distinct objectives including val_accuracy; no pruning of multi-objective studies."""
    problems: list[tuple[Loc, str]] = []
    allowed = list(OBJECTIVES)
    for i, name in enumerate(objectives):
        if name not in OBJECTIVES:
            problems.append(
                (
                    ("objectives", i),
                    f"unknown objective '{name}'{did_you_mean(name, allowed)}; choose from: "
                    f"{', '.join(allowed)}",
                )
            )
        elif name in objectives[:i]:
            problems.append((("objectives", i), f"objective '{name}' is listed twice"))
    if objectives and QUALITY not in objectives:
        problems.append(
            (
                ("objectives",),
                f"objectives must include {QUALITY} (trials are scored on the validation split), "
                f"e.g. [{QUALITY}, params]",
            )
        )
    if prune and len(objectives) > 1:
        problems.append(
            (
                ("prune",),
                "Optuna cannot prune a multi-objective study; set prune: false or keep one "
                "objective",
            )
        )
    return problems


def apply_values(
    args: Mapping[str, Any], train: Mapping[str, Any], values: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Model args and train spec (as dicts) with a trial's values on top."""
    args, train = dict(args), dict(train)
    for name, value in values.items():
        if name in GROW_KNOBS:
            args[name] = value
        else:
            train = assign(train, name, value)
    return args, train
