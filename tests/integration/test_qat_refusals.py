"""QAT quantizes what TF-MOT accepts, records what it leaves float, and fails in one line when
TF-MOT refuses the whole model."""

from __future__ import annotations

from typing import Any

import pytest

from effcli.artifacts import KerasModel
from effcli.errors import StageFailed
from effcli.measure.flatbuffer import model_stats
from effcli.stages.base import StageContext
from effcli.stages.quantize import QuantizeParams, QuantizeStage
from tests.integration.helpers import random_splits

pytestmark = pytest.mark.slow


def qat(model: Any, shape: tuple[int, ...]) -> Any:
    params = QuantizeParams(mode="qat", epochs=1)
    resolved = {
        **params.model_dump(mode="json"),
        "batch_size": 32,
        "optimizer": "adam",
        "scheme": "default",
    }
    ctx = StageContext(data=random_splits(shape), seed=0)
    return QuantizeStage(params, resolved).run(KerasModel(model), ctx)


def test_layers_without_kernels_get_their_output_quantized() -> None:
    from effcli._tf import keras

    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Rescaling(0.5, name="rescale")(inputs)  # refused by TF-MOT's registry
    x = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(x)
    x = keras.layers.BatchNormalization(name="bn")(x)  # after the activation: refused too
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(10, name="head")(x)
    result = qat(keras.Model(inputs, outputs), (8, 8, 1))
    assert result.info["left_float"] == []
    assert result.info["io"] == "int8"
    assert result.metrics["qat_float_layers"] == 0
    stats = model_stats(result.artifact.content)
    assert {layer.dtype for layer in stats.layers} == {"int8"}
    assert stats.weight_dtypes.get("float32", 0) == 0


def test_a_refused_layer_with_a_kernel_stays_float_and_is_recorded() -> None:
    from effcli._tf import keras

    inputs = keras.Input((16, 2))
    x = keras.layers.Conv1D(4, 3, activation="relu", name="conv1d")(inputs)  # no 8-bit config
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(10, name="head")(x)
    result = qat(keras.Model(inputs, outputs), (16, 2))
    (left,) = result.info["left_float"]
    assert left.startswith("conv1d: ") and "not supported" in left
    assert result.metrics["qat_float_layers"] == 1
    # Trained without fake-quant, the refused layer is calibrated at export: the file is integer.
    kinds = {layer.op: layer.dtype for layer in model_stats(result.artifact.content).layers}
    assert kinds == {"CONV_2D": "int8", "FULLY_CONNECTED": "int8"}


def test_a_model_tfmot_refuses_fails_in_one_line() -> None:
    from effcli._tf import keras

    inner = keras.Sequential([keras.layers.Dense(8, activation="relu")], name="inner")
    inputs = keras.Input((6,))
    outputs = keras.layers.Dense(10)(inner(inputs))  # a nested model: TF-MOT refuses it
    with pytest.raises(StageFailed) as info:
        qat(keras.Model(inputs, outputs), (6,))
    message = str(info.value)
    assert message.startswith("QAT cannot quantize this model: ")
    assert "\n" not in message and len(message) < 400
