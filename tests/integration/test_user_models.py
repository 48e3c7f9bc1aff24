"""Models users bring: a factory function, a saved trained model, and the one-line refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.helpers import project, run_doc

pytestmark = pytest.mark.slow

FACTORY = """
import tf_keras as keras


def build(input_shape, num_classes, units=16):
    inputs = keras.Input(input_shape)
    x = keras.layers.Flatten()(inputs)
    x = keras.layers.Dense(units, activation="relu")(x)
    return keras.Model(inputs, keras.layers.Dense(num_classes, activation="softmax")(x))


class Sub(keras.Model):
    def __init__(self, num_classes):
        super().__init__()
        self.head = keras.layers.Dense(num_classes)

    def call(self, x):
        return self.head(keras.layers.Flatten()(x))


def subclassed(input_shape, num_classes):
    return Sub(num_classes)


def keras3(input_shape, num_classes):
    import keras as k3

    inputs = k3.Input(input_shape)
    return k3.Model(inputs, k3.layers.Dense(num_classes)(k3.layers.Flatten()(inputs)))
"""

TRAIN = {"epochs": 3, "early_stopping": {"enabled": False}}


def test_a_factory_model_is_built_trained_pruned_and_exported(tmp_path: Path) -> None:
    folder = project(tmp_path)
    (folder / "my_models.py").write_text(FACTORY)
    doc = {
        "name": "factory",
        "extends": "base",
        "train": TRAIN,
        "model": {"factory": "my_models:build", "args": {"units": 32}},
        "pipeline": [
            {"stage": "train"},
            {"stage": "prune", "sparsity": 0.5, "epochs": 2, "keep_last_dense": False},
            {"stage": "quantize"},
        ],
    }
    (row,) = run_doc(folder, "factory", doc).values()
    assert row["status"] == "ok", row["error"]
    assert float(row["tflite_accuracy"]) > 0.5  # the softmax head was trained through its logits
    assert int(row["params"]) == 64 * 32 + 32 + 32 * 10 + 10


@pytest.mark.parametrize(
    ("factory", "message"),
    [
        ("my_models:subclassed", "is a subclassed tf_keras model; TF-MOT can only wrap"),
        ("my_models:keras3", "not a tf_keras model (a Keras 3 model: build it with"),
        ("my_models:absent", "my_models has no function absent"),
    ],
)
def test_unusable_factory_models_fail_the_variant_in_one_line(
    tmp_path: Path, factory: str, message: str
) -> None:
    folder = project(tmp_path)
    (folder / "my_models.py").write_text(FACTORY)
    doc = {
        "name": "bad",
        "extends": "base",
        "train": TRAIN,
        "model": {"factory": factory},
        "pipeline": [{"stage": "train"}],
    }
    (row,) = run_doc(folder, "bad", doc).values()
    assert row["status"] == "failed" and message in row["error"]
    assert "\n" not in row["error"]


def test_a_saved_trained_model_is_the_start_of_a_pipeline(tmp_path: Path) -> None:
    from effcli._tf import keras

    folder = project(tmp_path)
    (folder / "my_models.py").write_text(FACTORY)
    first = {
        "name": "make",
        "extends": "base",
        "train": TRAIN,
        "model": {"factory": "my_models:build"},
        "pipeline": [{"stage": "train"}],
    }
    (made,) = run_doc(folder, "make", first).values()
    saved = folder / "out" / "artifacts" / made["variant"] / "model.keras"
    assert keras.models.load_model(saved, compile=False).count_params() > 0
    doc = {
        "name": "reuse",
        "extends": "base",
        "model": {"path": str(saved)},
        "pipeline": [{"stage": "train", "epochs": 0}, {"stage": "quantize"}],
    }
    (row,) = run_doc(folder, "reuse", doc).values()
    assert row["status"] == "ok", row["error"]
    assert row["train_epochs"] == "0"
    # Unchanged weights: the exported model is as good as the saved one (int8 aside).
    assert abs(float(row["tflite_accuracy"]) - float(made["tflite_accuracy"])) < 0.03


def test_the_factory_built_is_the_file_that_keyed_the_node_not_a_cached_import(
    tmp_path: Path,
) -> None:
    """Same module name in two folders, then an edit: each build runs the current file."""
    from effcli.models.user import FactoryFamily, FactoryParams

    def built_units(folder: Path, units: int) -> int:
        folder.mkdir(exist_ok=True)
        (folder / "my_models.py").write_text(FACTORY.replace("units=16", f"units={units}"))
        params = FactoryParams(factory="my_models:build", search_path=str(folder))
        model = FactoryFamily().build(params, (8, 8, 1), 10)
        return model.layers[2].units  # Input, Flatten, the hidden Dense

    assert built_units(tmp_path / "a", 5) == 5
    assert built_units(tmp_path / "b", 7) == 7  # another recipe's folder, same module name
    assert built_units(tmp_path / "b", 9) == 9  # the file edited between two nodes
