"""What the stages that train share (not a stage itself): their arguments, the model and
training spec they resolve to, the plan-time checks, and building the model family.

`train`, `distill` and `tune` build a model from the family and train it (TrainParams: the grow
knobs, train overrides and `train_fraction`, a nested subset of the training split); `prune`, `cluster`, `low_rank` and `quantize` (QAT) fine-tune their
parent (FineTuneParams: epochs and learning rate, the rest from the recipe's `train`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError

from effcli.data.base import DataError, datasets
from effcli.data.subset import train_subset
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
from effcli.stages._pipeline import augment_problems
from effcli.stages.base import StageContext, StageParams

GROW_KNOBS = ("width_multiplier", "depth_multiplier", "resolution_multiplier", "compound_phi")
TRAIN_KEYS = tuple(TrainSpec.model_fields)
# Arguments that choose the data a stage trains on, not the model or its training: not searchable
# by `tune` (validation accuracy would always pick the whole split).
DATA_ARGS = ("train_fraction",)

FineTuneEpochs = Annotated[int, Field(ge=1, le=10_000, description="fine-tune epochs, >= 1")]
FineTuneRate = Annotated[float, Field(gt=0, le=10, description="fine-tune learning rate")]


class FineTuneParams(StageParams):
    """A stage that fine-tunes its parent: for how long and at which rate (stages override the
    defaults); batch size, optimizer, decay, smoothing and augmentation come from `train`."""

    epochs: FineTuneEpochs = 3
    learning_rate: FineTuneRate = 1e-4


class TrainParams(StageParams):
    """Overrides of the recipe's `model` args (the grow knobs) and `train` section."""

    width_multiplier: float | None = Field(
        None, gt=0, le=16, description="a positive scale of the model's width, e.g. 0.5"
    )
    depth_multiplier: float | None = Field(
        None, gt=0, le=16, description="a positive scale of the model's depth (repeated blocks)"
    )
    resolution_multiplier: float | None = Field(
        None, gt=0, le=16, description="a positive scale of the input resolution"
    )
    compound_phi: float | None = Field(
        None, ge=-8, le=8, description="EfficientNet compound scaling exponent, e.g. 1"
    )
    epochs: int | None = Field(
        None, ge=0, le=10_000, description="0..10000; 0 keeps the model as built or loaded"
    )
    batch_size: int | None = Field(None, ge=1, le=65_536, description="a whole number, 1..65536")
    optimizer: Literal["adam", "adamw", "sgd", "rmsprop"] | None = None
    learning_rate: float | None = Field(None, gt=0, le=10, description="a positive number")
    weight_decay: float | None = Field(None, ge=0, le=1, description="decoupled weight decay")
    label_smoothing: float | None = Field(None, ge=0, lt=1, description="a fraction in [0, 1)")
    lr_schedule: LRScheduleSpec | None = None
    augment: AugmentSpec | None = None
    early_stopping: EarlyStoppingSpec | None = None
    train_fraction: float = Field(
        1.0,
        gt=0,
        le=1,
        description="share of the training split to train on, 0 < f <= 1 (a stratified, "
        "seeded, nested subset; val and test unchanged)",
    )


def fraction_resolved(params: TrainParams) -> dict[str, Any]:
    """`{"train_fraction": f}` for a stage's resolved arguments when it trains on a subset; empty
    for the whole split, so every node key made before `train_fraction` existed stays valid."""
    return {} if params.train_fraction == 1 else {"train_fraction": params.train_fraction}


def fraction_context(resolved: Mapping[str, Any], ctx: StageContext) -> StageContext:
    """`ctx` with its training split cut to the resolved `train_fraction` (data.subset), seeded by
    the node's seed: every fraction of a replicate draws from the same order, so they nest. Too
    small a fraction fails the node (the runner puts the stage's name before the reason)."""
    fraction = float(resolved.get("train_fraction", 1.0))
    try:
        data = train_subset(ctx.data, fraction, ctx.seed)
    except DataError as exc:
        raise StageFailed(str(exc)) from None
    return ctx if data is ctx.data else dataclasses.replace(ctx, data=data)


def model_args(params: TrainParams, recipe: Recipe) -> dict[str, Any]:
    """The recipe's model args with this stage's grow knobs on top."""
    args = dict(recipe.model.args)
    for knob in GROW_KNOBS:
        value = getattr(params, knob, None)
        if value is not None:
            args[knob] = value
    return args


