"""Improve: hyper-parameter search with Optuna over anything the train stage accepts.

```yaml
- stage: tune
  space:
    learning_rate: {float: [1.0e-4, 1.0e-2], log: true}
    width_multiplier: {float: [0.25, 1.0]}
    batch_size: {int: [16, 64], step: 16}
    optimizer: {categorical: [adam, sgd]}
    augment.translate: {float: [0.0, 0.2]}
  sampler: tpe                 # tpe | random | nsga2
  n_trials: 8
  objectives: [val_accuracy]   # or add a footprint: params | tflite_bytes | macs
  epochs: 10                   # every train argument may also be fixed
```

Each trial builds the model family with the trial's values and trains it like `train` does;
it is scored on the validation split only (the best epoch's val_accuracy; the test split is never
seen). With one objective, per-epoch val_accuracy feeds Optuna's MedianPruner (`prune`), and the
artifact is the best trial's model. With a footprint objective the artifact is the Pareto-optimal
trial with the best val_accuracy, and every other Pareto-optimal trial is kept as an
`Alternative`, so each is exported and measured as its own row.

The study lives in `ctx.workdir` (`<run dir>/studies/<node key prefix>.sqlite3`, with each kept
trial's model next to it) so a killed run resumes: finished (complete or pruned) trials count
toward `n_trials`, and only the missing ones run. Without a workdir the study is in memory.

The space is parsed and checked by pure functions (no TensorFlow, no Optuna), so every mistake is
a one-line recipe error at plan time.
"""

from __future__ import annotations

import math
import os
import time
import typing
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError
from pydantic_core import ErrorDetails

from effcli.artifacts import Artifact, KerasModel
from effcli.errors import StageFailed
from effcli.models.base import families
from effcli.recipe.schema import (
    AugmentSpec,
    EarlyStoppingSpec,
    LRScheduleSpec,
    Recipe,
    StageConfig,
    TrainSpec,
)
from effcli.registry import did_you_mean
from effcli.stages._training import FitReport, compile_classifier, fit, steps_per_epoch
from effcli.stages.base import Alternative, Stage, StageContext, StageResult, stages
from effcli.stages.train import (
    GROW_KNOBS,
    TrainParams,
    check_model_and_training,
    model_args,
    model_spec,
    train_spec,
)

Loc = tuple[Any, ...]

# -- the search space (pure: pydantic only) ------------------------------------------------------

