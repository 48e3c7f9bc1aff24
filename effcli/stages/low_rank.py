"""Shrink: low-rank factorization of Dense layers (and 1x1 convolutions) by truncated SVD.

A kernel W (in x out) becomes A (in x r) @ B (r x out), the best rank-r approximation
(Eckart-Young), so the layer costs r * (in + out) weights and MACs instead of in * out. The rank
is fixed or chosen to keep a fraction of the spectrum's energy; a layer is factorized only when
that saves weights. A short fine-tune recovers the accuracy lost. TF-MOT has no such technique.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from functools import partial
from typing import Any

import numpy as np
from pydantic import Field, model_validator

from effcli.artifacts import Artifact, KerasModel
from effcli.errors import StageFailed
from effcli.models._rewrite import ChainItem, replace_layers
from effcli.recipe.schema import Recipe, StageConfig
from effcli.stages._label import percent, tokens
from effcli.stages._layers import NO_LAYER, LayerSelection, selected
from effcli.stages._train_spec import FineTuneParams, FineTuneRate, fine_tune_resolved
from effcli.stages._training import check_finite, fine_tune
from effcli.stages.base import Stage, StageContext, StageResult, stages

FACTORIZABLE = ("Dense", "Conv2D")  # Conv2D only with a 1x1 kernel, stride 1, no dilation/groups


class LowRankParams(LayerSelection, FineTuneParams):
    rank: int | None = Field(
        None, ge=1, le=1_000_000, description="fixed rank of every factorized layer, >= 1"
    )
    energy: float | None = Field(
        None,
        gt=0,
        le=1,
        description="keep the smallest rank holding this fraction of the squared singular "
        "values, 0 < e <= 1",
    )
    epochs: int = Field(
        3, ge=0, le=10_000, description="fine-tune epochs after factorizing, >= 0 (0: none)"
    )
    learning_rate: FineTuneRate = 1e-4
    min_params_saving: float = Field(
        0.0,
        ge=0,
        lt=1,
        description="factorize a layer only if it saves more than this fraction of its kernel",
    )

    @model_validator(mode="after")
    def _one_rank_rule(self) -> LowRankParams:
        if (self.rank is None) == (self.energy is None):
            raise ValueError(
                "give exactly one of 'rank' (e.g. 16) or 'energy' (e.g. 0.9) to choose the rank"
            )
        other = sorted(set(self.layer_types or ()) - set(FACTORIZABLE))
        if other:
            raise ValueError(
                f"low_rank factorizes Dense and 1x1 Conv2D layers only; remove {other} from "
                "layer_types"
            )
        return self


def choose_rank(singular_values: np.ndarray, rank: int | None, energy: float | None) -> int:
    """The rank to keep: `rank` capped at full rank, or the fewest values holding `energy`.

    Energy is the fraction of sum(S^2) kept (the share of W's squared Frobenius norm); a zero
    spectrum keeps rank 1.
    """
    if (rank is None) == (energy is None):
        raise ValueError("give exactly one of rank or energy")
    full = len(singular_values)
    if rank is not None:
        return min(rank, full)
    assert energy is not None
    power = np.cumsum(np.asarray(singular_values, dtype=np.float64) ** 2)
    if power[-1] == 0:
        return 1
    # A hair of tolerance so energy 1.0 does not keep values that only rounding separates.
    return min(full, int(np.searchsorted(power / power[-1], energy - 1e-12)) + 1)


def energy_kept(singular_values: np.ndarray, r: int) -> float:
    """Fraction of sum(S^2) held by the first r singular values (1.0 for a zero spectrum)."""
    power = np.asarray(singular_values, dtype=np.float64) ** 2
    total = float(power.sum())
    return float(power[:r].sum() / total) if total else 1.0


def factorize(kernel: np.ndarray, r: int) -> tuple[np.ndarray, np.ndarray]:
    """(A, B) with A @ B the best rank-r approximation of a 2-D kernel: A = U_r S_r, B = Vt_r.

    Computed in float64, returned in the kernel's dtype.
    """
    u, s, vt = np.linalg.svd(np.asarray(kernel, dtype=np.float64), full_matrices=False)
    dtype = kernel.dtype
    return (u[:, :r] * s[:r]).astype(dtype), vt[:r].astype(dtype)


def factorized_params(n_in: int, n_out: int, r: int) -> int:
    """Weights of the two factors (the bias, unchanged, not counted)."""
    return r * (n_in + n_out)


def max_useful_rank(n_in: int, n_out: int, min_saving: float = 0.0) -> int:
    """The largest rank that saves more than `min_saving` of an in x out kernel (0: none)."""
    budget = n_in * n_out * (1 - min_saving)
    return max(0, math.ceil(budget / (n_in + n_out)) - 1)


def unsupported(layer: Any) -> str | None:
    """Why a selected layer cannot be factorized, or None when it can."""
    kind = type(layer).__name__
    if kind == "Dense":
        return None
    if kind != "Conv2D":
        return f"{kind} is not factorized (Dense and 1x1 Conv2D only)"
    cfg = layer.get_config()
    if tuple(cfg["kernel_size"]) != (1, 1):
        size = "x".join(str(k) for k in cfg["kernel_size"])
        return f"{size} convolution; only 1x1 convolutions factorize"
    if tuple(cfg["strides"]) != (1, 1) or tuple(cfg["dilation_rate"]) != (1, 1):
        return "strided or dilated 1x1 convolution"
    if cfg.get("groups", 1) != 1:
        return "grouped convolution"
    return None


def _chain(layer: Any, a: np.ndarray, b: np.ndarray) -> list[ChainItem]:
    """Two layers replacing `layer`: a linear bottleneck of width r named `<name>_lr_u`, then a
    layer of the original's name, configuration (activation, bias, regularizers) and bias."""
    from effcli._tf import keras

    cfg = layer.get_config()
    r = a.shape[1]
    bias = [layer.bias.numpy()] if cfg["use_bias"] else []
    bottleneck = {
        **cfg,
        "name": f"{layer.name}_lr_u",
        "activation": "linear",
        "use_bias": False,
        "activity_regularizer": None,
    }
    if type(layer).__name__ == "Dense":
        first = keras.layers.Dense.from_config({**bottleneck, "units": r})
        second = keras.layers.Dense.from_config(cfg)
        return [(first, [a]), (second, [b, *bias])]
    first = keras.layers.Conv2D.from_config({**bottleneck, "filters": r})
    second = keras.layers.Conv2D.from_config(cfg)
    return [(first, [a[np.newaxis, np.newaxis]]), (second, [b[np.newaxis, np.newaxis], *bias])]


def _factorized(factors: tuple[np.ndarray, np.ndarray], layer: Any) -> list[ChainItem]:
    return _chain(layer, *factors)


@stages.register("low_rank")
class LowRankStage(Stage[LowRankParams]):
    """Truncated-SVD factorization of Dense and 1x1 Conv2D layers, then a short fine-tune."""

    Params = LowRankParams
    trains = True
    examples = (
        {"energy": 0.5, "epochs": 1},
        {"rank": 2, "epochs": 0},
    )

    @classmethod
    def label_token(cls, params: LowRankParams, varying: Mapping[str, Any]) -> str:
        if params.rank is not None:
            head = f"lowrank(r{params.rank})"
        elif params.energy is not None:
            head = f"lowrank({percent(params.energy)})"
        else:
            head = "lowrank"
        return " ".join([head, *tokens(varying, skip=("rank", "energy"))])

    @classmethod
    def is_training(cls, params: LowRankParams) -> bool:
        return params.epochs > 0

    @classmethod
    def resolve(cls, stage: StageConfig, recipe: Recipe) -> dict[str, Any]:
        params = cls.params_of(stage)
        if params.epochs == 0:  # no fine-tune: the batch size and optimizer decide nothing
            return params.model_dump(mode="json")
        return fine_tune_resolved(stage, recipe)

    def run(self, parent: Artifact | None, ctx: StageContext) -> StageResult:
        p = self.params
        model = self.keras_parent(parent).model
        targets = selected(model, p)
        if not targets:
            raise StageFailed(NO_LAYER)
        plans: dict[str, dict[str, Any]] = {}
        skipped: dict[str, str] = {}
        factors: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for name in targets:
            layer = model.get_layer(name)
            reason = unsupported(layer)
            if reason:
                skipped[name] = reason
                continue
            kernel = layer.kernel.numpy()
            matrix = kernel.reshape(kernel.shape[-2], kernel.shape[-1])  # 1x1 conv -> (in, out)
            n_in, n_out = matrix.shape
            values = np.linalg.svd(matrix.astype(np.float64), compute_uv=False)
            r = choose_rank(values, p.rank, p.energy)
            before, after = n_in * n_out, factorized_params(n_in, n_out, r)
            if 1 - after / before <= p.min_params_saving:
                useful = max_useful_rank(n_in, n_out, p.min_params_saving)
                skipped[name] = (
                    f"rank {r} saves nothing on a {n_in}x{n_out} kernel (it pays below rank "
                    f"{useful + 1})"
                    if p.min_params_saving == 0
                    else f"rank {r} saves {1 - after / before:.0%} of a {n_in}x{n_out} kernel, "
                    f"not more than min_params_saving {p.min_params_saving:g} (needs rank <= "
                    f"{useful})"
                )
                continue
            factors[name] = factorize(matrix, r)
            plans[name] = {
                "in": n_in,
                "out": n_out,
                "rank": r,
                "energy_kept": energy_kept(values, r),
                "params_before": before,
                "params_after": after,
            }
        if not plans:
            why = "; ".join(f"{name}: {reason}" for name, reason in list(skipped.items())[:3])
            more = f" and {len(skipped) - 3} more" if len(skipped) > 3 else ""
            raise StageFailed(
                f"no layer factorized ({why}{more}); lower rank or energy, lower "
                "min_params_saving, or set keep_first_dense/keep_last_dense false"
            )

        rebuilt = replace_layers(
            model, {name: partial(_factorized, factors[name]) for name in plans}
        )
        info: dict[str, Any] = {"layers": plans, "skipped_layers": skipped}
        seconds = 0.0
        if p.epochs > 0:
            report = fine_tune(
                rebuilt, ctx, self.resolved, learning_rate=p.learning_rate, epochs=p.epochs
            )
            seconds = report.seconds
            info.update(best_epoch=report.best_epoch, best_val_accuracy=report.best_val_accuracy)
        else:
            check_finite(rebuilt)
        return StageResult(
            artifact=KerasModel(rebuilt),
            metrics={
                "low_rank_layers": float(len(plans)),
                "low_rank_params_before": float(sum(v["params_before"] for v in plans.values())),
                "low_rank_params_after": float(sum(v["params_after"] for v in plans.values())),
                "low_rank_energy_kept": min(v["energy_kept"] for v in plans.values()),
            },
            info=info,
            train_seconds=seconds,
        )
