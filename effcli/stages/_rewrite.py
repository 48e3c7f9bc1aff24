"""Rebuild a Functional tf_keras model with some layers replaced by chains of new layers.

`clone_model` maps one layer to one layer; factorizing a layer into two needs the graph itself.
This walks the model's nodes the way tf_keras runs them (deepest first) and calls fresh copies
of every layer on fresh inputs, so the result shares no layer or weight with the original.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

# A replacement: the new layers to call in sequence, each with the weights to give it.
Chain = list[tuple[Any, list[np.ndarray]]]


def _fresh(layer: Any) -> Any:
    return layer.__class__.from_config(layer.get_config())


def replace_layers(model: Any, replacements: dict[str, Callable[[Any], Chain]]) -> Any:
    """A copy of `model` where each named layer is replaced by the chain its function returns."""
    from effcli._tf import keras, tf

    if not getattr(model, "_is_graph_network", False):
        raise ValueError(
            f"model {model.name!r} is subclassed; only Functional or Sequential tf_keras models "
            "can be rewritten"
        )
    unknown = set(replacements) - {layer.name for layer in model.layers}
    if unknown:
        raise ValueError(f"no layer named {sorted(unknown)[0]!r} in model {model.name!r}")

    tensors: dict[str, list[Any]] = {}
    usage = model._tensor_usage_count
    new_inputs = []
    for reference, name in zip(model.inputs, model.input_names, strict=True):
        fresh = keras.Input(shape=reference.shape[1:], dtype=reference.dtype, name=name)
        new_inputs.append(fresh)
        tensors[str(id(reference))] = [fresh] * usage[str(id(reference))]

    copies: dict[int, Any] = {}  # a layer called several times keeps one copy

    def call(layer: Any, args: Any, kwargs: dict[str, Any]) -> Any:
        if layer.name in replacements:
            chain = replacements[layer.name](layer)
            (x,), rest = args, kwargs
            for new_layer, weights in chain:
                x = new_layer(x, **rest)
                new_layer.set_weights(weights)
                rest = {}
            return x
        first_call = id(layer) not in copies
        if first_call:
            copies[id(layer)] = _fresh(layer)
        outputs = copies[id(layer)](*args, **kwargs)
        if first_call:
            copies[id(layer)].set_weights(layer.get_weights())
        return outputs

    for depth in sorted(model._nodes_by_depth, reverse=True):
        for node in model._nodes_by_depth[depth]:
            if node.is_input or any(i not in tensors for i in node.flat_input_ids):
                continue
            args, kwargs = node.map_arguments(tensors)
            outputs = call(node.layer, args, kwargs)
            for x_id, y in zip(node.flat_output_ids, tf.nest.flatten(outputs), strict=True):
                tensors[x_id] = [y] * usage[x_id]

    new_outputs = [tensors[str(id(reference))].pop() for reference in model.outputs]
    return keras.Model(
        new_inputs if len(new_inputs) > 1 else new_inputs[0],
        new_outputs if len(new_outputs) > 1 else new_outputs[0],
        name=model.name,
    )
