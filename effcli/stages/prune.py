"""Shrink: TF-MOT magnitude pruning, fine-tuned, stripped, and the sparsity it reached measured.

The schedule is computed from the real number of fine-tune steps: TF-MOT only updates masks at
steps where (step - begin) % frequency == 0 up to end_step, so a schedule longer than the run
silently leaves weights dense. The achieved sparsity is measured, never assumed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
from pydantic import Field, model_validator

from effcli.artifacts import Artifact, KerasModel
from effcli.errors import StageFailed
from effcli.recipe.schema import Recipe, StageConfig
from effcli.stages._channels import SOURCES, apply_cuts, plan_cuts
from effcli.stages._label import percent, tokens
from effcli.stages._layers import (
    NO_LAYER,
    PRUNABLE,
    LayerSelection,
    copy_model,
    kernel_of,
    kernels_of,
    selected,
    tfmot_targets,
)
from effcli.stages._train_spec import (
    FineTuneEpochs,
    FineTuneParams,
    FineTuneRate,
    fine_tune_resolved,
)
from effcli.stages._training import fine_tune, steps_per_epoch
from effcli.stages.base import Stage, StageContext, StageResult, stages


class PruneParams(LayerSelection, FineTuneParams):
    structure: Literal["unstructured", "m_by_n", "channels"] = Field(
        "unstructured",
        description="unstructured magnitude pruning, m zeros in every n weights, or removing "
        "whole channels (a thinner model)",
    )
    sparsity: float | None = Field(
        None,
        ge=0,
        lt=1,
        description="target fraction of zero weights in pruned kernels (channels: of filters "
        "removed), 0 <= s < 1",
    )
    m_by_n: tuple[int, int] = Field(
        (2, 4), description="[m, n]: at least m zeros in every n consecutive input weights"
    )
    schedule: Literal["polynomial", "constant"] = "polynomial"
    epochs: FineTuneEpochs = 10
    learning_rate: FineTuneRate = 1e-3
    ramp_end: float = Field(
        0.7,
        gt=0,
        le=1,
        description="fraction of the fine-tune steps at which the target is reached",
    )
    ramp_begin: float = Field(
        0.0, ge=0, lt=1, description="fraction of the fine-tune steps at which pruning starts"
    )
    initial_sparsity: float = Field(
        0.0, ge=0, lt=1, description="sparsity at the start of a polynomial ramp, 0 <= s < 1"
    )
    frequency: int | None = Field(
        None, ge=1, description="steps between mask updates (default: a tenth of the ramp)"
    )
    tolerance: float = Field(
        0.02, ge=0, lt=1, description="allowed miss of the target, as a fraction (0.02 = 2 points)"
    )

    @model_validator(mode="after")
    def _structure_arguments(self) -> PruneParams:
        if self.structure == "channels":
            if self.sparsity is None:
                raise ValueError(
                    "missing required key 'sparsity' (the fraction of filters to remove, e.g. 0.5)"
                )
            for key in ("m_by_n", "schedule", "ramp_begin", "ramp_end", "initial_sparsity"):
                if key in self.model_fields_set:
                    raise ValueError(
                        f"'{key}' has no effect with structure channels (the filters are cut "
                        "before the fine-tune); remove it"
                    )
            if "frequency" in self.model_fields_set:
                raise ValueError("'frequency' has no effect with structure channels; remove it")
            others = [t for t in self.layer_types or () if t not in SOURCES]
            if others:
                raise ValueError(
                    f"structure channels cuts the filters of {' and '.join(SOURCES)} layers, not "
                    f"{others[0]} (its channels follow the layer it reads); use layer_types "
                    f"from {', '.join(SOURCES)}"
                )
        elif self.structure == "unstructured":
            if self.sparsity is None:
                raise ValueError(
                    "missing required key 'sparsity' (target fraction of zero weights, e.g. 0.5)"
                )
            if "m_by_n" in self.model_fields_set:
                raise ValueError("'m_by_n' needs structure: m_by_n; add it or remove m_by_n")
            if self.ramp_begin >= self.ramp_end:
                raise ValueError(
                    f"ramp_begin ({self.ramp_begin:g}) must be before ramp_end ({self.ramp_end:g})"
                )
            if self.schedule == "constant" and "initial_sparsity" in self.model_fields_set:
                raise ValueError(
                    "initial_sparsity applies to the polynomial schedule; remove it or set "
                    "schedule: polynomial"
                )
            if self.initial_sparsity > self.sparsity:
                raise ValueError(
                    f"initial_sparsity ({self.initial_sparsity:g}) is above the target sparsity "
                    f"({self.sparsity:g}); lower it"
                )
        else:
            m, n = self.m_by_n
            if self.sparsity is not None and abs(self.sparsity - m / n) > 1e-9:
                raise ValueError(
                    f"structure m_by_n [{m}, {n}] fixes the sparsity at {m / n:g} (got "
                    f"{self.sparsity:g}); remove 'sparsity' or set it to {m / n:g}"
                )
            for key in ("schedule", "ramp_begin", "ramp_end", "initial_sparsity", "frequency"):
                if key in self.model_fields_set:
                    raise ValueError(
                        f"'{key}' has no effect with structure m_by_n (the mask is set at the "
                        "first step); remove it"
                    )
            if not 1 <= m < n <= 64:
                raise ValueError(f"m_by_n needs 1 <= m < n <= 64 (got [{m}, {n}]), e.g. [2, 4]")
        return self

    @property
    def target(self) -> float:
        """The sparsity this configuration aims at."""
        if self.structure == "m_by_n":
            return self.m_by_n[0] / self.m_by_n[1]
        assert self.sparsity is not None
        return self.sparsity


def pruning_schedule_steps(
    total_steps: int, ramp_end: float, frequency: int | None, ramp_begin: float = 0.0
) -> tuple[int, int, int]:
    """(begin_step, end_step, frequency) inside the real steps, with the last mask update
    (TF-MOT updates where (step - begin) % frequency == 0) falling exactly on end_step."""
    end = max(1, min(total_steps, math.ceil(ramp_end * total_steps)))
    begin = min(end - 1, math.floor(ramp_begin * total_steps))
    span = end - begin
    freq = min(frequency or max(1, span // 10), span)
    return begin, begin + (span // freq) * freq, freq


def as_input_rows(kernel: np.ndarray) -> np.ndarray:
    """Kernel as rows of input-channel weights, the axis TFLite's m-by-n structure runs along."""
    if kernel.ndim == 2:  # Dense (in, out) -> (out, in)
        return kernel.T
    return np.moveaxis(kernel, -1, 0).reshape(-1, kernel.shape[-2])  # conv (..., in, out)


