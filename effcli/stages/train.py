"""Grow: build the model family (at a width multiplier) and train it from scratch."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

from pydantic import Field, ValidationError

from effcli.artifacts import Artifact, KerasModel
from effcli.data.base import datasets
from effcli.errors import StageFailed
from effcli.models.base import families
from effcli.recipe.schema import EarlyStoppingSpec, Recipe, StageConfig
from effcli.stages._training import compile_classifier, fit
from effcli.stages.base import Stage, StageContext, StageParams, StageResult, stages


class TrainParams(StageParams):
    """Overrides of the recipe's `model` and `train` sections for this stage."""

    width_multiplier: float | None = Field(
        None, gt=0, le=16, description="a positive scale of the model's width, e.g. 0.5"
    )
    epochs: int | None = Field(None, ge=1, le=10_000, description="a whole number, 1..10000")
    batch_size: int | None = Field(None, ge=1, le=65_536, description="a whole number, 1..65536")
    optimizer: Literal["adam", "adamw", "sgd", "rmsprop"] | None = None
    learning_rate: float | None = Field(None, gt=0, le=10, description="a positive number")
    early_stopping: EarlyStoppingSpec | None = None


def _model_args(params: TrainParams, recipe: Recipe) -> dict[str, Any]:
    args = dict(recipe.model.args)
    if params.width_multiplier is not None:
        args["width_multiplier"] = params.width_multiplier
    return args


@stages.register("train")
class TrainStage(Stage):
    """Train the recipe's model family on the training split, selecting on validation."""

    Params = TrainParams
    accepts = ("none",)
    trains = True
    role = "grow"  # builds the (scaled) model every other stage starts from

    @classmethod
    def check(cls, stage: StageConfig, recipe: Recipe) -> Iterable[tuple[tuple[Any, ...], str]]:
        family = families.get(recipe.model.family)
        try:
            family.Params.model_validate(_model_args(stage.params, recipe))  # type: ignore[arg-type]
        except ValidationError as exc:
            err = exc.errors(include_url=False)[0]
            yield (
                ("pipeline", stage.index, *err["loc"]),
                (f"model family '{family.name}' rejects this: {err['msg']}"),
            )
        kind = datasets.get(recipe.data.source).kind
        if kind not in family.data_kinds:
            yield (
                ("model", "family"),
                (
                    f"family '{family.name}' takes {' or '.join(family.data_kinds)} data, but "
                    f"'{recipe.data.source}' is {kind} data; choose another family"
                ),
            )

    @classmethod
    def resolve(cls, stage: StageConfig, recipe: Recipe) -> dict[str, Any]:
        params = stage.params
        assert isinstance(params, TrainParams)
        train = recipe.train.model_copy(
            update={
                k: v
                for k, v in params.model_dump().items()
                if k != "width_multiplier" and v is not None
            }
        )
        if params.early_stopping is not None:
            train = train.model_copy(update={"early_stopping": params.early_stopping})
        return {
            "model": {"family": recipe.model.family, "args": _model_args(params, recipe)},
            "train": train.model_dump(mode="json"),
        }

    def run(self, parent: Artifact | None, ctx: StageContext) -> StageResult:
        family = families.get(self.resolved["model"]["family"])
        family_params = family.Params.model_validate(self.resolved["model"]["args"])
        train = self.resolved["train"]
        try:
            model = family().build(family_params, ctx.data.input_shape, ctx.data.num_classes)
        except ValueError as exc:
            raise StageFailed(f"cannot build '{family.name}': {exc}") from None
        compile_classifier(model, train["optimizer"], train["learning_rate"])
        report = fit(
            model,
            ctx,
            epochs=train["epochs"],
            batch_size=train["batch_size"],
            early_stopping=EarlyStoppingSpec.model_validate(train["early_stopping"]),
        )
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
