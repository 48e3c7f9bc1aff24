"""Shrink: TF-MOT weight clustering (weight sharing), fine-tuned, stripped, unique values counted.

Each clustered kernel keeps at most `clusters` distinct values (per output channel with
`per_channel`), which gzip and weight-sharing runtimes exploit; the raw .tflite does not shrink.
After a `prune` stage, sparsity is preserved by default; otherwise clustering refills the zeros.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal

import numpy as np
from pydantic import Field

from effcli.artifacts import Artifact, KerasModel
from effcli.errors import StageFailed
from effcli.recipe.schema import Recipe, StageConfig
from effcli.stages._label import tokens
from effcli.stages._layers import (
    NO_LAYER,
    UNCLUSTERED,
    LayerSelection,
    copy_model,
    kernel_of,
    selected,
    tfmot_targets,
)
from effcli.stages._train_spec import FineTuneParams, fine_tune_resolved
from effcli.stages._training import fine_tune
from effcli.stages.base import Stage, StageContext, StageResult, stages

INITS = {
    "kmeans_plus_plus": "KMEANS_PLUS_PLUS",
    "linear": "LINEAR",
    "density_based": "DENSITY_BASED",
    "random": "RANDOM",
}


class ClusterParams(LayerSelection, FineTuneParams):
    clusters: int = Field(ge=2, le=256, description="distinct values per kernel, 2..256")
    init: Literal["kmeans_plus_plus", "linear", "density_based", "random"] = "kmeans_plus_plus"
    per_channel: bool = Field(
        False, description="cluster each output channel of Conv2D kernels separately"
    )
    preserve_sparsity: bool | None = Field(
        None, description="keep pruned zeros (default: true when a prune stage came before)"
    )


def unique_counts(kernel: np.ndarray, per_channel: bool) -> int:
    """Distinct values of a kernel, or the most in any output channel (last axis)."""
    if per_channel:
        return max(len(np.unique(kernel[..., c])) for c in range(kernel.shape[-1]))
    return len(np.unique(kernel))


@stages.register("cluster")
class ClusterStage(Stage[ClusterParams]):
    """Weight clustering of conv/dense kernels to a fixed number of shared values."""

    Params = ClusterParams
    trains = True
    examples = ({"clusters": 8, "epochs": 1},)

    @classmethod
    def label_token(cls, params: ClusterParams, varying: Mapping[str, Any]) -> str:
        return " ".join([f"cluster{params.clusters}", *tokens(varying, skip=("clusters",))])

    @classmethod
    def check(cls, stage: StageConfig, recipe: Recipe) -> Iterable[tuple[tuple[Any, ...], str]]:
        params = cls.params_of(stage)
        if params.preserve_sparsity is True and not cls._after_prune(stage, recipe):
            yield (
                ("pipeline", stage.index, "preserve_sparsity"),
                (
                    "preserve_sparsity needs a prune stage earlier in the pipeline; remove it or "
                    "add a prune stage before this one"
                ),
            )

    @classmethod
    def warnings(cls, stage: StageConfig, recipe: Recipe) -> Iterable[tuple[tuple[Any, ...], str]]:
        params = cls.params_of(stage)
        if params.preserve_sparsity is False and cls._after_prune(stage, recipe):
            yield (
                ("pipeline", stage.index, "preserve_sparsity"),
                "clustering after prune with preserve_sparsity: false refills the pruned zeros "
                "(the sparsity is lost); drop the key to keep them",
            )

    @staticmethod
    def _after_prune(stage: StageConfig, recipe: Recipe) -> bool:
        return any(s.kind == "prune" for s in recipe.pipeline if s.index < stage.index)

    @classmethod
    def resolve(cls, stage: StageConfig, recipe: Recipe) -> dict[str, Any]:
        resolved = fine_tune_resolved(stage, recipe)
        if resolved["preserve_sparsity"] is None:
            resolved["preserve_sparsity"] = cls._after_prune(stage, recipe)
        return resolved

    def run(self, parent: Artifact | None, ctx: StageContext) -> StageResult:
        from effcli._tf import keras, tfmot

        p = self.params
        preserve = bool(self.resolved["preserve_sparsity"])
        base = copy_model(self.keras_parent(parent).model)
        clusterable, skipped = tfmot_targets(base, selected(base, p), UNCLUSTERED)
        targets = [
            name
            for name in clusterable
            if kernel_of(base.get_layer(name)).shape.num_elements() > p.clusters
        ]
        if not targets:
            raise StageFailed(f"{NO_LAYER} (only layers with more weights than clusters count)")
        zeros_before = {n: int(np.sum(kernel_of(base.get_layer(n)).numpy() == 0)) for n in targets}
        init = getattr(tfmot.clustering.keras.CentroidInitialization, INITS[p.init])

        def wrap(layer: Any) -> Any:
            if layer.name not in targets:
                return layer
            return tfmot.clustering.keras.cluster_weights(
                layer,
                number_of_clusters=p.clusters,
                cluster_centroids_init=init,
                preserve_sparsity=preserve,
                cluster_per_channel=p.per_channel and type(layer).__name__ == "Conv2D",
            )

        clustered = keras.models.clone_model(base, clone_function=wrap)
        report = fine_tune(
            clustered, ctx, self.resolved, learning_rate=p.learning_rate, epochs=p.epochs
        )
        model = tfmot.clustering.keras.strip_clustering(clustered)

        unique: dict[str, int] = {}
        kept: dict[str, float] = {}
        for name in targets:
            layer = model.get_layer(name)
            kernel = kernel_of(layer).numpy()
            unique[name] = unique_counts(kernel, p.per_channel and type(layer).__name__ == "Conv2D")
            if zeros_before[name]:
                kept[name] = min(1.0, float(np.sum(kernel == 0)) / zeros_before[name])
        # Sparsity-preserving clustering keeps zero as an extra value beside the centroids.
        allowed = p.clusters + (1 if preserve else 0)
        worst = max(unique, key=unique.__getitem__)
        if unique[worst] > allowed:
            raise StageFailed(
                f"layer {worst} kept {unique[worst]} distinct values, more than {allowed} "
                f"({p.clusters} clusters); clustering did not take effect"
            )
        metrics: dict[str, float] = {
            "cluster_clusters": p.clusters,
            "cluster_max_unique_weights": unique[worst],
        }
        if kept:
            metrics["cluster_zeros_kept"] = min(kept.values())
        return StageResult(
            artifact=KerasModel(model),
            metrics=metrics,
            info={
                "clusters": p.clusters,
                "skipped_layers": skipped,
                "preserve_sparsity": preserve,
                "unique_weights": unique,
                "zeros_kept": kept,
                "best_epoch": report.best_epoch,
                "best_val_accuracy": report.best_val_accuracy,
            },
            train_seconds=report.seconds,
        )
