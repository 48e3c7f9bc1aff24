"""Load a weights file users already have (an ImageNet backbone, an earlier run) by layer name.

Keras' `load_weights(by_name=True, skip_mismatch=True)` skips every layer whose shapes differ
with only a log warning, so a file saved at another width silently loads nothing. Here two
layers may differ, because fine-tuning needs them to: the classification head (another number of
classes) and the stem (1-channel inputs against 3-channel ImageNet weights). Any other mismatch,
or a file sharing no layer name with the model, is an error naming the layer and both shapes.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from effcli._tf import keras


def _file_layers(path: Path) -> dict[str, list[np.ndarray]]:
    """Layer name -> its weight arrays, from a Keras HDF5 weights (or whole-model) file."""
    import h5py

    try:
        with h5py.File(path, "r") as handle:
            root = handle.get("model_weights", handle)
            names = [_text(n) for n in root.attrs.get("layer_names", [])]
            layers = {}
            for name in names:
                group = root[name]
                weight_names = [_text(n) for n in group.attrs.get("weight_names", [])]
                layers[name] = [np.asarray(group[w]) for w in weight_names]
    except (OSError, KeyError) as err:
        raise ValueError(
            f"{path}: not a Keras HDF5 weights file ({err}); save one with "
            "model.save_weights('weights.h5')"
        ) from None
    return layers


def _text(value: bytes | str) -> str:
    return value.decode("utf8") if isinstance(value, bytes) else value


def _shapes(arrays: list[np.ndarray]) -> str:
    return ", ".join(str(tuple(a.shape)) for a in arrays) or "no weights"


def load_by_name(model: keras.Model, path: Path) -> None:
    """Set `model`'s layers from the file's layers of the same name; see the module docstring."""
    stored = _file_layers(path)
    weighted = [layer for layer in model.layers if layer.weights]
    may_differ = {weighted[0].name, weighted[-1].name} if weighted else set()
    loaded: list[str] = []
    for layer in weighted:
        arrays = stored.get(layer.name)
        if arrays is None:
            continue
        mine = layer.get_weights()
        fits = len(arrays) == len(mine) and all(
            a.shape == m.shape for a, m in zip(arrays, mine, strict=True)
        )
        if fits:
            layer.set_weights(arrays)
            loaded.append(layer.name)
        elif layer.name not in may_differ:  # the stem or head may differ: left initialised
            raise ValueError(
                f"{path.name}: layer '{layer.name}' has shapes {_shapes(arrays)} in the file but "
                f"{_shapes(mine)} in the model; the file was saved from another architecture or "
                "width (only the stem and the head may differ)"
            )
    if not loaded:
        raise ValueError(
            f"{path.name}: no layer of the file fits the model (file layers: "
            f"{', '.join(list(stored)[:3]) or 'none'}...); it was saved from another architecture"
        )
