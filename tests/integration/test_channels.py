"""Channel pruning that really removes channels: the thinner model computes exactly what the
original computes once the removed channels are silenced, residual adds are respected, and the
exported file is smaller in raw bytes and MACs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from effcli.models.base import families
from effcli.stages._channels import SOURCES, apply_cuts, plan_cuts
from effcli.stages._layers import select_layers
from tests.integration.helpers import project, run_doc

pytestmark = pytest.mark.slow


def build(family: str, args: dict[str, Any]) -> Any:
    from effcli._tf import keras

    keras.utils.set_random_seed(0)
    cls = families.get(family)
    return cls().build(cls.Params(**args), (8, 8, 1), 10)


def silenced(model: Any, cuts: list[Any]) -> Any:
    """A copy of `model` in which the channels a cut removes feed nothing (their rows of every
    reader's kernel are zero): what the thinner model must compute."""
    from effcli._tf import keras

    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    for cut in cuts:
        gone = np.setdiff1d(np.arange(cut.total), cut.keep)
        for name in cut.readers:
            layer = copy.get_layer(name)
            kernel, *rest = layer.get_weights()
            rows = kernel.shape[-2] // cut.total  # Flatten repeats channels per position
            index = (np.arange(rows)[:, None] * cut.total + gone[None, :]).reshape(-1)
            kernel[..., index, :] = 0
            layer.set_weights([kernel, *rest])
    return copy


@pytest.mark.parametrize(
    ("family", "args"),
    [
        ("cnn", {"width_multiplier": 0.5}),  # convs, BatchNorm, pooling, Flatten -> Dense
        ("separable_cnn", {"width_multiplier": 0.5}),  # depthwise carriers
        ("mobilenet_v2", {"width_multiplier": 0.35, "input_size": 32}),  # residual adds
        ("vit", {"dim": 16, "blocks": 1, "heads": 2}),  # attention, LayerNorm
    ],
)
def test_the_thinner_model_computes_what_the_silenced_original_does(
    family: str, args: dict[str, Any]
) -> None:
    model = build(family, args)
    names = [
        n
        for n in select_layers(model, False, False)
        if type(model.get_layer(n)).__name__ in SOURCES
    ]
    cuts, refused = plan_cuts(model, names, 0.5)
    assert cuts
    thinner = apply_cuts(model, cuts)
    x = np.random.default_rng(1).random((16, 8, 8, 1), dtype=np.float32)
    expected = silenced(model, cuts)(x, training=False).numpy()
    got = thinner(x, training=False).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
    assert thinner.count_params() < model.count_params()
    for cut in cuts:  # half of each cut layer's filters are gone
        layer = thinner.get_layer(cut.source)
        assert layer.kernel.shape[-1] == len(cut.keep) == cut.total - round(0.5 * cut.total)
    if family == "mobilenet_v2":  # a projection feeds a residual add: left whole, and said why
        assert "block_2_project" in refused and "Add" in refused["block_2_project"]
        assert any(name.endswith("_expand") for name in (c.source for c in cuts))
    assert all(name not in refused for name in (c.source for c in cuts))
    logits = [name for name in names if name in refused and "model's output" in refused[name]]
    assert logits  # the classifier's classes are never cut


def test_channel_pruning_through_the_runner_cuts_bytes_and_macs(tmp_path: Path) -> None:
    doc = {
        "name": "channels",
        "extends": "base",
        "train": {"epochs": 12, "early_stopping": {"enabled": False}},
        "pipeline": [
            {"stage": "train", "width_multiplier": 0.5},
            {
                "stage": "prune",
                "enabled": {"sweep": [False, True]},
                "structure": "channels",
                "sparsity": 0.5,
                "epochs": 3,
            },
            {"stage": "quantize"},
        ],
    }
    rows = list(run_doc(project(tmp_path), "channels", doc).values())
    assert {r["status"] for r in rows} == {"ok"}
    (plain,) = [r for r in rows if r["pipeline"] == "train>quantize"]
    (thin,) = [r for r in rows if r["pipeline"] == "train>prune>quantize"]
    for column in ("tflite_bytes", "macs", "params"):
        assert int(thin[column]) < 0.6 * int(plain[column]), column
    assert float(thin["prune_achieved_sparsity"]) == pytest.approx(0.5, abs=0.05)
    assert float(plain["tflite_accuracy"]) > 0.8
    assert float(thin["tflite_accuracy"]) > 0.6  # still a classifier after a 4-epoch fine-tune
    nodes = json.loads(
        (tmp_path / "out" / "artifacts" / thin["variant"] / "nodes.json").read_text()
    )
    info = nodes[1]["info"]
    assert info["structure"] == "channels" and info["cut_layers"]