GROUPS: dict[str, type[BaseModel]] = {
    "augment": AugmentSpec,
    "lr_schedule": LRScheduleSpec,
    "early_stopping": EarlyStoppingSpec,
}
OBJECTIVES: dict[str, str] = {  # name -> Optuna direction
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
    if text in GROUPS:
        fields = ", ".join(GROUPS[text].model_fields)
        raise SpaceError(
            loc,
            f"'{text}' is a group of settings; search its fields one by one as {text}.<field> "
            f"(fields: {fields})",
        )
    group, _, sub = text.partition(".")
    if sub and group in GROUPS:
        fields = list(GROUPS[group].model_fields)
        raise SpaceError(
            loc,
            f"unknown parameter '{text}'{did_you_mean(text, [f'{group}.{f}' for f in fields])}; "
            f"{group} fields: {', '.join(fields)}",
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


def _reason(err: ErrorDetails) -> str:
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
                yield loc, f"the train stage rejects {which} {value!r}: {_reason(err)}"
                break


def fixed_names(fixed: Mapping[str, Any]) -> set[str]:
    """The searchable names the stage also sets to a fixed value."""
    names = set()
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


# -- the stage ----------------------------------------------------------------------------------


class TuneParams(TrainParams):
    """The search, plus any train argument fixed for every trial."""

    space: dict[str, Any] = Field(
        default_factory=dict,
        description="parameter: {float: [low, high], log, step} | {int: [low, high], log, step} "
        "| {categorical: [a, b, ...]}",
    )
    sampler: Literal["tpe", "random", "nsga2"] = "tpe"
    n_trials: int = Field(8, ge=1, le=10_000, description="trials in the study, 1..10000")
    timeout: float | None = Field(
        None, gt=0, description="seconds after which no new trial starts (this run)"
    )
    prune: bool | None = Field(
        None, description="stop poor trials early (MedianPruner); default: on for one objective"
    )
    prune_startup_trials: int = Field(
        5, ge=0, le=10_000, description="finished trials before any trial may be pruned"
    )
    prune_warmup_epochs: int | None = Field(
        None,
        ge=0,
        le=10_000,
        description="epochs before a trial may be pruned; default: early_stopping.start_from_epoch",
    )
    objectives: list[str] = Field(
        default_factory=lambda: [QUALITY],
        min_length=1,
        description="val_accuracy, optionally with params, tflite_bytes or macs",
    )


def _fixed_train_args(params: TuneParams) -> dict[str, Any]:
    """The train arguments this stage sets for every trial (not the search settings)."""
    set_here = params.model_dump(mode="json", exclude_unset=True)
    # `augment: null` (or any key written as null) means "not set": the recipe's default applies.
    out = {k: v for k, v in set_here.items() if k in TrainParams.model_fields and v is not None}
    for group in GROUPS:  # only the group fields actually written count as fixed
        if group in out:
            given = getattr(params, group).model_fields_set
            out[group] = {k: v for k, v in out[group].items() if k in given}
    return out


@stages.register("tune")
class TuneStage(Stage):
    """Search train arguments with Optuna; keep the best trial's model (or the Pareto front)."""

    Params = TuneParams
    accepts = ("none",)
    trains = True
    role = "improve"
    examples = ()

    @classmethod
    def is_training(cls, params: Any) -> bool:
        return True

    @classmethod
    def check(cls, stage: StageConfig, recipe: Recipe) -> Iterable[tuple[Loc, str]]:
        p: TuneParams = stage.params  # type: ignore[assignment]
        where: Loc = ("pipeline", stage.index)
        for loc, message in objective_problems(p.objectives, p.prune):
            yield (*where, *loc), message
        fixed = _fixed_train_args(p)
        problems = space_problems(p.space, fixed)
        for loc, message in problems:
            yield (*where, *loc), message
        if problems:
            return
        spec = train_spec(p, recipe)
        if spec.epochs < 1 and "epochs" not in p.space:
            loc = (*where, "epochs") if p.epochs is not None else ("train", "epochs")
            yield loc, f"every trial trains: epochs must be >= 1 (got {spec.epochs})"
        base = list(check_model_and_training(stage, recipe, spec, model_args(p, recipe)))
        yield from base
        if base:
            return
        # Each end of each range must also suit the model family and the data kind.
        for dim in parse_space(p.space):
            for which, value in dim.values_to_check():
                at = TrainParams.model_validate(assign(fixed, dim.name, value))
                at_stage = StageConfig(kind=stage.kind, index=stage.index, params=at)
                found = check_model_and_training(
                    at_stage, recipe, train_spec(at, recipe), model_args(at, recipe)
                )
                for _, message in found:
                    yield (*where, "space", dim.name, dim.kind), f"{which} {value!r}: {message}"
                    break

    @classmethod
    def warnings(cls, stage: StageConfig, recipe: Recipe) -> Iterable[tuple[Loc, str]]:
        p: TuneParams = stage.params  # type: ignore[assignment]
        if len(p.objectives) > 1 and stage.index != recipe.pipeline[-1].index:
            yield (
                ("pipeline", stage.index, "objectives"),
                "multi-objective tune is not the last stage: only its best-val_accuracy Pareto "
                "trial continues to the next stages and the other Pareto-optimal trials get no "
                "rows; make tune the last stage to measure them all",
            )

    @classmethod
    def resolve(cls, stage: StageConfig, recipe: Recipe) -> dict[str, Any]:
        p: TuneParams = stage.params  # type: ignore[assignment]
        spec = train_spec(p, recipe)
        prune = p.prune if p.prune is not None else len(p.objectives) == 1
        warmup = p.prune_warmup_epochs
        return {
            "model": model_spec(p, recipe),
            "train": spec.model_dump(mode="json"),
            "space": p.model_dump(mode="json")["space"],
            "sampler": p.sampler,
            "n_trials": p.n_trials,
            "timeout": p.timeout,
            "objectives": list(p.objectives),
            "prune": prune,
            "prune_startup_trials": p.prune_startup_trials,
            "prune_warmup_epochs": (
                warmup if warmup is not None else spec.early_stopping.start_from_epoch
            ),
        }

    @classmethod
    def describe(cls, params: Any) -> str:
        p: TuneParams = params
        changed = p.model_dump(exclude_unset=True, mode="json")
        changed.pop("space", None)
        args = "".join(f", {k}={v}" for k, v in changed.items())
        return f"tune(space={'|'.join(map(str, p.space))}{args})"

    # -- running ---------------------------------------------------------------------------------
    def run(self, parent: Artifact | None, ctx: StageContext) -> StageResult:
        import optuna

        verbosity = optuna.logging.get_verbosity()
        optuna.logging.set_verbosity(optuna.logging.ERROR)  # one line per failure is ours to say
        try:
            return self._search(ctx)
        finally:
            optuna.logging.set_verbosity(verbosity)

    def _search(self, ctx: StageContext) -> StageResult:
        import optuna
        from optuna.trial import TrialState

        r = self.resolved
        dims = parse_space(r["space"])
        objectives: list[str] = r["objectives"]
        prefix = str(getattr(ctx, "node_key", "") or "tune")[:16]
        workdir = getattr(ctx, "workdir", None)
        storage = None
        if workdir is not None:
            workdir = Path(workdir)
            workdir.mkdir(parents=True, exist_ok=True)
            for leftover in workdir.glob(f".{prefix}_trial*.tmp.keras"):  # a killed save
                leftover.unlink(missing_ok=True)
            storage = f"sqlite:///{workdir / f'{prefix}.sqlite3'}"
        pruner = (
            optuna.pruners.MedianPruner(
                n_startup_trials=r["prune_startup_trials"], n_warmup_steps=r["prune_warmup_epochs"]
            )
            if r["prune"]
            else optuna.pruners.NopPruner()
        )
        name = f"tune-{prefix}"
        if storage is not None:
            _fail_stale_trials(storage, name)
        study = optuna.create_study(
            storage=storage,
            study_name=name,
            directions=[OBJECTIVES[o] for o in objectives],
            pruner=pruner,
            load_if_exists=True,
        )
        finished = (TrialState.COMPLETE, TrialState.PRUNED)
        done = len(study.get_trials(deepcopy=False, states=finished))
        before = len(study.get_trials(deepcopy=False))
        # Seeded from the recipe's seed and the trials so far: a resumed study does not repeat
        # the first run's suggestions.
        study.sampler = _sampler(r["sampler"], ctx.seed + before)
        models: dict[int, Any] = {}  # trial number -> model, when there is no workdir
        if r["n_trials"] > done:
            study.optimize(
                lambda trial: self._objective(
                    trial, dims, objectives, ctx, workdir, prefix, models
                ),
                n_trials=r["n_trials"] - done,
                timeout=r["timeout"],
                callbacks=[lambda study, trial: _keep_front(study, workdir, prefix, models)],
            )
        ran = len(study.get_trials(deepcopy=False)) - before
        return self._result(study, objectives, ctx, workdir, prefix, models, ran)

    def _objective(
        self,
        trial: Any,
        dims: list[Dimension],
        objectives: list[str],
        ctx: StageContext,
        workdir: Path | None,
        prefix: str,
        models: dict[int, Any],
    ) -> Any:
        """Train one trial; its values in `objectives` order (NaN marks a failed trial)."""
        values = {dim.name: dim.suggest(trial) for dim in dims}
        callbacks = [_pruning_callback(trial)] if self.resolved["prune"] else []
        start = time.perf_counter()
        try:
            model, report = self._train(values, ctx, callbacks)
        except StageFailed as exc:  # e.g. diverged at a high learning rate: the search goes on
            trial.set_user_attr("error", str(exc))
            return _nan(objectives)
        finally:
            trial.set_user_attr("train_seconds", time.perf_counter() - start)
        trial.set_user_attr("epochs_run", report.epochs_run)
        trial.set_user_attr("best_epoch", report.best_epoch)
        trial.set_user_attr("val_loss", report.best_val_loss)
        scores = {QUALITY: report.best_val_accuracy, **footprint(model, objectives)}
        for name, value in scores.items():
            trial.set_user_attr(name, value)
        if workdir is not None:  # saved before the trial completes: complete implies saved
            final = _trial_file(workdir, prefix, trial.number)
            tmp = workdir / f".{prefix}_trial{trial.number}.{os.getpid()}.tmp.keras"
            model.save(tmp)
            os.replace(tmp, final)
        else:
            models[trial.number] = model
        out = [scores[o] for o in objectives]
        return out[0] if len(out) == 1 else out

    def _train(
        self, values: Mapping[str, Any], ctx: StageContext, callbacks: list[Any]
    ) -> tuple[Any, FitReport]:
        """Build the family with these values and train it like the train stage does."""
        r = self.resolved
        args, train = apply_values(r["model"]["args"], r["train"], values)
        family = families.get(r["model"]["family"])
        try:
            family_params = family.Params.model_validate(args)
            spec = TrainSpec.model_validate(train)
        except ValidationError as exc:
            err = exc.errors(include_url=False)[0]
            where = ".".join(map(str, err["loc"]))
            raise StageFailed(
                f"trial values {dict(values)} rejected: {where} {_reason(err)}"
            ) from None
        try:
            model = family().build(family_params, ctx.data.input_shape, ctx.data.num_classes)
        except ValueError as exc:
            raise StageFailed(f"cannot build '{family.name}': {exc}") from None
        compile_classifier(model, spec, steps_per_epoch(len(ctx.data.y_train), spec.batch_size))
        report = fit(model, ctx, spec, extra_callbacks=callbacks)
        return model, report

    def _model_of(
        self,
        trial: Any,
        ctx: StageContext,
        workdir: Path | None,
        prefix: str,
        models: dict[int, Any],
        retrained: list[int],
    ) -> Any:
        """A finished trial's trained model: in memory, from its file, or (its file lost)
        retrained once from its parameters with the same seed."""
        from effcli._tf import keras

        if trial.number in models:
            return models[trial.number]
        if workdir is not None and _trial_file(workdir, prefix, trial.number).is_file():
            path = _trial_file(workdir, prefix, trial.number)
            return keras.models.load_model(path, compile=False)
        model, _ = self._train(trial.params, ctx, [])
        retrained.append(trial.number)
        return model

    def _result(
        self,
        study: Any,
        objectives: list[str],
        ctx: StageContext,
        workdir: Path | None,
        prefix: str,
        models: dict[int, Any],
        ran: int,
    ) -> StageResult:
        from optuna.trial import TrialState

        trials = study.get_trials(deepcopy=False)
        complete = [t for t in trials if t.state == TrialState.COMPLETE]
        if not complete:
            errors = [t.user_attrs["error"] for t in trials if "error" in t.user_attrs]
            reason = f"; last error: {errors[-1]}" if errors else ""
            raise StageFailed(f"no trial of {len(trials)} completed{reason}")
        front = _ranked(study.best_trials, objectives)
        best, others = front[0], (front[1:] if len(objectives) > 1 else [])
        retrained: list[int] = []
        model = self._model_of(best, ctx, workdir, prefix, models, retrained)
        quality = objectives.index(QUALITY)
        alternatives = [
            Alternative(
                name=f"t{t.number}",
                artifact=KerasModel(self._model_of(t, ctx, workdir, prefix, models, retrained)),
                metrics={"tune_trial": t.number, "tune_val_accuracy": t.values[quality]},
                info={"params": t.params, "values": dict(zip(objectives, t.values, strict=True))},
            )
            for t in sorted(others, key=lambda t: t.number)
        ]
        finished = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
        metrics: dict[str, float] = {
            "tune_trials": len(finished),
            "tune_best_val_accuracy": best.values[quality],
            "tune_best_trial": best.number,
            "tune_trial": best.number,
            "tune_val_accuracy": best.values[quality],
        }
        if len(objectives) > 1:
            metrics["tune_pareto_trials"] = len(front)
            info_front = {"pareto_trials": [t.number for t in front]}
        else:
            info_front = {}
        return StageResult(
            artifact=KerasModel(model),
            metrics=metrics,
            info={
                "best_params": best.params,
                "best_values": dict(zip(objectives, best.values, strict=True)),
                "objectives": objectives,
                **info_front,
                "trials_run_now": ran,
                "retrained_trials": retrained,
                "storage": str(workdir / f"{prefix}.sqlite3") if workdir is not None else None,
                "trials": [_trial_info(t) for t in trials],
            },
            train_seconds=sum(float(t.user_attrs.get("train_seconds", 0.0)) for t in trials),
            alternatives=alternatives,
        )


# -- helpers that need Optuna or TensorFlow (imported when called) ------------------------------


def _sampler(name: str, seed: int) -> Any:
    import optuna

    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def _fail_stale_trials(storage: str, name: str) -> None:
    """Mark trials left RUNNING by a killed process as failed, so they count as not done.

    Safe because a node runs in one process at a time (the run directory's lock).
    """
    import optuna
    from optuna.trial import TrialState

    rdb = optuna.storages.RDBStorage(storage)
    try:
        study_id = rdb.get_study_id_from_name(name)
    except KeyError:  # a new study
        return
    for trial in rdb.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,)):
        rdb.set_trial_state_values(trial._trial_id, TrialState.FAIL)


