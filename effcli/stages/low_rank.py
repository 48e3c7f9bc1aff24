"""Shrink: low-rank factorization of Dense layers (and 1x1 convolutions) by truncated SVD.

A kernel W (in x out) becomes A (in x r) @ B (r x out), the best rank-r approximation
(Eckart-Young), so the layer costs r * (in + out) weights and MACs instead of in * out. The rank
is fixed or chosen to keep a fraction of the spectrum's energy; a layer is factorized only when
that saves weights. A short fine-tune recovers the accuracy lost. TF-MOT has no such technique.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import Field, model_validator

from effcli.artifacts import Artifact, KerasModel
from effcli.errors import StageFailed
from effcli.recipe.schema import Recipe, StageConfig
from effcli.stages._layers import NO_LAYER, LayerSelection, selected
from effcli.stages._rewrite import Chain, replace_layers
from effcli.stages._training import fine_tune, fine_tune_resolved
from effcli.stages.base import Stage, StageContext, StageResult, stages


class LowRankParams(LayerSelection):
    rank: int | None = Field(None, ge=1, description="fixed rank of every factorized layer, >= 1")
    energy: float | None = Field(
        None,
        gt=0,
        le=1,
        description="keep this fraction of the squared singular values, 0 < e <= 1",
    )
    epochs: int = Field(3, ge=0, le=10_000, description="fine-tune epochs after factorizing, >= 0")
    learning_rate: float = Field(1e-4, gt=0, le=10, description="fine-tune learning rate")

    @model_validator(mode="after")
    def _one_rank_rule(self) -> LowRankParams:
        if (self.rank is None) == (self.energy is None):
            raise ValueError(
                "give exactly one of 'rank' (e.g. 16) or 'energy' (e.g. 0.9) to choose the rank"
            )
        return self


def choose_rank(singular_values: np.ndarray, rank: int | None, energy: float | None) -> int:
    """The rank to keep: `rank` capped at full rank, or the fewest values holding `energy`."""
    full = len(singular_values)
    if rank is not None:
        return min(rank, full)
    assert energy is not None
    power = np.cumsum(singular_values.astype(np.float64) ** 2)
    if power[-1] == 0:
        return 1
    return min(full, int(np.searchsorted(power / power[-1], energy - 1e-12) + 1))


def energy_kept(singular_values: np.ndarray, r: int) -> float:
    power = singular_values.astype(np.float64) ** 2
    return float(power[:r].sum() / power.sum()) if power.sum() else 1.0


def factorize(kernel: np.ndarray, r: int) -> tuple[np.ndarray, np.ndarray]:
    """(A, B) with A @ B the best rank-r approximation of the 2-D `kernel` (singular values in A)."""
    u, s, vt = np.linalg.svd(kernel.astype(np.float64), full_matrices=False)
    return (u[:, :r] * s[:r]).astype(np.float32), vt[:r].astype(np.float32)


def factorized_params(n_in: int, n_out: int, r: int) -> int:
    """Weights of the two factors (the bias, unchanged, not counted)."""
    return r * (n_in + n_out)


def _factorizable(layer: Any) -> str | None:
    """Why a selected layer cannot be factorized, or None."""
    kind = type(layer).__name__
    if kind == "Dense":
        return None
    if kind == "Conv2D":
        cfg = layer.get_config()
        if tuple(cfg["kernel_size"]) != (1, 1):
            return "only 1x1 convolutions factorize into two convolutions"
        if tuple(cfg["strides"]) != (1, 1) or tuple(cfg["dilation_rate"]) != (1, 1):
            return "strided or dilated 1x1 convolution"
        if cfg.get("groups", 1) != 1:
            return "grouped convolution"
        return None
    return f"{kind} layers are not factorized"


def _chain(layer: Any, a: np.ndarray, b: np.ndarray) -> Chain:
    """Two layers replacing `layer`: a linear bottleneck of width r, then the original's output."""
    from effcli._tf import keras

    cfg = layer.get_config()
    r = a.shape[1]
    bias = [layer.bias.numpy()] if cfg["use_bias"] else []
    if type(layer).__name__ == "Dense":
        first = keras.layers.Dense(r, use_bias=False, name=f"{layer.name}_lr_u")
        second = keras.layers.Dense.from_config(cfg)
        return [(first, [a]), (second, [b, *bias])]
    common = {"padding": cfg["padding"], "data_format": cfg["data_format"]}
    first = keras.layers.Conv2D(r, 1, use_bias=False, name=f"{layer.name}_lr_u", **common)
    second = keras.layers.Conv2D.from_config(cfg)
    return [(first, [a[np.newaxis, np.newaxis]]), (second, [b[np.newaxis, np.newaxis], *bias])]


