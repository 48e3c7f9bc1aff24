"""The built-in model families: the survey's parameter counts, shapes, and the Grow knobs."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from effcli.models.base import families

pytestmark = pytest.mark.slow

# A tiny input each family accepts, and a knob setting small enough to build in well under 1 s.
TINY = {
    "cnn": (8, 8, 1),
    "separable_cnn": (8, 8, 1),
    "mlp": (8, 8, 1),
    "conv1d": (40,),
}


def build(name: str, shape: tuple[int, ...], classes: int = 10, **args: Any) -> Any:
    family = families.get(name)
    return family().build(family.Params(**args), shape, classes)


def types(model: Any) -> list[str]:
    return [type(layer).__name__ for layer in model.layers]


@pytest.mark.parametrize(
    ("width", "expected"),
    [(1.0, 1_343_018), (0.5, 350_058)],
)
def test_cnn_has_the_survey_parameter_counts(width: float, expected: int) -> None:
    family = families.get("cnn")
    model = family().build(family.Params(width_multiplier=width), (32, 32, 3), 10)
    assert model.count_params() == expected


def test_cnn_at_default_knobs_keeps_its_layer_names() -> None:
    model = build("cnn", (32, 32, 3))
    convs = [f"{kind}{b}_{i}" for b in (1, 2, 3) for i in (1, 2) for kind in ("conv", "bn")]
    expected = ["input"]
    for block in (1, 2, 3):
        expected += [n for n in convs if n[-3] == str(block)] + [f"pool{block}"]
    assert [layer.name for layer in model.layers] == [*expected, "flatten", "dense", "logits"]
    assert model.name == "cnn_w1"


@pytest.mark.parametrize("shape", [(8, 8, 1), (28, 28), (4, 4, 1), (64, 48, 3)])
def test_cnn_adapts_to_input_shape(shape: tuple[int, ...]) -> None:
    family = families.get("cnn")
    model = family().build(family.Params(width_multiplier=0.25), shape, 7)
    assert model.output_shape == (None, 7)
    assert model.input_shape == (None, *shape)


def test_cnn_refuses_flat_input() -> None:
    family = families.get("cnn")
    with pytest.raises(ValueError, match="needs image input"):
        family().build(family.Params(), (64,), 10)


@pytest.mark.parametrize("name", sorted(TINY))
def test_family_outputs_logits_with_fused_activations_only(name: str) -> None:
    """Separate ReLU/Activation layers would break QAT preservation schemes (see docs)."""
    model = build(name, TINY[name], 7, width_multiplier=0.25, depth_multiplier=2, compound_phi=1)
    assert model.input_shape == (None, *TINY[name])
    assert model.output_shape == (None, 7)
    assert model.layers[0].name == "input"
    assert not {"ReLU", "Activation", "Softmax"} & set(types(model))
    assert model.layers[-1].get_config()["activation"] == "linear"
    assert model.name == f"{name}_w0.25_d2_phi1"


@pytest.mark.parametrize("name", sorted(TINY))
def test_params_grow_with_width_depth_and_phi(name: str) -> None:
    shape = TINY[name]

    def params(**args: Any) -> int:
        return build(name, shape, **{"width_multiplier": 0.25, **args}).count_params()

    base = params()
    assert params(width_multiplier=0.5) > base
    assert params(depth_multiplier=2) > base
    assert params(depth_multiplier=0.5) <= base
    assert params(compound_phi=1) > base
    assert params(compound_phi=-1) < base


def test_depth_repeats_the_cnn_blocks() -> None:
    def convs(depth: float) -> list[str]:
        model = build("cnn", (8, 8, 1), width_multiplier=0.25, depth_multiplier=depth)
        return [layer.name for layer in model.layers if layer.name.startswith("conv1_")]

    assert convs(1.0) == ["conv1_1", "conv1_2"]
    assert convs(0.5) == ["conv1_1"]
    assert convs(2.0) == ["conv1_1", "conv1_2", "conv1_3", "conv1_4"]
    assert convs(1.25) == ["conv1_1", "conv1_2", "conv1_3"]  # round(2.5) half up


@pytest.mark.parametrize(
    ("name", "shape", "args", "size"),
    [
        ("cnn", (8, 8, 1), {"resolution_multiplier": 1.5}, (12, 12)),
        ("cnn", (28, 28), {"resolution_multiplier": 0.5}, (14, 14)),
        ("separable_cnn", (16, 12, 3), {"resolution_multiplier": 0.5}, (8, 6)),
        ("cnn", (32, 32, 3), {"compound_phi": 1}, (37, 37)),  # 32 * 1.15 = 36.8
        ("mlp", (8, 8, 1), {"resolution_multiplier": 0.5}, (4, 4)),
        ("mlp", (40, 2), {"resolution_multiplier": 0.5}, (20, 1)),  # (L, C): L only
        ("conv1d", (40,), {"resolution_multiplier": 0.5}, (20, 1)),
        ("conv1d", (8, 3), {"resolution_multiplier": 2.0}, (16, 1)),
    ],
)
def test_resolution_adds_a_resizing_layer(
    name: str, shape: tuple[int, ...], args: dict[str, float], size: tuple[int, int]
) -> None:
    model = build(name, shape, width_multiplier=0.25, **args)
    resize = model.get_layer("resize")
    assert type(resize).__name__ == "Resizing"
    assert resize.output_shape[1:3] == size
    # Right after the input (and the reshape that gives it a channel axis, if any).
    assert set(types(model)[1 : types(model).index("Resizing")]) <= {"Reshape"}


@pytest.mark.parametrize("name", sorted(TINY))
def test_resolution_one_adds_no_layer(name: str) -> None:
    model = build(name, TINY[name], width_multiplier=0.25, resolution_multiplier=1.0)
    assert "Resizing" not in types(model)


def test_separable_cnn_has_fewer_params_than_cnn() -> None:
    for width in (0.25, 1.0):
        sep = build("separable_cnn", (32, 32, 3), width_multiplier=width).count_params()
        full = build("cnn", (32, 32, 3), width_multiplier=width).count_params()
        assert sep < full, (width, sep, full)
    assert build("separable_cnn", (32, 32, 3)).count_params() == 1_091_946


def test_separable_cnn_is_plain_depthwise_then_pointwise_after_a_full_stem() -> None:
    from effcli._tf import keras

    model = build("separable_cnn", (8, 8, 3), width_multiplier=0.5)
    assert "SeparableConv2D" not in types(model)
    stem = model.get_layer("conv1_1")
    assert type(stem) is keras.layers.Conv2D and stem.kernel_size == (3, 3)
    for block in (1, 2, 3):
        for i in (1, 2):
            if (block, i) == (1, 1):
                continue
            dw = model.get_layer(f"dwconv{block}_{i}")
            pw = model.get_layer(f"conv{block}_{i}")
            assert isinstance(dw, keras.layers.DepthwiseConv2D) and dw.kernel_size == (3, 3)
            assert type(pw) is keras.layers.Conv2D and pw.kernel_size == (1, 1)
            assert pw.get_config()["activation"] == "relu"
            assert dw.get_config()["activation"] == "linear"


def test_mlp_takes_any_input_and_repeats_its_hidden_widths() -> None:
    for shape in [(13,), (40, 2), (8, 8, 1)]:
        assert build("mlp", shape, 3, hidden=[8]).output_shape == (None, 3)
    model = build("mlp", (13,), hidden=[64, 32], width_multiplier=0.5, depth_multiplier=2)
    dense = [(layer.name, layer.units) for layer in model.layers if layer.name.startswith("dense")]
    assert dense == [("dense1_1", 32), ("dense1_2", 32), ("dense2_1", 16), ("dense2_2", 16)]
    assert "Dropout" not in types(model)
    assert types(build("mlp", (13,), hidden=[8, 8], dropout=0.2)).count("Dropout") == 2
    assert build("mlp", (13,), hidden=[]).count_params() == 13 * 10 + 10  # a linear model


def test_mlp_refuses_resolution_on_tabular_input_but_takes_phi() -> None:
    with pytest.raises(ValueError, match="resolution_multiplier needs image .* or sequence"):
        build("mlp", (13,), resolution_multiplier=2.0)
    model = build("mlp", (13,), hidden=[8], compound_phi=1)  # phi scales width and depth only
    assert "Resizing" not in types(model)


@pytest.mark.parametrize("shape", [(40,), (40, 1), (8,), (8, 3), (1,)])
def test_conv1d_fits_short_sequences_with_conv2d_kernels(shape: tuple[int, ...]) -> None:
    model = build("conv1d", shape, 5, width_multiplier=0.25)
    assert model.output_shape == (None, 5)
    assert "Conv1D" not in types(model)
    convs = [layer for layer in model.layers if type(layer).__name__ == "Conv2D"]
    assert [c.name for c in convs] == ["conv1_1", "conv2_1", "conv3_1"]
    assert all(c.kernel_size == (5, 1) and c.get_config()["activation"] == "relu" for c in convs)
    pools = [layer.name for layer in model.layers if type(layer).__name__ == "MaxPooling2D"]
    assert len(pools) == {40: 3, 8: 3, 1: 0}[shape[0]]


def test_conv1d_refuses_images() -> None:
    with pytest.raises(ValueError, match="needs sequence input"):
        build("conv1d", (8, 8, 1))


@pytest.mark.parametrize(
    ("name", "shape", "args"),
    [
        ("separable_cnn", (8, 8, 1), {"depth_multiplier": 0.5, "resolution_multiplier": 1.5}),
        ("conv1d", (40,), {"resolution_multiplier": 0.5}),
        ("mlp", (40, 2), {"resolution_multiplier": 0.5, "dropout": 0.1}),
    ],
)
def test_family_qat_annotates_every_kernel_and_converts_to_tflite(
    name: str, shape: tuple[int, ...], args: dict[str, float]
) -> None:
    from ai_edge_litert.interpreter import Interpreter

    from effcli._tf import tf, tfmot
    from effcli.measure.flatbuffer import model_stats
    from effcli.stages.quantize import quantize_what_it_can

    model = build(name, shape, width_multiplier=0.25, **args)
    scheme = tfmot.quantization.keras.default_8bit.Default8BitQuantizeScheme()
    qat_model, left_float = quantize_what_it_can(model, scheme)
    assert left_float == []
    converter = tf.lite.TFLiteConverter.from_keras_model(qat_model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    content = converter.convert()
    interpreter = Interpreter(model_content=content)
    interpreter.allocate_tensors()
    interpreter.set_tensor(
        interpreter.get_input_details()[0]["index"], np.zeros((1, *shape), np.float32)
    )
    interpreter.invoke()
    assert interpreter.get_tensor(interpreter.get_output_details()[0]["index"]).shape == (1, 10)
    # Every Keras kernel became one conv/dense op of the file, with int8 weights.
    kernels = [
        layer
        for layer in model.layers
        if hasattr(layer, "kernel") or "Depthwise" in type(layer).__name__
    ]
    ops = model_stats(content).layers
    assert len(ops) == len(kernels)
    assert {op.dtype for op in ops} == {"int8"}
