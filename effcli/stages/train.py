"""Grow: build the model family (at a width multiplier) and train it from scratch."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from effcli.artifacts import Artifact, KerasModel
from effcli.recipe.schema import Recipe, StageConfig, TrainSpec
from effcli.stages._label import tokens
from effcli.stages._train_spec import (
    TrainParams,
    build_model,
    check_trains,
    fraction_context,
    fraction_resolved,
    model_spec,
    train_spec,
)
from effcli.stages._training import compile_classifier, fit, steps_per_epoch
from effcli.stages.base import Stage, StageContext, StageResult, stages


@stages.register("train")
class TrainStage(Stage[TrainParams]):
    """Train the recipe's model family on the training split, selecting on validation."""

    Params = TrainParams
    accepts = ("none",)
    trains = True
    role = "grow"  # builds the (scaled) model every other stage starts from
    examples = ({"width_multiplier": 0.125, "epochs": 2},)

    @classmethod
    def label_token(cls, params: TrainParams, varying: Mapping[str, Any]) -> str:
        return " ".join(tokens(varying))  # every variant trains: only what varies is news

    @classmethod
    def check(cls, stage: StageConfig, recipe: Recipe) -> Iterable[tuple[tuple[Any, ...], str]]:
        yield from check_trains(stage, cls.params_of(stage), recipe)

    @classmethod
    def resolve(cls, stage: StageConfig, recipe: Recipe) -> dict[str, Any]:
        params = cls.params_of(stage)
        return {
            "model": model_spec(params, recipe),
            "train": train_spec(params, recipe).model_dump(mode="json"),
            **fraction_resolved(params),
        }

    def run(self, parent: Artifact | None, ctx: StageContext) -> StageResult:
        spec = TrainSpec.model_validate(self.resolved["train"])
        ctx = fraction_context(self.resolved, ctx)
        model = build_model(self.resolved["model"], ctx)
        compile_classifier(model, spec, steps_per_epoch(len(ctx.data.y_train), spec.batch_size))
        report = fit(model, ctx, spec)
        return StageResult(
            artifact=KerasModel(model),
            metrics={
                "train_epochs": report.epochs_run,
                "train_best_epoch": report.best_epoch,
                "train_samples": len(ctx.data.y_train),
            },
            info={
                "best_val_accuracy": report.best_val_accuracy,
                "epochs_run": report.epochs_run,
                "best_epoch": report.best_epoch,
                "params": int(model.count_params()),
            },
            train_seconds=report.seconds,
        )
