"""Layer selection and copying shared by the stages that wrap layers with TF-MOT."""

from __future__ import annotations

from typing import Any

# Layers whose kernels TF-MOT can prune or cluster.
PRUNABLE = ("Conv2D", "Conv1D", "Dense", "DepthwiseConv2D", "SeparableConv2D")


def copy_model(model: Any) -> Any:
    """A copy with the same weights: TF-MOT wrappers share (and alter) the layers they wrap."""
    from effcli._tf import keras

    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    return copy


def select_layers(model: Any, keep_first_dense: bool, keep_last_dense: bool) -> list[str]:
    """Names of conv/dense layers to transform, minus the first and/or last if asked."""
    names = [layer.name for layer in model.layers if type(layer).__name__ in PRUNABLE]
    if keep_first_dense and names:
        names = names[1:]
    if keep_last_dense and names:
        names = names[:-1]
    return names
