"""The low_rank stage: parameters fall exactly as predicted, exact ranks change nothing, graphs
with branches rebuild identically, and the result still converts to TFLite."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from effcli.artifacts import KerasModel
from effcli.data.base import DataSplits
from effcli.errors import StageFailed
from effcli.models._rewrite import replace_layers
from effcli.models.base import families
from effcli.stages.base import StageContext, StageResult
from effcli.stages.low_rank import LowRankParams, LowRankStage
from tests.integration.helpers import random_splits

pytestmark = pytest.mark.slow


def tiny_data(shape: tuple[int, ...] = (8, 8, 3)) -> DataSplits:
    return random_splits(shape)


def model_with_branch() -> Any:
    """Conv stem, a 1x1 conv on an Add branch, and two Dense layers."""
    from effcli._tf import keras

    inputs = keras.Input((8, 8, 3), name="input")
    x = keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="stem")(inputs)
    y = keras.layers.Conv2D(16, 1, activation="relu", name="pointwise")(x)
    x = keras.layers.Add(name="add")([x, y])
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(64, activation="relu", name="dense")(x)
    outputs = keras.layers.Dense(10, name="logits")(x)
    return keras.Model(inputs, outputs, name="branchy")


def run(model: Any, data: DataSplits | None = None, **params: Any) -> StageResult:
    p = LowRankParams.model_validate(params)
    resolved = {**p.model_dump(mode="json"), "batch_size": 32, "optimizer": "adam"}
    ctx = StageContext(data=data or tiny_data(), seed=0)
    return LowRankStage(p, resolved).run(KerasModel(model), ctx)


def predicted_saving(result: StageResult) -> int:
    layers = result.info["layers"].values()
    return sum(v["in"] * v["out"] - v["rank"] * (v["in"] + v["out"]) for v in layers)


def test_cnn_at_rank_8_loses_exactly_the_predicted_params() -> None:
    family = families.get("cnn")
    model = family().build(family.Params(width_multiplier=0.25), (8, 8, 1), 10)
    data = tiny_data((8, 8, 1))
    result = run(model, data, rank=8, keep_last_dense=True, epochs=1)
    new = result.artifact.model

    # Only the 32x128 hidden Dense qualifies: 3x3 convs are skipped, the logits head is kept.
    assert set(result.info["layers"]) == {"dense"}
    assert result.info["layers"]["dense"] | {"energy_kept": 0} == {
        "in": 32,
        "out": 128,
        "rank": 8,
        "energy_kept": 0,
        "params_before": 32 * 128,
        "params_after": 8 * 160,
    }
    assert "only 1x1 convolutions" in result.info["skipped_layers"]["conv1_2"]
    assert predicted_saving(result) == 32 * 128 - 8 * 160
    assert model.count_params() - new.count_params() == predicted_saving(result)
    assert new.get_layer("dense_lr_u").kernel.shape == (32, 8)
    assert new.get_layer("dense").kernel.shape == (8, 128)
    assert new.get_layer("dense").get_config()["activation"] == "relu"
    assert new.name == model.name
    assert new.predict(data.x_test, verbose=0).shape == (32, 10)

    assert result.metrics["low_rank_layers"] == 1
    assert result.metrics["low_rank_params_before"] == 32 * 128
    assert result.metrics["low_rank_params_after"] == 8 * 160
    assert 0 < result.metrics["low_rank_energy_kept"] < 1
    assert result.train_seconds > 0 and result.info["best_epoch"] == 1
    assert len(KerasModel(new).to_tflite().content) > 0


def test_exact_ranks_reproduce_the_outputs_without_fine_tune() -> None:
    """Kernels of rank 4 (Dense) and 2 (1x1 conv): energy 1.0 finds those ranks, nothing changes."""
    model = model_with_branch()
    rng = np.random.default_rng(2)
    dense = rng.normal(size=(1024, 4)) @ rng.normal(size=(4, 64)) / 32
    model.get_layer("dense").kernel.assign(dense.astype(np.float32))
    pointwise = rng.normal(size=(16, 2)) @ rng.normal(size=(2, 16)) / 4
    model.get_layer("pointwise").kernel.assign(pointwise.reshape(1, 1, 16, 16).astype(np.float32))
    x = tiny_data().x_test

    result = run(model, energy=1.0, epochs=0)
    new = result.artifact.model
    assert {k: v["rank"] for k, v in result.info["layers"].items()} == {"dense": 4, "pointwise": 2}
    assert result.metrics["low_rank_energy_kept"] == pytest.approx(1.0)
    np.testing.assert_allclose(new.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-4)
    assert model.count_params() - new.count_params() == predicted_saving(result)
    assert new.get_layer("pointwise_lr_u").kernel.shape == (1, 1, 16, 2)
    assert new.get_layer("pointwise").kernel.shape == (1, 1, 2, 16)
    assert result.train_seconds == 0.0 and "best_epoch" not in result.info


def test_identity_rebuild_through_a_branch_is_identical_and_independent() -> None:
    model = model_with_branch()
    x = tiny_data().x_test
    expected = model.predict(x, verbose=0)

    def same(layer: Any) -> list[Any]:
        return [(layer.__class__.from_config(layer.get_config()), layer.get_weights())]

    for replacements in ({}, {"pointwise": same, "add": same, "dense": same}):
        copy = replace_layers(model, replacements)
        np.testing.assert_allclose(copy.predict(x, verbose=0), expected, atol=1e-6)
        assert [layer.name for layer in copy.layers] == [layer.name for layer in model.layers]
        assert not {id(layer) for layer in copy.layers} & {id(layer) for layer in model.layers}
        assert not {id(w) for w in copy.weights} & {id(w) for w in model.weights}
        assert copy.name == model.name


def test_sequential_stays_sequential_and_subclassed_is_refused() -> None:
    from effcli._tf import keras

    model = keras.Sequential(
        [keras.Input((6,)), keras.layers.Dense(5, name="a"), keras.layers.Dense(3, name="b")],
        name="seq",
    )

    def split(layer: Any) -> list[Any]:  # a = a @ identity: two layers, same function
        w, bias = layer.get_weights()
        first = keras.layers.Dense(5, use_bias=False, name="a_lr_u")
        return [(first, [w]), (keras.layers.Dense(5, name="a"), [np.eye(5), bias])]

    copy = replace_layers(model, {"a": split})
    assert isinstance(copy, keras.Sequential) and copy.name == "seq"
    assert [layer.name for layer in copy.layers] == ["a_lr_u", "a", "b"]
    x = np.random.default_rng(0).normal(size=(4, 6)).astype(np.float32)
    np.testing.assert_allclose(copy.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-5)

    class Subclassed(keras.Model):
        def call(self, inputs: Any) -> Any:
            return inputs

    with pytest.raises(ValueError, match="subclassed"):
        replace_layers(Subclassed(), {})
    with pytest.raises(ValueError, match="no layer named 'nope'"):
        replace_layers(model, {"nope": split})


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"rank": 16, "layer_names": ["pointwise"]}, "pointwise: rank 16 saves nothing"),
        (
            {"rank": 4, "layer_names": ["dense"], "min_params_saving": 0.999},
            "dense: rank 4 saves 93%.*min_params_saving",
        ),
        (
            {"rank": 2, "layer_names": ["stem"], "keep_first_dense": False},
            "stem: 3x3 convolution; only 1x1 convolutions factorize.*keep_last_dense false",
        ),
        ({"rank": 2, "layer_names": ["nope*"]}, "no layer selected"),
    ],
)
def test_nothing_to_factorize_fails_with_the_reason(params: dict[str, Any], message: str) -> None:
    with pytest.raises(StageFailed, match=message):
        run(model_with_branch(), **params)
