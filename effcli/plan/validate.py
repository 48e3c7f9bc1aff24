"""Validate one concrete recipe document and turn pydantic errors into one-line recipe errors."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path
from typing import Any, get_args

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from effcli.data.base import datasets
from effcli.errors import RecipeError
from effcli.models.base import families
from effcli.recipe.schema import (
    DataConfig,
    ModelConfig,
    ModelDoc,
    Recipe,
    RecipeDoc,
    StageConfig,
)
from effcli.recipe.source import Loc, RecipeSource
from effcli.registry import UnknownName, did_you_mean
from effcli.stages.base import stages

_EXPECTED = {
    "int": "a whole number",
    "float": "a number",
    "bool": "true or false",
    "string": "a string",
    "dict": "a mapping (key: value)",
    "list": "a list",
    "model": "a mapping (key: value)",
    "literal": "one of the listed values",
}
_BOUNDS = {
    "greater_than": (">", "gt"),
    "greater_than_equal": (">=", "ge"),
    "less_than": ("<", "lt"),
    "less_than_equal": ("<=", "le"),
}


def _model_at(model: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The pydantic model that holds the field at `loc` (for key lists and descriptions)."""
    current: type[BaseModel] | None = model
    for part in loc:
        if current is None:
            return None
        if isinstance(part, int):
            continue
        field = current.model_fields.get(str(part))
        if field is None:
            return None
        nested = field.annotation
        candidates = [nested, *get_args(nested)]
        current = next(
            (c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None
        )
    return current


def _describe(err: ErrorDetails, model: type[BaseModel], also_allowed: tuple[str, ...] = ()) -> str:
    """What is wrong and what is allowed, in words a recipe author can act on."""
    kind, loc, ctx = err["type"], err["loc"], err.get("ctx") or {}
    got = err.get("input")
    owner = _model_at(model, loc[:-1]) if loc else model
    field = owner.model_fields.get(str(loc[-1])) if owner and loc else None
    hint = field.description if field is not None else None
    if kind == "extra_forbidden":
        allowed = (
            sorted([*owner.model_fields, *(also_allowed if owner is model else ())])
            if owner
            else []
        )
        return (
            f"unknown key '{loc[-1]}'{did_you_mean(str(loc[-1]), allowed)}; "
            f"allowed keys: {', '.join(allowed)}"
        )
    if kind == "missing":
        return f"missing required key '{loc[-1]}'" + (f" ({hint})" if hint else "")
    if kind == "dict_type" and loc[:1] == ("pipeline",) and len(loc) == 2 and isinstance(got, str):
        # `- train` instead of `- stage: train`: the name is there, the mapping is not.
        return f"a stage is a mapping, not a name: write {{stage: {got}}} (got {got!r})"
    if kind in _BOUNDS:
        op, key = _BOUNDS[kind]
        text = f"must be {op} {ctx.get(key)} (got {got!r})"
    elif kind == "literal_error":
        return f"must be one of {ctx.get('expected')} (got {got!r})"
    elif kind == "string_pattern_mismatch":
        text = f"invalid value {got!r}"
    elif kind == "too_short":
        text = f"needs at least {ctx.get('min_length')} item(s)"
    elif kind in ("value_error", "assertion_error"):
        return str(ctx.get("error", err["msg"]))
    elif kind == "int_from_float":
        text = f"expected a whole number (got {got!r})"
    elif kind.endswith(("_parsing", "_type")):
        base = kind.rsplit("_", 1)[0]
        text = f"expected {_EXPECTED.get(base, base)} (got {got!r})"
    else:
        msg = err["msg"]
        text = f"{msg[:1].lower()}{msg[1:]} (got {got!r})"
    return text + (f"; allowed: {hint}" if hint else "")


# What the OS or pathlib raise for a path they refuse (an embedded NUL byte, a name too long, an
# unknown ~user): a plug-in's plan-time check that touches such a path reports it, not a traceback.
_PATH_ERRORS = (OSError, ValueError, RuntimeError)


def _non_string_key(value: Any, loc: Loc) -> Loc | None:
    """The location of the first mapping key below `value` that is not a string, if any."""
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return (*loc, key)
            found = _non_string_key(item, (*loc, key))
            if found:
                return found
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found = _non_string_key(item, (*loc, i))
            if found:
                return found
    return None


class _Collector:
    """Validates parts of one variant, mapping locations back to the source file."""

    def __init__(self, source: RecipeSource, choice: dict[Loc, int]) -> None:
        self.source = source
        self.choice = choice

    def raw_loc(self, loc: Loc) -> Loc:
        """Insert `sweep[i]` after a swept path, so the line is the chosen value's line."""
        for swept, pick in self.choice.items():
            if loc[: len(swept)] == swept:
                return swept + ("sweep", pick) + loc[len(swept) :]
        return loc

    def fail(self, loc: Loc, message: str) -> RecipeError:
        raw = self.raw_loc(loc)
        return self.source.error(raw, message, shown_loc=raw)

    def parse(
        self, model: type[BaseModel], value: Any, prefix: Loc, also_allowed: tuple[str, ...] = ()
    ) -> Any:
        if not isinstance(value, dict):
            raise self.fail(prefix, f"expected a mapping (key: value), got {value!r}")
        try:
            return model.model_validate(value)
        except ValidationError as exc:
            # A typo'd key also makes the real key "missing": report the typo, the root cause.
            errors = sorted(
                exc.errors(include_url=False), key=lambda e: e["type"] != "extra_forbidden"
            )
            err = errors[0]
            loc = prefix + tuple(p for p in err["loc"] if isinstance(p, (str, int)))
            raise self.fail(loc, _describe(err, model, also_allowed)) from None

    def lookup(self, registry: Any, name: Any, loc: Loc) -> Any:
        if not isinstance(name, str):
            raise self.fail(
                loc, f"expected a name, got {name!r}; choose one of: {', '.join(registry.names())}"
            )
        try:
            return registry.get(name)
        except UnknownName as exc:
            raise self.fail(loc, str(exc)) from None

    def problems(
        self, loc: Loc, found: Callable[[], Iterable[tuple[Loc, str]]], prefix: Loc = ()
    ) -> None:
        """Raise the first problem a plug-in's check finds (its locations below `prefix`)."""
        for where, message in self._checked(loc, found):
            raise self.fail(prefix + tuple(where), message)

    def warnings(
        self, loc: Loc, found: Callable[[], Iterable[tuple[Loc, str]]], why: str
    ) -> list[str]:
        """Every problem a plug-in's check finds, as located warning lines ending in `why`."""
        return [str(self.fail(where, f"{msg} ({why})")) for where, msg in self._checked(loc, found)]

    def resolve(self, root: Path, path: str, loc: Loc) -> str:
        """`path` (relative to the recipe's folder) made absolute, or a located error."""
        try:
            return str((root / path).expanduser().resolve())
        except _PATH_ERRORS as exc:
            raise self.fail(
                loc, f"this path cannot be used ({type(exc).__name__}: {exc}); fix the path"
            ) from None

    def _checked(
        self, loc: Loc, found: Callable[[], Iterable[tuple[Loc, str]]]
    ) -> list[tuple[Loc, str]]:
        """What a plug-in's check finds; a path the system refuses is an error located at `loc`
        in either mode (it is wrong everywhere, not just on this machine)."""
        try:
            return [(tuple(where), message) for where, message in found()]
        except ValidationError:
            raise
        except _PATH_ERRORS as exc:
            raise self.fail(
                loc, f"a path in it cannot be used ({type(exc).__name__}: {exc}); fix the path"
            ) from None


def validate_recipe(
    doc: dict[str, Any],
    source: RecipeSource,
    choice: dict[Loc, int],
    require_data: bool = True,
) -> Recipe:
    """Check one concrete document (sweeps already chosen) and build the typed Recipe.

    Without `require_data`, what the source's own check finds on disk (a missing path or
    archive file) is returned as a warning: the recipe is valid, the data is not here."""
    check = _Collector(source, choice)
    top: RecipeDoc = check.parse(RecipeDoc, doc, ())

    data = dict(top.data)
    data_source = data.pop("source", "digits")
    dataset = check.lookup(datasets, data_source, ("data", "source"))
    data_params = check.parse(dataset.Params, data, ("data",), also_allowed=("source",))
    data_check = partial(dataset.check, data_params, source.path.resolve().parent)
    data_warnings: list[str] = []
    if require_data:
        check.problems(("data",), data_check)
    else:
        data_warnings = check.warnings(("data",), data_check, "effdl run needs it there")

    model_doc: ModelDoc = check.parse(ModelDoc, top.model, ("model",))
    model_args = dict(model_doc.args)
    root = source.path.resolve().parent
    if model_doc.factory is not None:  # user code: imported only when a stage builds the model
        family = families.get("factory")
        bad = _non_string_key(model_args, ("model", "args"))
        if bad:  # passed on as keyword arguments, and hashed into node keys
            raise check.fail(
                bad[:-1], f"key {bad[-1]!r} is not a string; quote it ('{bad[-1]}': ...)"
            )
        model_args = {"factory": model_doc.factory, "search_path": str(root), **model_args}
    elif model_doc.path is not None:
        family = families.get("path")
        model_args = {"path": check.resolve(root, model_doc.path, ("model", "path")), **model_args}
    else:
        family = check.lookup(families, model_doc.family or "cnn", ("model", "family"))
    if model_doc.weights is not None:
        if "weights" not in family.Params.model_fields:
            loaders = [
                n for n in families.names() if "weights" in families.get(n).Params.model_fields
            ]
            raise check.fail(
                ("model", "weights"),
                f"family '{family.name}' loads no weights file; families that do: "
                f"{', '.join(loaders)} (or start from a saved model with model.path)",
            )
        weights = check.resolve(root, model_doc.weights, ("model", "weights"))
        model_args = {**model_args, "weights": weights}
    family_params = check.parse(family.Params, model_args, ("model", "args"))
    check.problems(("model",), partial(family.check, family_params), prefix=("model",))

    pipeline: list[StageConfig] = []
    for index, item in enumerate(top.pipeline):
        loc: Loc = ("pipeline", index)
        if not isinstance(item, dict):
            raise check.fail(loc, f"a stage must be a mapping like {{stage: train}}, got {item!r}")
        args = dict(item)
        if "stage" not in args:
            raise check.fail(
                loc, f"missing key 'stage'; choose one of: {', '.join(stages.names())}"
            )
        stage_cls = check.lookup(stages, args.pop("stage"), loc + ("stage",))
        enabled = args.pop("enabled", True)
        if not isinstance(enabled, bool):
            raise check.fail(loc + ("enabled",), f"expected true or false (got {enabled!r})")
        params = check.parse(stage_cls.Params, args, loc, also_allowed=("enabled", "stage"))
        if enabled:
            pipeline.append(StageConfig(kind=stage_cls.name, index=index, params=params))
    if not pipeline:
        raise check.fail(("pipeline",), "every stage is disabled; enable at least one")

    recipe = Recipe(
        name=top.name,
        description=top.description,
        seed=top.seed,
        data=DataConfig(source=dataset.name, params=data_params),
        model=ModelConfig(family=family.name, args=model_args),
        train=top.train,
        pipeline=tuple(pipeline),
        source_dir=source.path.resolve().parent,
        replicates=top.replicates,
        deterministic=top.deterministic,
        baseline=top.baseline,
        measure=top.measure,
    )
    warnings = data_warnings + _check_order(recipe, check)
    return dataclasses.replace(recipe, warnings=tuple(warnings))


def _check_order(recipe: Recipe, check: _Collector) -> list[str]:
    """Each stage must accept what the stage before it produces (e.g. nothing trains a .tflite),
    and passes its own checks; returns the stages' warnings, located in the file."""
    warnings: list[str] = []
    produced = "none"
    previous = "the start of the pipeline"
    for stage in recipe.pipeline:
        cls = stages.get(stage.kind)
        if produced == "none" and "none" not in cls.accepts:
            starters = [name for name in stages.names() if "none" in stages.get(name).accepts]
            raise check.fail(
                ("pipeline", stage.index, "stage"),
                f"'{stage.kind}' needs a model to work on, so it cannot be the first stage; "
                f"start with one of: {', '.join(starters)}",
            )
        if produced not in cls.accepts:
            raise check.fail(
                ("pipeline", stage.index, "stage"),
                f"'{stage.kind}' cannot follow {previous} (it needs "
                f"{' or '.join(cls.accepts)} input, gets {produced}); reorder the pipeline",
            )
        check.problems(("pipeline", stage.index), partial(cls.check, stage, recipe))
        warnings.extend(
            str(check.fail(loc, message)) for loc, message in cls.warnings(stage, recipe)
        )
        produced = cls.output_kind(stage.params)
        previous = f"'{stage.kind}'"
    return warnings
