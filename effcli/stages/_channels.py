"""Structured (channel) pruning that really removes channels: the lowest-L1 filters of a conv or
dense layer go, with everything that carries those channels on (BatchNorm, activations, pooling,
padding, a depthwise convolution) and the matching input weights of the layers that read them,
and the model is rebuilt thinner. TF-MOT has no such technique; a thinner model is smaller in raw
bytes, MACs and latency at once.

What constrains it: a layer's channels can go only when every path from it reaches plain
consumers (a Conv2D with groups=1 or a Dense, possibly after Flatten or global pooling). A path
into an Add or Multiply (a residual, a squeeze-and-excitation), a Concatenate, a Reshape, an
attention layer or the model's output would need the same channels removed on the other side
too; such layers are left whole, and `prune_channels` records why (in MobileNetV2 the projection
convolutions feed residual adds, the expansion convolutions can be thinned).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from effcli.models._rewrite import replace_layers

# Layers that carry each channel through on its own (the channel axis is last).
PASS_THROUGH = {
    "BatchNormalization",
    "Activation",
    "ReLU",
    "LeakyReLU",
    "PReLU",
    "Dropout",
    "SpatialDropout2D",
    "MaxPooling2D",
    "AveragePooling2D",
    "ZeroPadding2D",
    "Cropping2D",
    "UpSampling2D",
    "Resizing",
    "DepthwiseConv2D",
    "GlobalAveragePooling2D",
    "GlobalMaxPooling2D",
    "GlobalAveragePooling1D",
    "GlobalMaxPooling1D",
    "Flatten",
}
SOURCES = ("Conv2D", "Dense")  # layers whose filters (output channels) are ranked and cut


@dataclass
class Cut:
    """One source layer's channels to keep, and the layers whose weights follow."""

    source: str
    keep: np.ndarray  # sorted indices of the kept output channels
    total: int
    carriers: list[str] = field(default_factory=list)  # pass-through layers on the way
    readers: dict[str, np.ndarray] = field(default_factory=dict)  # consumer -> kept input rows


def _outbound(layer: Any) -> list[Any]:
    return [node.outbound_layer for node in layer._outbound_nodes]


def _blocked(model: Any, name: str) -> str | None:
    """Why the output channels of `name` cannot be removed (None when they can)."""
    layer = model.get_layer(name)
    kind = type(layer).__name__
    if kind == "Conv2D" and layer.get_config().get("groups", 1) != 1:
        return "a grouped convolution"
    if len(layer._inbound_nodes) > 1:
        return "a layer called more than once"
    outputs = {id(t) for t in model.outputs}
    frontier = [layer]
    while frontier:
        current = frontier.pop()
        if any(id(t) in outputs for t in _outputs(current)):
            return f"its channels reach the model's output through {current.name}"
        for nxt in _outbound(current):
            kind = type(nxt).__name__
            if kind in SOURCES and (kind != "Conv2D" or nxt.get_config().get("groups", 1) == 1):
                continue  # a reader: its input rows follow
            if kind in PASS_THROUGH:
                if kind == "DepthwiseConv2D" and nxt.get_config()["depth_multiplier"] != 1:
                    return f"{nxt.name} multiplies channels (depth_multiplier != 1)"
                frontier.append(nxt)
                continue
            return f"its channels flow into {nxt.name} ({kind}), whose other inputs would not match"
    return None


def _outputs(layer: Any) -> list[Any]:
    out = layer.output
    return out if isinstance(out, list) else [out]


def plan_cuts(model: Any, names: list[str], fraction: float) -> tuple[list[Cut], dict[str, str]]:
    """For each selected source layer whose channels may go: the lowest-L1 `fraction` of its
    filters to cut (at least one kept); and {layer: why not} for the others."""
    cuts: list[Cut] = []
    refused: dict[str, str] = {}
    for name in names:
        layer = model.get_layer(name)
        if type(layer).__name__ not in SOURCES:
            refused[name] = f"{type(layer).__name__}: only Conv2D and Dense filters are cut"
            continue
        why = _blocked(model, name)
        if why:
            refused[name] = why
            continue
        kernel = layer.kernel.numpy()
        norms = np.abs(kernel).reshape(-1, kernel.shape[-1]).sum(axis=0)
        total = kernel.shape[-1]
        kept = max(1, total - int(round(fraction * total)))
        keep = np.sort(np.argsort(-norms, kind="stable")[:kept])
        cut = Cut(source=name, keep=keep, total=total)
        _follow(layer, keep, total, cut)
        cuts.append(cut)
    return cuts, refused


