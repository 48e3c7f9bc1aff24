"""Layer selection and copying shared by the stages that wrap layers with TF-MOT."""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Any, Literal

from pydantic import Field

from effcli.stages.base import StageParams

# Layers whose kernels TF-MOT can prune or cluster (MultiHeadAttention: prune only).
PRUNABLE = (
    "Conv2D",
    "Conv1D",
    "Dense",
    "DepthwiseConv2D",
    "SeparableConv2D",
    "MultiHeadAttention",
)
LayerType = Literal["Conv2D", "Conv1D", "Dense", "DepthwiseConv2D", "SeparableConv2D"]


class LayerSelection(StageParams):
    """Which conv/dense layers a stage transforms: by type, by name pattern, minus first/last."""

    keep_first_dense: bool = Field(True, description="leave the model's first conv/dense alone")
    keep_last_dense: bool = Field(True, description="leave the model's last conv/dense alone")
    layer_types: list[LayerType] | None = Field(
        None, min_length=1, description="only layers of these types, e.g. [Conv2D, Dense]"
    )
    layer_names: list[str] | None = Field(
        None, min_length=1, description="only layers whose name matches a glob, e.g. ['conv2_*']"
    )


# The weight TF-MOT prunes and clusters in each layer type (its registries' choice).
KERNEL_ATTRIBUTE = {"DepthwiseConv2D": "depthwise_kernel", "SeparableConv2D": "pointwise_kernel"}


# Layer types TF-MOT's pruning and clustering registries accept but leave alone (they list no
# weights for them): selected, they would only dilute the measured sparsity.
UNTOUCHED = {
    "DepthwiseConv2D": "TF-MOT prunes and clusters no depthwise kernel (its registries list no "
    "weights for DepthwiseConv2D)"
}
# Clustering also leaves attention alone: its four projection kernels, each with its own
# centroids, would break the one-kernel, n-values contract the cluster stage measures.
UNCLUSTERED = {
    **UNTOUCHED,
    "MultiHeadAttention": "attention is not clustered (its four projections are pruned only)",
}


def tfmot_targets(
    model: Any, names: list[str], untouched: dict[str, str] = UNTOUCHED
) -> tuple[list[str], dict[str, str]]:
    """(layers TF-MOT really transforms, {left-alone layer: why}); `untouched` maps the layer
    types the technique leaves alone to the reason."""
    skipped = {
        n: untouched[t] for n in names if (t := type(model.get_layer(n)).__name__) in untouched
    }
    return [n for n in names if n not in skipped], skipped


# The four projections TF-MOT's prune registry prunes in a MultiHeadAttention layer.
ATTENTION_PROJECTIONS = ("_query_dense", "_key_dense", "_value_dense", "_output_dense")


def kernels_of(layer: Any) -> list[Any]:
    """Every kernel variable a layer's pruning touches: one, or attention's four projections."""
    if type(layer).__name__ == "MultiHeadAttention":
        return [getattr(layer, name).kernel for name in ATTENTION_PROJECTIONS]
    return [kernel_of(layer)]


def kernel_of(layer: Any) -> Any:
    """The layer's kernel variable: `kernel`, or a depthwise/separable layer's own."""
    return getattr(layer, KERNEL_ATTRIBUTE.get(type(layer).__name__, "kernel"))


def has_kernel(layer: Any) -> bool:
    return hasattr(layer, KERNEL_ATTRIBUTE.get(type(layer).__name__, "kernel"))


def copy_model(model: Any) -> Any:
    """A copy with the same weights: TF-MOT wrappers share (and alter) the layers they wrap."""
    from effcli._tf import keras

    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    return copy


def select_layers(
    model: Any,
    keep_first_dense: bool,
    keep_last_dense: bool,
    types: list[str] | None = None,
    names: list[str] | None = None,
) -> list[str]:
    """Names of conv/dense layers to transform.

    First and last refer to the model's own first and last conv/dense layers (the input stem and
    the classifier head, the most sensitive to compression), whatever the type/name filters.
    """
    kernels = [layer for layer in model.layers if type(layer).__name__ in PRUNABLE]
    skip = set()
    if keep_first_dense and kernels:
        skip.add(kernels[0].name)
    if keep_last_dense and kernels:
        skip.add(kernels[-1].name)
    return [
        layer.name
        for layer in kernels
        if layer.name not in skip
        and (types is None or type(layer).__name__ in types)
        and (names is None or any(fnmatchcase(layer.name, pattern) for pattern in names))
    ]


def selected(model: Any, params: LayerSelection) -> list[str]:
    """`select_layers` driven by a stage's LayerSelection arguments."""
    return select_layers(
        model,
        params.keep_first_dense,
        params.keep_last_dense,
        list(params.layer_types) if params.layer_types else None,
        params.layer_names,
    )


NO_LAYER = (
    "no layer selected: check layer_types/layer_names against the model's layers, or set "
    "keep_first_dense/keep_last_dense false"
)
