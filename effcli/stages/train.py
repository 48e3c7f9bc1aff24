"""Grow: build the model family (at a width multiplier) and train it from scratch."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

from pydantic import Field, ValidationError

from effcli.artifacts import Artifact, KerasModel
from effcli.data.base import datasets
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
from effcli.stages._training import compile_classifier, fit, steps_per_epoch
from effcli.stages.base import Stage, StageContext, StageParams, StageResult, stages

GROW_KNOBS = ("width_multiplier", "depth_multiplier", "resolution_multiplier", "compound_phi")
TRAIN_KEYS = tuple(TrainSpec.model_fields)


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


def model_args(params: Any, recipe: Recipe) -> dict[str, Any]:
    """The recipe's model args with this stage's grow knobs on top."""
    args = dict(recipe.model.args)
    for knob in GROW_KNOBS:
        value = getattr(params, knob, None)
        if value is not None:
            args[knob] = value
    return args


def model_spec(params: Any, recipe: Recipe) -> dict[str, Any]:
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


def train_spec(params: Any, recipe: Recipe) -> TrainSpec:
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


@stages.register("train")
class TrainStage(Stage):
    """Train the recipe's model family on the training split, selecting on validation."""

    Params = TrainParams
    accepts = ("none",)
    trains = True
    role = "grow"  # builds the (scaled) model every other stage starts from

    @classmethod
    def check(cls, stage: StageConfig, recipe: Recipe) -> Iterable[tuple[tuple[Any, ...], str]]:
        spec = train_spec(stage.params, recipe)
        yield from check_model_and_training(stage, recipe, spec, model_args(stage.params, recipe))

    @classmethod
    def resolve(cls, stage: StageConfig, recipe: Recipe) -> dict[str, Any]:
        return {
            "model": model_spec(stage.params, recipe),
            "train": train_spec(stage.params, recipe).model_dump(mode="json"),
        }

    def run(self, parent: Artifact | None, ctx: StageContext) -> StageResult:
        family = families.get(self.resolved["model"]["family"])
        family_params = family.Params.model_validate(self.resolved["model"]["args"])
        spec = TrainSpec.model_validate(self.resolved["train"])
        try:
            model = family().build(family_params, ctx.data.input_shape, ctx.data.num_classes)
        except ValueError as exc:
            raise StageFailed(f"cannot build '{family.name}': {exc}") from None
        compile_classifier(model, spec, steps_per_epoch(len(ctx.data.y_train), spec.batch_size))
        report = fit(model, ctx, spec)
        return StageResult(
            artifact=KerasModel(model),
            metrics={"train_epochs": report.epochs_run, "train_best_epoch": report.best_epoch},
            info={
                "best_val_accuracy": report.best_val_accuracy,
                "epochs_run": report.epochs_run,
                "best_epoch": report.best_epoch,
                "params": int(model.count_params()),
            },
            train_seconds=report.seconds,
        )
