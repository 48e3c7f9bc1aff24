"""The efficient architectures: Keras Applications families built offline with the counts Keras
gives them, weights users bring, the Transformer families, and every family through the shrink
contract (each shrink stage's examples) on a tiny configuration.

The whole family x stage matrix is marked `full` (`make test-all`); `make test` keeps a
representative subset: every shrink stage on the ViT, pruning, the sparse format and int8 on
MobileNetV2, pruning and int8 on the sequence Transformer, int8 on MobileNetV3 Small and
EfficientNet-B0.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from effcli.models.base import families
from effcli.stages.base import stages
from tests.integration.helpers import project
from tests.integration.test_stage_contract import check_contract, run_variant

pytestmark = pytest.mark.slow

DIGITS = {"source": "digits", "max_samples": 120}
MNIST1D = {"source": "mnist1d", "num_samples": 600, "max_samples": 120}
FAMILIES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {  # family: (args, data)
    "mobilenet_v2": ({"width_multiplier": 0.35, "input_size": 32}, DIGITS),
    "mobilenet_v3_small": ({"width_multiplier": 0.35, "input_size": 32}, DIGITS),
    "mobilenet_v3_large": ({"width_multiplier": 0.35, "input_size": 32}, DIGITS),
    "efficientnet_b0": (
        {"width_multiplier": 0.25, "depth_multiplier": 0.25, "input_size": 32},
        DIGITS,
    ),
    "vit": ({"dim": 16, "blocks": 1, "heads": 2, "patch_size": 2}, DIGITS),
    "transformer": ({"dim": 16, "blocks": 1, "heads": 2, "patch_size": 4}, MNIST1D),
}
SHRINK = [name for name in stages.names() if stages.get(name).role == "shrink"]
ALL = [
    (family, stage, i, example)
    for family in FAMILIES
    for stage in SHRINK
    for i, example in enumerate(stages.get(stage).examples)
]
# `make test` keeps the ViT (the family TF-MOT treats most differently: prune, low-rank, float32,
# int8, QAT) and int8 on the sequence Transformer; MobileNet and EfficientNet cases (1-3 min each
# here) and clustering run in `make test-all`; the other examples of each stage (2:4,
# channels, energy ranks, dynamic, float16) run on the survey CNN in the stage contract.
REPRESENTATIVE = {
    ("vit", "prune-0"),
    ("vit", "low_rank-0"),
    ("vit", "quantize-0"),  # float32 in the sparse format
    ("vit", "quantize-3"),  # int8
    ("vit", "quantize-4"),  # QAT
    ("transformer", "quantize-3"),
}
# What TF-MOT 0.8.1 cannot do to an architecture: a located one-line refusal, not a crash.
REFUSED = {
    ("mobilenet_v3_small", "quantize-4"): "QAT cannot quantize this model",
    ("mobilenet_v3_large", "quantize-4"): "QAT cannot quantize this model",
}


def case_id(family: str, stage: str, i: int) -> str:
    return f"{family}-{stage}-{i}"


def params(family: str, stage: str, i: int, example: dict[str, Any]) -> Any:
    representative = (family, stage) in REPRESENTATIVE or (family, f"{stage}-{i}") in REPRESENTATIVE
    marks = [] if representative else [pytest.mark.full]
    return pytest.param(family, stage, example, id=case_id(family, stage, i), marks=marks)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return project(tmp_path_factory.mktemp("architectures"))


@pytest.mark.parametrize(("family", "stage", "example"), [params(f, s, i, e) for f, s, i, e in ALL])
def test_every_family_passes_the_shrink_contract(
    workdir: Path, family: str, stage: str, example: dict[str, Any]
) -> None:
    args, data = FAMILIES[family]
    folder = workdir / family
    if not folder.exists():
        project(folder)
    extra = {"data": data, "model": {"family": family, "args": args}}
    row = run_variant(folder, stage, example, base={"stage": "train"}, extra=extra)
    index = next(i for i, e in enumerate(stages.get(stage).examples) if e == example)
    refusal = REFUSED.get((family, f"{stage}-{index}"))
    if refusal:
        assert row["status"] == "failed" and refusal in row["error"], row
        assert "\n" not in row["error"]
        return
    check_contract(folder, stage, example, row, stage)


def test_every_new_family_is_in_the_matrix() -> None:
    new = {"mobilenet_v2", "mobilenet_v3_small", "mobilenet_v3_large", "efficientnet_b0"}
    assert new | {"vit", "transformer"} <= set(families.names()) and set(FAMILIES) >= new


@pytest.mark.parametrize(
    ("family", "keras_name", "missing"),
    [
        ("mobilenet_v2", "MobileNetV2", 0),
        ("mobilenet_v3_small", "MobileNetV3Small", 0),
        ("mobilenet_v3_large", "MobileNetV3Large", 0),
        # effdl drops EfficientNet's input Normalization layer (mean, variance, count of 3
        # channels: 7 statistics) with its Rescaling: effdl's inputs are already scaled.
        ("efficientnet_b0", "EfficientNetB0", 7),
    ],
)
def test_parameter_counts_equal_keras_applications(
    family: str, keras_name: str, missing: int
) -> None:
    from effcli._tf import keras

    cls = families.get(family)
    model = cls().build(cls.Params(), (224, 224, 3), 1000)
    reference = getattr(keras.applications, keras_name)(weights=None)
    assert model.count_params() == reference.count_params() - missing
    assert model.output_shape == (None, 1000)
    assert not any(type(layer).__name__ == "Functional" for layer in model.layers)  # flat


def test_width_is_alpha_and_small_inputs_need_an_input_size() -> None:
    from effcli._tf import keras

    cls = families.get("mobilenet_v2")
    with pytest.raises(ValueError, match=r"8x8 inputs are smaller than MobileNetV2 builds at "):
        cls().build(cls.Params(), (8, 8, 1), 10)
    model = cls().build(cls.Params(width_multiplier=0.5, input_size=32), (8, 8, 1), 10)
    reference = keras.applications.MobileNetV2(
        input_shape=(32, 32, 1), alpha=0.5, weights=None, classes=10
    )
    assert model.count_params() == reference.count_params()  # the resize adds no weights
    assert model.get_layer("resize").output_shape == (None, 32, 32, 1)


def test_weights_users_bring_are_loaded_by_layer_name(tmp_path: Path) -> None:
    cls = families.get("mobilenet_v2")
    trained = cls().build(cls.Params(width_multiplier=0.35, input_size=32), (8, 8, 1), 10)
    rng = np.random.default_rng(0)
    trained.set_weights(
        [rng.normal(size=w.shape).astype(np.float32) for w in trained.get_weights()]
    )
    file = tmp_path / "mine.h5"
    trained.save_weights(file)
    # Same architecture, another head (3 classes): every layer but the head is loaded.
    loaded = cls().build(
        cls.Params(width_multiplier=0.35, input_size=32, weights=str(file)), (8, 8, 1), 3
    )
    for layer in trained.layers:
        if layer.name == "predictions" or not layer.weights:
            continue
        for mine, theirs in zip(
            layer.get_weights(), loaded.get_layer(layer.name).get_weights(), strict=True
        ):
            assert np.array_equal(mine, theirs), layer.name
    head = loaded.get_layer("predictions").get_weights()[0]
    assert head.shape[-1] == 3


def test_transformer_patch_that_does_not_fit_fails_in_one_line() -> None:
    cls = families.get("vit")
    with pytest.raises(ValueError, match="patch_size 16 does not fit 8x8 inputs"):
        cls().build(cls.Params(patch_size=16), (8, 8, 1), 10)


def test_weights_of_another_width_fail_naming_the_layer_and_shapes(tmp_path: Path) -> None:
    cls = families.get("mobilenet_v2")
    other = cls().build(cls.Params(width_multiplier=0.5, input_size=32), (8, 8, 1), 10)
    file = tmp_path / "wide.h5"
    other.save_weights(file)
    # Keras' skip_mismatch would load nothing here, silently; effdl names the first misfit.
    with pytest.raises(
        ValueError, match=r"wide.h5: layer 'block_1_project' has shapes \(1, 1, 48, 16\)"
    ):
        cls().build(
            cls.Params(width_multiplier=0.35, input_size=32, weights=str(file)), (8, 8, 1), 3
        )
    (tmp_path / "junk.h5").write_bytes(b"not hdf5")
    with pytest.raises(ValueError, match="junk.h5: not a Keras HDF5 weights file"):
        cls().build(cls.Params(input_size=32, weights=str(tmp_path / "junk.h5")), (8, 8, 1), 3)


def test_attention_projections_are_pruned_in_the_exported_file(workdir: Path) -> None:
    # TF-MOT's prune registry lists MultiHeadAttention's query/key/value/output kernels; the
    # exported file carries them as four FULLY_CONNECTED weights at the target sparsity.
    args, data = FAMILIES["vit"]
    folder = workdir / "vit"
    if not folder.exists():
        project(folder)
    example = stages.get("prune").examples[0]
    extra = {"data": data, "model": {"family": "vit", "args": args}}
    row = run_variant(folder, "prune", example, base={"stage": "train"}, extra=extra)
    assert row["status"] == "ok", row["error"]
    artifact = folder / "out" / "artifacts" / row["variant"]
    layers = json.loads((artifact / "layers.json").read_text())["layers"]
    attention = [layer for layer in layers if "_attention/" in layer["name"]]
    assert len(attention) == 4 and {layer["op"] for layer in attention} == {"FULLY_CONNECTED"}
    for layer in attention:
        assert layer["sparsity"] == pytest.approx(example["sparsity"], abs=0.02), layer["name"]