def _pruning_callback(trial: Any) -> Any:
    """A keras callback reporting each epoch's val_accuracy to Optuna; raises TrialPruned when
    the pruner says this trial is worse than the median of earlier ones at that epoch."""
    import optuna

    from effcli._tf import keras

    class OptunaPruning(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
            value = (logs or {}).get(QUALITY)
            if value is None:
                return
            trial.report(float(value), step=epoch + 1)
            if trial.should_prune():
                raise optuna.TrialPruned(f"epoch {epoch + 1}: val_accuracy {float(value):.4f}")

    return OptunaPruning()


def footprint(model: Any, objectives: list[str]) -> dict[str, float]:
    """The footprint objectives of a trained model: Keras parameter count, float TFLite bytes,
    MACs of that file."""
    out: dict[str, float] = {}
    if "params" in objectives:
        out["params"] = float(model.count_params())
    if "tflite_bytes" in objectives or "macs" in objectives:
        from effcli.measure.flatbuffer import model_stats

        content = KerasModel(model).to_tflite().content
        out["tflite_bytes"] = float(len(content))
        if "macs" in objectives:
            out["macs"] = float(model_stats(content).macs)
    return {k: v for k, v in out.items() if k in objectives}


def _nan(objectives: list[str]) -> Any:
    return float("nan") if len(objectives) == 1 else [float("nan")] * len(objectives)


def _trial_file(workdir: Path, prefix: str, number: int) -> Path:
    return workdir / f"{prefix}_trial{number}.keras"


def _ranked(front: list[Any], objectives: list[str]) -> list[Any]:
    """Pareto trials, best val_accuracy first; ties go to the smaller footprint, then the
    earlier trial."""
    quality = objectives.index(QUALITY)

    def key(t: Any) -> tuple[Any, ...]:
        rest = [v for i, v in enumerate(t.values) if i != quality]  # all minimized
        return (-t.values[quality], *rest, t.number)

    return sorted(front, key=key)


def _keep_front(study: Any, workdir: Path | None, prefix: str, models: dict[int, Any]) -> None:
    """Drop the models of trials off the Pareto front (a dominated trial stays dominated)."""
    keep = {t.number for t in study.best_trials}
    for number in [n for n in models if n not in keep]:
        del models[number]
    if workdir is not None:
        for path in workdir.glob(f"{prefix}_trial*.keras"):
            number = path.stem.rsplit("_trial", 1)[-1]
            if number.isdigit() and int(number) not in keep:
                path.unlink(missing_ok=True)


def _trial_info(trial: Any) -> dict[str, Any]:
    attrs = trial.user_attrs
    info: dict[str, Any] = {
        "number": trial.number,
        "state": trial.state.name,
        "values": trial.values,
        "params": trial.params,
        "train_seconds": attrs.get("train_seconds"),
    }
    if "error" in attrs:
        info["error"] = attrs["error"]
    if trial.state.name == "PRUNED" and trial.intermediate_values:
        info["pruned_at_epoch"] = max(trial.intermediate_values)
    return info