def _follow(layer: Any, keep: np.ndarray, channels: int, cut: Cut) -> None:
    """Collect the carriers and readers downstream of a cut layer (paths checked already)."""
    for nxt in _outbound(layer):
        kind = type(nxt).__name__
        if kind in SOURCES:
            cut.readers[nxt.name] = _rows(nxt, keep, channels)
        else:
            cut.carriers.append(nxt.name)
            _follow(nxt, keep, channels, cut)


def _rows(reader: Any, keep: np.ndarray, channels: int) -> np.ndarray:
    """The input rows of a reader's kernel that the kept channels feed (after a Flatten, each
    spatial position repeats the channels)."""
    inputs = int(reader.kernel.shape[-2])
    if inputs == channels:
        return keep
    positions = inputs // channels  # Flatten of (H, W, C): index = position * C + channel
    return (np.arange(positions)[:, None] * channels + keep[None, :]).reshape(-1)


def apply_cuts(model: Any, cuts: list[Cut]) -> Any:
    """The thinner model: cut layers rebuilt with fewer filters, carriers and readers with the
    matching weights; every other layer is copied."""
    replacements: dict[str, Any] = {}
    sliced: dict[str, list[tuple[int, np.ndarray]]] = {}  # layer -> (axis kind, indices)
    for cut in cuts:
        replacements[cut.source] = _source(model.get_layer(cut.source), cut.keep)
        for name in cut.carriers:
            sliced.setdefault(name, []).append((0, cut.keep))
        for name, rows in cut.readers.items():
            sliced.setdefault(name, []).append((1, rows))
    for name, slices in sliced.items():
        layer = model.get_layer(name)
        if name in replacements:  # a reader that is itself cut: slice its inputs too
            replacements[name] = _source(layer, _cut_of(cuts, name).keep, _rows_of(slices))
        else:
            replacements[name] = _follower(layer, slices)
    return replace_layers(model, replacements)


def _cut_of(cuts: list[Cut], name: str) -> Cut:
    return next(cut for cut in cuts if cut.source == name)


def _rows_of(slices: list[tuple[int, np.ndarray]]) -> np.ndarray | None:
    rows = [indices for axis, indices in slices if axis == 1]
    return rows[0] if rows else None


def _source(layer: Any, keep: np.ndarray, rows: np.ndarray | None = None) -> Any:
    """A replacement with `len(keep)` filters (and, read from a cut layer, `rows` inputs)."""
    config = layer.get_config()
    config["filters" if "filters" in config else "units"] = len(keep)
    kernel, *rest = layer.get_weights()
    if rows is not None:
        kernel = np.take(kernel, rows, axis=-2)
    weights = [kernel[..., keep], *[w[keep] for w in rest]]
    return lambda original, c=config, w=weights: [(type(original).from_config(c), w)]


def _follower(layer: Any, slices: list[tuple[int, np.ndarray]]) -> Any:
    """A replacement keeping the layer's configuration with its weights sliced: per channel
    for a carrier (BatchNorm statistics, a depthwise kernel), by input rows for a reader."""
    weights = layer.get_weights()
    depthwise = type(layer).__name__ == "DepthwiseConv2D"  # kernel (kh, kw, C, 1), bias (C,)
    for axis, indices in slices:
        if axis == 0 and depthwise:
            weights = [np.take(weights[0], indices, axis=2), *[w[indices] for w in weights[1:]]]
        elif axis == 0:  # a carrier: every weight is per channel (last axis)
            weights = [np.take(w, indices, axis=-1) for w in weights]
        else:  # a reader: the kernel's input rows
            weights = [np.take(weights[0], indices, axis=-2), *weights[1:]]
    config = layer.get_config()
    return lambda original, c=config, w=weights: [(type(original).from_config(c), w)]