def m_by_n_fraction(kernel: np.ndarray, m: int, n: int) -> float:
    """Fraction of n-wide input-channel groups holding at least m zeros (1.0 = fully m:n)."""
    rows = as_input_rows(kernel)
    usable = rows.shape[1] - rows.shape[1] % n
    groups = rows[:, :usable].reshape(-1, n)
    return float(np.mean(np.sum(groups == 0, axis=1) >= m)) if groups.size else 0.0


def kernel_sparsity(model: Any, layer_names: list[str]) -> tuple[float, dict[str, float]]:
    """Fraction of exact zeros over the named layers' kernels, overall and per layer."""
    per_layer: dict[str, float] = {}
    zeros = total = 0
    for name in layer_names:
        kernels = [k.numpy() for k in kernels_of(model.get_layer(name))]
        layer_zeros = sum(int(np.sum(k == 0)) for k in kernels)
        layer_total = sum(k.size for k in kernels)
        per_layer[name] = layer_zeros / layer_total
        zeros += layer_zeros
        total += layer_total
    return (zeros / total if total else 0.0), per_layer


@stages.register("prune")
class PruneStage(Stage[PruneParams]):
    """Unstructured magnitude pruning of conv/dense kernels to a target sparsity."""

    Params = PruneParams
    trains = True
    examples = (
        {"sparsity": 0.5, "epochs": 2, "ramp_begin": 0.25, "initial_sparsity": 0.2},
        {"structure": "m_by_n", "epochs": 1},
        {"structure": "channels", "sparsity": 0.5, "epochs": 1},
    )

    @classmethod
    def label_token(cls, params: PruneParams, varying: Mapping[str, Any]) -> str:
        if params.structure == "m_by_n":
            head = f"prune{params.m_by_n[0]}:{params.m_by_n[1]}"
        else:
            what = "prune-ch" if params.structure == "channels" else "prune"
            head = what + (percent(params.sparsity) if params.sparsity is not None else "")
        return " ".join([head, *tokens(varying, skip=("sparsity", "structure", "m_by_n"))])

    @classmethod
    def resolve(cls, stage: StageConfig, recipe: Recipe) -> dict[str, Any]:
        return fine_tune_resolved(stage, recipe)

    def run(self, parent: Artifact | None, ctx: StageContext) -> StageResult:
        from effcli._tf import keras, tfmot

        p = self.params
        if p.structure == "channels":
            return self._channels(self.keras_parent(parent).model, ctx)
        base = copy_model(self.keras_parent(parent).model)
        targets, skipped = tfmot_targets(base, selected(base, p))
        if p.structure == "m_by_n":
            # TF-MOT's m:n runs along input channels of Conv2D/Dense kernels only.
            for name in list(targets):
                layer = base.get_layer(name)
                if type(layer).__name__ not in ("Conv2D", "Dense"):
                    skipped[name] = "m_by_n supports Conv2D and Dense only"
                elif layer.kernel.shape[-2] % p.m_by_n[1]:
                    skipped[name] = f"{layer.kernel.shape[-2]} input channels, not a multiple of n"
            targets = [name for name in targets if name not in skipped]
        if not targets:
            raise StageFailed(NO_LAYER + (f"; skipped: {skipped}" if skipped else ""))

        total = p.epochs * steps_per_epoch(len(ctx.data.y_train), self.resolved["batch_size"])
        begin_step, end_step, frequency = pruning_schedule_steps(
            total, p.ramp_end, p.frequency, p.ramp_begin
        )
        schedule_args: dict[str, Any] = {}
        if p.structure == "m_by_n":  # the mask is fixed at the first step; no ramp to wait for
            end_step, frequency = 1, 1
            schedule = tfmot.sparsity.keras.ConstantSparsity(
                p.target, begin_step=0, end_step=-1, frequency=1
            )
            schedule_args["sparsity_m_by_n"] = tuple(p.m_by_n)
        elif p.schedule == "polynomial":
            schedule = tfmot.sparsity.keras.PolynomialDecay(
                p.initial_sparsity,
                p.target,
                begin_step=begin_step,
                end_step=end_step,
                frequency=frequency,
            )
        else:
            schedule = tfmot.sparsity.keras.ConstantSparsity(
                p.target, begin_step=begin_step, end_step=end_step, frequency=frequency
            )

        def wrap(layer: Any) -> Any:
            if layer.name in targets:
                return tfmot.sparsity.keras.prune_low_magnitude(
                    layer, pruning_schedule=schedule, **schedule_args
                )
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
        metrics = {"prune_target_sparsity": p.target, "prune_achieved_sparsity": achieved}
        info: dict[str, Any] = {
            "structure": p.structure,
            "skipped_layers": skipped,
            "target_sparsity": p.target,
            "achieved_sparsity": achieved,
            "pruned_layers": per_layer,
            "dense_layers": [
                layer.name
                for layer in model.layers
                if type(layer).__name__ in PRUNABLE and layer.name not in targets
            ],
            "total_steps": total,
            "begin_step": begin_step,
            "end_step": end_step,
            "frequency": frequency,
            "best_epoch": report.best_epoch,
            "best_val_accuracy": report.best_val_accuracy,
        }
        if abs(achieved - p.target) > p.tolerance:
            raise StageFailed(
                f"achieved sparsity {achieved:.3f} misses the target {p.target:.3f} by "
                f"{abs(achieved - p.target) * 100:.1f} points (end_step {end_step} of {total} "
                f"steps, frequency {frequency}); lengthen the fine-tune or lower the frequency"
            )
        if p.structure == "m_by_n":
            m, n = p.m_by_n
            fractions = {
                name: m_by_n_fraction(kernel_of(model.get_layer(name)).numpy(), m, n)
                for name in targets
            }
            info["m_by_n_groups_ok"] = fractions
            metrics["prune_m_by_n_groups_ok"] = min(fractions.values())
            worst = min(fractions, key=fractions.__getitem__)
            if fractions[worst] < 1.0:
                raise StageFailed(
                    f"layer {worst}: only {fractions[worst]:.1%} of its {n}-weight groups hold "
                    f"{m} zeros; the {m}:{n} structure was not reached"
                )
        return StageResult(
            artifact=KerasModel(model),
            metrics=metrics,
            info=info,
            train_seconds=report.seconds,
        )

    def _channels(self, model: Any, ctx: StageContext) -> StageResult:
        """Cut the lowest-L1 filters and rebuild the model thinner, then fine-tune it."""
        p = self.params
        targets = [n for n in selected(model, p) if type(model.get_layer(n)).__name__ in SOURCES]
        cuts, refused = plan_cuts(model, targets, p.target)
        if not cuts:
            why = "; ".join(f"{n}: {r}" for n, r in list(refused.items())[:3]) or NO_LAYER
            raise StageFailed(f"no layer's channels can be removed ({why})")
        params_before = int(model.count_params())
        thinner = apply_cuts(model, cuts)
        report = fine_tune(
            thinner, ctx, self.resolved, learning_rate=p.learning_rate, epochs=p.epochs
        )
        removed = sum(c.total - len(c.keep) for c in cuts)
        total = sum(c.total for c in cuts)
        return StageResult(
            artifact=KerasModel(thinner),
            metrics={
                "prune_target_sparsity": p.target,
                "prune_achieved_sparsity": removed / total,
                "prune_channels_removed": float(removed),
                "prune_params_before": float(params_before),
                "prune_params_after": float(thinner.count_params()),
            },
            info={
                "structure": "channels",
                "cut_layers": {c.source: {"kept": len(c.keep), "of": c.total} for c in cuts},
                "left_whole": refused,
                "best_epoch": report.best_epoch,
                "best_val_accuracy": report.best_val_accuracy,
            },
            train_seconds=report.seconds,
        )
