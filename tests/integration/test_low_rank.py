"""The low_rank stage: parameters fall exactly as predicted, full rank is exact, graphs rebuild."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from effcli.artifacts import KerasModel
from effcli.data.base import DataSplits
from effcli.errors import StageFailed
from effcli.stages._rewrite import replace_layers
from effcli.stages.base import StageContext
from effcli.stages.low_rank import LowRankParams, LowRankStage

pytestmark = pytest.mark.slow


def tiny_data() -> DataSplits:
    rng = np.random.default_rng(0)

    def split(n: int) -> tuple[np.ndarray, np.ndarray]:
        return rng.normal(size=(n, 8, 8, 3)).astype(np.float32), rng.integers(0, 10, n)

    (xt, yt), (xv, yv), (xs, ys) = split(64), split(32), split(32)
    return DataSplits(
        x_train=xt,
        y_train=yt,
        x_val=xv,
        y_val=yv,
        x_test=xs,
        y_test=ys,
        num_classes=10,
        kind="image",
    )


def model_with_branch() -> Any:
    """Conv stem, a 1x1 conv, an Add branch, and two Dense layers."""
    from effcli._tf import keras

    inputs = keras.Input((8, 8, 3), name="input")
    x = keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="stem")(inputs)
    y = keras.layers.Conv2D(16, 1, activation="relu", name="pointwise")(x)
    x = keras.layers.Add(name="add")([x, y])
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(64, activation="relu", name="dense")(x)
    outputs = keras.layers.Dense(10, name="logits")(x)
    return keras.Model(inputs, outputs, name="branchy")


def run(model: Any, **params: Any) -> Any:
    p = LowRankParams.model_validate(params)
    resolved = {**p.model_dump(mode="json"), "batch_size": 32, "optimizer": "adam"}
    ctx = StageContext(data=tiny_data(), seed=0)
    return LowRankStage(p, resolved).run(KerasModel(model), ctx)


def test_params_fall_exactly_as_predicted() -> None:
    model = model_with_branch()
    result = run(model, rank=4, epochs=1)
    new = result.artifact.model
    # pointwise: 16x16 -> 4*(16+16); dense: 1024x64 -> 4*(1024+64); stem/logits kept.
    predicted = (16 * 16 - 4 * 32) + (1024 * 64 - 4 * 1088)
    assert model.count_params() - new.count_params() == predicted
    assert result.metrics["low_rank_layers"] == 2
    assert result.metrics["low_rank_params_after"] == 4 * 32 + 4 * 1088
    assert new.get_layer("dense_lr_u").kernel.shape == (1024, 4)
    assert new.get_layer("pointwise_lr_u").kernel.shape == (1, 1, 16, 4)
    assert result.train_seconds > 0
    assert KerasModel(new).to_tflite().content[4:8] == b"TFL3"


def test_exact_on_a_rank_deficient_kernel_without_fine_tune() -> None:
    model = model_with_branch()
    rng = np.random.default_rng(2)
    low = rng.normal(size=(1024, 4)) @ rng.normal(size=(4, 64)) / 32  # exactly rank 4
    model.get_layer("dense").kernel.assign(low.astype(np.float32))
    x = tiny_data().x_test
    result = run(model, energy=0.999999, epochs=0, layer_names=["dense"])
    assert result.info["layers"]["dense"]["rank"] == 4
    np.testing.assert_allclose(
        result.artifact.model.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-4
    )
    assert result.train_seconds == 0.0


def test_rebuild_without_replacements_is_identical_and_independent() -> None:
    model = model_with_branch()
    copy = replace_layers(model, {})
    x = tiny_data().x_test
    np.testing.assert_allclose(copy.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)
    assert not {id(w) for w in copy.weights} & {id(w) for w in model.weights}


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"energy": 1.0, "layer_names": ["pointwise"]}, "pointwise: rank 16 saves nothing"),
        (
            {"rank": 2, "layer_names": ["stem"], "keep_first_dense": False},
            "stem: only 1x1 convolutions factorize",
        ),
        ({"rank": 2, "layer_names": ["nope*"]}, "no layer selected"),
    ],
)
def test_nothing_to_factorize_fails_with_the_reason(params: dict[str, Any], message: str) -> None:
    with pytest.raises(StageFailed, match=message):
        run(model_with_branch(), **params)