def model_spec(params: TrainParams, recipe: Recipe) -> dict[str, Any]:
    """Family, arguments and fingerprint (e.g. a model file's hash): all that decides the model."""
    args = model_args(params, recipe)
    family = families.get(recipe.model.family)
    spec: dict[str, Any] = {"family": recipe.model.family, "args": args}
    try:
        fingerprint = family.fingerprint(family.Params.model_validate(args))
    except ValidationError:
        fingerprint = {}  # reported by check()
    if fingerprint:
        spec["fingerprint"] = fingerprint
    return spec


def train_spec(params: TrainParams, recipe: Recipe) -> TrainSpec:
    """The recipe's `train` section with this stage's overrides on top."""
    overrides = {k: getattr(params, k) for k in TRAIN_KEYS if getattr(params, k, None) is not None}
    return recipe.train.model_copy(update=overrides)


def data_kind(recipe: Recipe) -> str | None:
    """The recipe's data kind (image/sequence/tabular) if known before loading."""
    dataset = datasets.get(recipe.data.source)
    return dataset.data_kind(recipe.data.params, recipe.source_dir or ".")


def check_model_and_training(
    stage: StageConfig, recipe: Recipe, spec: TrainSpec, args: dict[str, Any]
) -> Iterable[tuple[tuple[Any, ...], str]]:
    """The family accepts these args and this data kind; augmentations fit the data kind."""
    family = families.get(recipe.model.family)
    try:
        family.Params.model_validate(args)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        yield (
            ("pipeline", stage.index, *err["loc"]),
            f"model family '{family.name}' rejects this: {err['msg']}",
        )
    kind = data_kind(recipe)
    if kind is None:  # only known once the data is loaded
        return
    if kind not in family.data_kinds:
        yield (
            ("model", "family"),
            f"family '{family.name}' takes {' or '.join(family.data_kinds)} data, but "
            f"'{recipe.data.source}' is {kind} data; choose another family",
        )
    own = getattr(stage.params, "augment", None) is not None
    for key, message in augment_problems(spec.augment, kind):
        where = ("pipeline", stage.index, "augment", key) if own else ("train", "augment", key)
        yield where, message


def check_trains(
    stage: StageConfig, params: TrainParams, recipe: Recipe
) -> Iterable[tuple[tuple[Any, ...], str]]:
    """`check_model_and_training` for a stage whose arguments are `params`."""
    yield from check_model_and_training(
        stage, recipe, train_spec(params, recipe), model_args(params, recipe)
    )


def build_model(model: Mapping[str, Any], ctx: StageContext) -> Any:
    """The resolved model spec (`model_spec`) built for the data, uncompiled; a family that
    cannot build it fails the node in one line."""
    family = families.get(model["family"])
    params = family.Params.model_validate(model["args"])
    try:
        return family().build(params, ctx.data.input_shape, ctx.data.num_classes)
    except ValueError as exc:
        raise StageFailed(f"cannot build '{family.name}': {exc}") from None


def fine_tune_resolved(stage: StageConfig, recipe: Recipe) -> dict[str, Any]:
    """A fine-tuning stage's arguments plus what it trains with from the recipe's `train`:
    batch size, optimizer, weight decay, label smoothing and augmentation."""
    resolved = stage.params.model_dump(mode="json")
    train = recipe.train
    resolved.update(
        batch_size=train.batch_size,
        optimizer=train.optimizer,
        weight_decay=train.weight_decay,
        label_smoothing=train.label_smoothing,
        augment=train.augment.active(),
    )
    return resolved


def fine_tune_spec(resolved: Mapping[str, Any], *, learning_rate: float, epochs: int) -> TrainSpec:
    """The TrainSpec of a fixed-length fine-tune: no early stop, best validation epoch kept."""
    return TrainSpec(
        epochs=epochs,
        batch_size=resolved["batch_size"],
        optimizer=resolved["optimizer"],
        learning_rate=learning_rate,
        weight_decay=resolved.get("weight_decay", 0.0),
        label_smoothing=resolved.get("label_smoothing", 0.0),
        augment=AugmentSpec(**resolved.get("augment", {})),
        early_stopping=EarlyStoppingSpec(enabled=False, restore_best=True),
    )
