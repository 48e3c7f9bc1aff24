"""Footprint read from the flatbuffer matches hand-computed counts on a known model."""

from __future__ import annotations

import json

import numpy as np
import pytest

from effcli.artifacts import KerasModel
from effcli.measure.flatbuffer import InvalidFlatbuffer, model_stats

pytestmark = pytest.mark.slow


def known_model() -> tuple[bytes, np.ndarray]:
    from effcli._tf import keras

    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv")(inputs)
    x = keras.layers.DepthwiseConv2D(3, padding="same", name="depthwise")(x)
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(10, name="head")(x)
    model = keras.Model(inputs, outputs)
    rng = np.random.default_rng(0)
    head = rng.choice([-1.0, 0.0, 1.0], size=(256, 10), p=[0.25, 0.5, 0.25])
    model.get_layer("head").set_weights([head.astype(np.float32), np.arange(10, dtype=np.float32)])
    for name in ("conv", "depthwise"):
        layer = model.get_layer(name)
        layer.set_weights([rng.normal(size=w.shape).astype(np.float32) + 3 for w in layer.weights])
    return KerasModel(model).to_tflite().content, head


def test_counts_match_the_architecture() -> None:
    content, head_kernel = known_model()
    stats = model_stats(content)
    by_name = {layer.op: layer for layer in stats.layers}
    assert set(by_name) == {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"}
    # conv 3*3*1*4 + 4, depthwise 3*3*4 + 4, dense 256*10 + 10
    assert stats.params == 40 + 40 + 2570
    assert by_name["CONV_2D"].macs == 8 * 8 * 4 * 9
    assert by_name["DEPTHWISE_CONV_2D"].macs == 8 * 8 * 4 * 9
    assert by_name["FULLY_CONNECTED"].macs == 256 * 10
    assert stats.macs == 2 * 2304 + 2560
    head = by_name["FULLY_CONNECTED"]
    assert head.unique_values == 3
    assert head.sparsity == pytest.approx(float(np.mean(head_kernel == 0)))
    # Bias 0 of the head is the only zero outside its kernel.
    assert stats.nonzero_params == stats.params - (head.kernel_params - head.kernel_nonzero) - 1
    # Two float32 8x8x4 activations alive at once (conv output -> depthwise output).
    assert stats.peak_memory_bytes == 2 * 8 * 8 * 4 * 4
    assert stats.weight_dtypes == {"float32": stats.params}
    json.dumps(stats.to_json())  # the per-layer file is plain JSON


@pytest.mark.parametrize("content", [b"", b"not a model at all", b"\x00" * 64])
def test_not_a_flatbuffer_is_refused(content: bytes) -> None:
    with pytest.raises(InvalidFlatbuffer):
        model_stats(content)


def test_truncated_file_is_refused() -> None:
    content, _ = known_model()
    with pytest.raises(InvalidFlatbuffer):
        model_stats(content[: len(content) // 3])
