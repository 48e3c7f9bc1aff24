"""Shrink: TF-MOT magnitude pruning, fine-tuned, stripped, and the sparsity it reached measured.

The schedule is computed from the real number of fine-tune steps: TF-MOT only updates masks at
steps where (step - begin) % frequency == 0 up to end_step, so a schedule longer than the run
silently leaves weights dense. The achieved sparsity is measured, never assumed.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
from pydantic import Field

from effcli.artifacts import Artifact, KerasModel
from effcli.errors import StageFailed
from effcli.recipe.schema import Recipe, StageConfig
from effcli.stages._layers import PRUNABLE, copy_model, select_layers
from effcli.stages._training import fine_tune, fine_tune_resolved, steps_per_epoch
from effcli.stages.base import Stage, StageContext, StageParams, StageResult, stages


class PruneParams(StageParams):
    sparsity: float = Field(
        ge=0, lt=1, description="target fraction of zero weights in pruned kernels, 0 <= s < 1"
    )
    schedule: Literal["polynomial", "constant"] = "polynomial"
    epochs: int = Field(10, ge=1, le=10_000, description="fine-tune epochs, >= 1")
    learning_rate: float = Field(1e-3, gt=0, le=10, description="fine-tune learning rate")
    ramp_end: float = Field(
        0.7,
        gt=0,
        le=1,
        description="fraction of the fine-tune steps at which the target is reached",
    )
    frequency: int | None = Field(
        None, ge=1, description="steps between mask updates (default: a tenth of the ramp)"
    )
    keep_first_dense: bool = True
    keep_last_dense: bool = True
    tolerance: float = Field(
        0.02, ge=0, lt=1, description="allowed miss of the target, as a fraction (0.02 = 2 points)"
    )


def pruning_schedule_steps(
    total_steps: int, ramp_end: float, frequency: int | None
) -> tuple[int, int]:
    """(end_step, frequency) such that the last mask update falls exactly on end_step <= total."""
    end = max(1, min(total_steps, math.ceil(ramp_end * total_steps)))
    freq = frequency or max(1, end // 10)
    freq = min(freq, end)
    return (end // freq) * freq, freq


def kernel_sparsity(model: Any, layer_names: list[str]) -> tuple[float, dict[str, float]]:
    """Fraction of exact zeros over the named layers' kernels, overall and per layer."""
    per_layer: dict[str, float] = {}
    zeros = total = 0
    for name in layer_names:
        kernel = model.get_layer(name).kernel.numpy()
        per_layer[name] = float(np.mean(kernel == 0))
        zeros += int(np.sum(kernel == 0))
        total += kernel.size
    return (zeros / total if total else 0.0), per_layer


@stages.register("prune")
class PruneStage(Stage):
    """Unstructured magnitude pruning of conv/dense kernels to a target sparsity."""

    Params = PruneParams
    trains = True

    @classmethod
    def resolve(cls, stage: StageConfig, recipe: Recipe) -> dict[str, Any]:
        return fine_tune_resolved(stage, recipe)

    def run(self, parent: Artifact | None, ctx: StageContext) -> StageResult:
        from effcli._tf import keras, tfmot

        assert isinstance(parent, KerasModel)
        p: PruneParams = self.params  # type: ignore[assignment]
        base = copy_model(parent.model)
        targets = select_layers(base, p.keep_first_dense, p.keep_last_dense)
        if not targets:
            raise StageFailed(
                "no prunable layer selected; set keep_first_dense/keep_last_dense false"
            )

        total = p.epochs * steps_per_epoch(len(ctx.data.y_train), self.resolved["batch_size"])
        end_step, frequency = pruning_schedule_steps(total, p.ramp_end, p.frequency)
        if p.schedule == "polynomial":
            schedule = tfmot.sparsity.keras.PolynomialDecay(
                0.0, p.sparsity, begin_step=0, end_step=end_step, frequency=frequency
            )
        else:
            schedule = tfmot.sparsity.keras.ConstantSparsity(
                p.sparsity, begin_step=0, end_step=end_step, frequency=frequency
            )

        def wrap(layer: Any) -> Any:
            if layer.name in targets:
                return tfmot.sparsity.keras.prune_low_magnitude(layer, pruning_schedule=schedule)
            return layer

        pruned = keras.models.clone_model(base, clone_function=wrap)
        steps_per = steps_per_epoch(len(ctx.data.y_train), self.resolved["batch_size"])
        report = fine_tune(
            pruned,
            ctx,
            self.resolved,
            learning_rate=p.learning_rate,
            epochs=p.epochs,
            extra_callbacks=[tfmot.sparsity.keras.UpdatePruningStep()],
            # Pick the best validation epoch only once the masks are final.
            select_from_epoch=math.ceil(end_step / steps_per),
        )
        model = tfmot.sparsity.keras.strip_pruning(pruned)
        achieved, per_layer = kernel_sparsity(model, targets)
        info = {
            "target_sparsity": p.sparsity,
            "achieved_sparsity": achieved,
            "pruned_layers": per_layer,
            "dense_layers": [
                layer.name
                for layer in model.layers
                if type(layer).__name__ in PRUNABLE and layer.name not in targets
            ],
            "total_steps": total,
            "end_step": end_step,
            "frequency": frequency,
            "best_epoch": report.best_epoch,
            "best_val_accuracy": report.best_val_accuracy,
        }
        if abs(achieved - p.sparsity) > p.tolerance:
            raise StageFailed(
                f"achieved sparsity {achieved:.3f} misses the target {p.sparsity:.3f} by "
                f"{abs(achieved - p.sparsity) * 100:.1f} points (end_step {end_step} of {total} "
                f"steps, frequency {frequency}); lengthen the fine-tune or lower the frequency"
            )
        return StageResult(
            artifact=KerasModel(model),
            metrics={"prune_target_sparsity": p.sparsity, "prune_achieved_sparsity": achieved},
            info=info,
            train_seconds=report.seconds,
        )
