"""Rebuild a Functional or Sequential tf_keras model with some layers replaced by chains of layers.

`clone_model` maps one layer to one layer; factorizing a layer into two needs the graph itself.
This walks the model's nodes the way tf_keras runs them (deepest first) and calls fresh copies
of every layer on fresh inputs, so the result shares no layer or weight with the original.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

# What a replacement returns: the layers to call in order in place of the original. An item may
# be a (layer, weights) pair, whose weights are set once the layer is built by its first call;
# a bare layer keeps its fresh initialization (set its weights later with `get_layer`).
ChainItem = Any | tuple[Any, Sequence[np.ndarray]]
Replacement = Callable[[Any], list[ChainItem]]


def _fresh(layer: Any) -> Any:
    """A new layer of the same class and configuration (unbuilt, so no shared weights)."""
    return layer.__class__.from_config(layer.get_config())


def _chain_for(layer: Any, replacements: dict[str, Replacement]) -> list[tuple[Any, Any]]:
    """(new layer, weights or None) pairs standing for `layer` in the rebuilt model."""
    if layer.name not in replacements:
        return [(_fresh(layer), layer.get_weights())]
    items = replacements[layer.name](layer)
    if not isinstance(items, list):
        raise ValueError(f"the replacement for layer {layer.name!r} must return a list of layers")
    chain = []
    for item in items:
        new_layer, weights = item if isinstance(item, tuple) else (item, None)
        if new_layer is layer:
            raise ValueError(
                f"the replacement for layer {layer.name!r} returned the original layer; return "
                "new layers (e.g. layer.__class__.from_config(layer.get_config()))"
            )
        chain.append((new_layer, weights))
    return chain


def _call_chain(chain: list[tuple[Any, Any]], name: str, args: Any, kwargs: dict[str, Any]) -> Any:
    """Call the chain's first layer as the original was called, the rest on the previous output."""
    if not chain:  # an empty chain removes a single-input layer
        if len(args) != 1 or kwargs:
            raise ValueError(f"layer {name!r} has several inputs; it cannot be replaced by nothing")
        return args[0]
    (first, _), *rest = chain
    x = first(*args, **kwargs)
    for new_layer, _ in rest:
        x = new_layer(x)
    return x


def _set_weights(chain: list[tuple[Any, Any]]) -> None:
    for new_layer, weights in chain:
        if weights is not None:
            new_layer.set_weights(list(weights))


def _check(model: Any, replacements: dict[str, Replacement]) -> None:
    from effcli._tf import keras

    if isinstance(model, keras.Sequential):
        if not model.built:
            raise ValueError(
                f"Sequential model {model.name!r} is not built; give it a keras.Input first"
            )
    elif not getattr(model, "_is_graph_network", False):
        raise ValueError(
            f"model {model.name!r} is a subclassed tf_keras model; only Functional and Sequential "
            "models can be rewritten layer by layer"
        )
    names = {layer.name for layer in model.layers}
    unknown = sorted(set(replacements) - names)
    if unknown:
        raise ValueError(f"no layer named {unknown[0]!r} in model {model.name!r}")


def _replace_sequential(model: Any, replacements: dict[str, Replacement]) -> Any:
    from effcli._tf import keras

    chains = [_chain_for(layer, replacements) for layer in model.layers]
    shape = model.input_shape
    dtype = model.inputs[0].dtype if model.inputs else None
    inputs = keras.Input(shape=shape[1:], batch_size=shape[0], dtype=dtype)
    new = keras.Sequential(
        [inputs, *(new_layer for chain in chains for new_layer, _ in chain)], name=model.name
    )
    for chain in chains:
        _set_weights(chain)
    return new


def _replace_functional(model: Any, replacements: dict[str, Replacement]) -> Any:
    from effcli._tf import keras, tf

    usage = model._tensor_usage_count
    tensors: dict[str, list[Any]] = {}  # reference tensor id -> its copies (popped once per use)
    new_inputs = []
    for reference in model.inputs:
        fresh = keras.layers.InputLayer(**reference._keras_history.layer.get_config()).output
        new_inputs.append(fresh)
        tensors[str(id(reference))] = [fresh] * usage[str(id(reference))]

    chains: dict[int, list[tuple[Any, Any]]] = {}  # a layer called several times keeps one chain
    for depth in sorted(model._nodes_by_depth, reverse=True):
        for node in model._nodes_by_depth[depth]:
            if node.is_input or any(i not in tensors for i in node.flat_input_ids):
                continue
            layer = node.layer
            first_call = id(layer) not in chains
            if first_call:
                chains[id(layer)] = _chain_for(layer, replacements)
            args, kwargs = node.map_arguments(tensors)
            outputs = _call_chain(chains[id(layer)], layer.name, args, kwargs)
            if first_call:
                _set_weights(chains[id(layer)])  # every layer is built by now
            flat = tf.nest.flatten(outputs)
            if len(flat) != len(node.flat_output_ids):
                raise ValueError(
                    f"the replacement for layer {layer.name!r} gives {len(flat)} outputs where the "
                    f"original gave {len(node.flat_output_ids)}"
                )
            for x_id, y in zip(node.flat_output_ids, flat, strict=True):
                tensors[x_id] = [y] * usage[x_id]

    new_outputs = [tensors[str(id(reference))].pop() for reference in model.outputs]
    return keras.Model(
        tf.nest.pack_sequence_as(model._nested_inputs, new_inputs),
        tf.nest.pack_sequence_as(model._nested_outputs, new_outputs),
        name=model.name,
    )


def replace_layers(model: Any, replacements: dict[str, Replacement]) -> Any:
    """A copy of `model` where each named layer is replaced by the chain its function returns.

    Every other layer is rebuilt from its config with its weights copied; the result keeps the
    model's name and kind (Functional or Sequential) and shares no layer with the original.
    Raises ValueError for subclassed models and unknown layer names.
    """
    from effcli._tf import keras

    _check(model, replacements)
    if isinstance(model, keras.Sequential):
        return _replace_sequential(model, replacements)
    return _replace_functional(model, replacements)