@stages.register("low_rank")
class LowRankStage(Stage):
    """Truncated-SVD factorization of Dense and 1x1 Conv2D layers, then a short fine-tune."""

    Params = LowRankParams
    trains = True
    examples = ({"energy": 0.5, "keep_last_dense": True, "epochs": 1},)

    @classmethod
    def is_training(cls, params: Any) -> bool:
        return getattr(params, "epochs", 1) > 0

    @classmethod
    def resolve(cls, stage: StageConfig, recipe: Recipe) -> dict[str, Any]:
        return fine_tune_resolved(stage, recipe)

    def run(self, parent: Artifact | None, ctx: StageContext) -> StageResult:
        assert isinstance(parent, KerasModel)
        p: LowRankParams = self.params  # type: ignore[assignment]
        model = parent.model
        plans: dict[str, dict[str, Any]] = {}
        skipped: dict[str, str] = {}
        factors: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for name in selected(model, p):
            layer = model.get_layer(name)
            reason = _factorizable(layer)
            if reason:
                skipped[name] = reason
                continue
            kernel = layer.kernel.numpy()
            matrix = kernel.reshape(kernel.shape[-2], kernel.shape[-1])
            n_in, n_out = matrix.shape
            values = np.linalg.svd(matrix.astype(np.float64), compute_uv=False)
            r = choose_rank(values, p.rank, p.energy)
            after = factorized_params(n_in, n_out, r)
            if after >= n_in * n_out:
                skipped[name] = f"rank {r} saves nothing on a {n_in}x{n_out} kernel"
                continue
            factors[name] = factorize(matrix, r)
            plans[name] = {
                "in": n_in,
                "out": n_out,
                "rank": r,
                "energy_kept": energy_kept(values, r),
                "params_before": n_in * n_out,
                "params_after": after,
            }
        if not plans and not skipped:
            raise StageFailed(NO_LAYER)
        if not plans:
            why = "; ".join(f"{name}: {reason}" for name, reason in skipped.items())
            raise StageFailed(f"no layer factorized ({why}); lower rank or energy")
        rebuilt = replace_layers(
            model,
            {name: (lambda layer, f=factors[name]: _chain(layer, *f)) for name in plans},
        )
        info: dict[str, Any] = {"layers": plans, "skipped_layers": skipped}
        seconds = 0.0
        if p.epochs > 0:
            report = fine_tune(
                rebuilt, ctx, self.resolved, learning_rate=p.learning_rate, epochs=p.epochs
            )
            seconds = report.seconds
            info.update(best_epoch=report.best_epoch, best_val_accuracy=report.best_val_accuracy)
        return StageResult(
            artifact=KerasModel(rebuilt),
            metrics={
                "low_rank_layers": len(plans),
                "low_rank_params_before": sum(v["params_before"] for v in plans.values()),
                "low_rank_params_after": sum(v["params_after"] for v in plans.values()),
                "low_rank_energy_kept": min(v["energy_kept"] for v in plans.values()),
            },
            info=info,
            train_seconds=seconds,
        )
