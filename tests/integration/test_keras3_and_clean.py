"""Keras 3 model files given to `model: {path: ...}` are refused at validation in one line that
says how to convert them; and `effdl clean --cache-only` on a real run keeps its frontier, its
artifacts (hard links into the cache) and its "everything done" rerun."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from effcli.cli.main import app

ROOT = Path(__file__).resolve().parents[2]


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def keras_zip(path: Path, version: str) -> Path:
    """A .keras archive's shape (metadata.json names the version) without any model in it."""
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("metadata.json", json.dumps({"keras_version": version}))
        archive.writestr("config.json", "{}")
    return path


def recipe(folder: Path, model: Path) -> Path:
    path = folder / "r.yaml"
    path.write_text(
        f"name: byo\nmodel: {{path: {model.name}}}\n"
        "pipeline: [{stage: train, epochs: 0}, {stage: quantize}]\n"
    )
    return path


def refusal(model: str, version: str) -> str:
    return (
        f"error: r.yaml:2: model.path: {model} was saved by Keras 3 (keras {version}), which "
        "tf_keras cannot load; effdl trains tf_keras models (TF-MOT needs them): rebuild the same "
        "layers with `import tf_keras as keras`, copy the weights "
        "(`new.set_weights(keras3_model.get_weights())`) and save that with `new.save(...)`, or "
        "build the model in a factory (README 'Models users bring')"
    )


def validate(folder: Path, model: Path) -> tuple[int, str]:
    cwd = os.getcwd()
    os.chdir(folder)  # so the one line names r.yaml as the user typed it
    try:
        return invoke("validate", "r.yaml")
    finally:
        os.chdir(cwd)


def test_a_keras3_archive_is_refused_at_validation_without_tensorflow(tmp_path: Path) -> None:
    model = keras_zip(tmp_path / "m.keras", "3.15.1")
    code, output = validate(tmp_path, recipe(tmp_path, model))
    assert code == 2
    assert output.strip() == refusal(str((tmp_path / "m.keras").resolve()), "3.15.1")
    assert "\n" not in output.strip()


@pytest.mark.parametrize("version", ["2.21.0", "2.15.0", ""])
def test_tf_keras_and_unversioned_archives_pass_the_check(tmp_path: Path, version: str) -> None:
    from effcli.models.user import saved_by_keras3

    assert saved_by_keras3(keras_zip(tmp_path / "m.keras", version)) is None


def test_the_check_reads_h5_attributes(tmp_path: Path) -> None:
    import h5py

    from effcli.models.user import saved_by_keras3

    for version, expected in (("3.4.1", "3.4.1"), ("2.21.0", None)):
        with h5py.File(tmp_path / "m.h5", "w") as handle:
            handle.attrs["keras_version"] = version
        assert saved_by_keras3(tmp_path / "m.h5") == expected
    (tmp_path / "junk.keras").write_bytes(b"not a zip")
    assert saved_by_keras3(tmp_path / "junk.keras") is None  # the loader will say what it is


def keras3_python(code: str, cwd: Path) -> None:
    """Run `code` with Keras 3 as `keras` (effcli._tf sets TF_USE_LEGACY_KERAS, which maps
    `import keras` to tf_keras in this process)."""
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], cwd=cwd, env=env, check=True,
        capture_output=True,
    )  # fmt: skip


KERAS3_MODEL = """
import keras
assert keras.__version__.startswith("3."), keras.__version__
inputs = keras.Input((8, 8, 1))
x = keras.layers.Flatten()(inputs)
x = keras.layers.Dense(16, activation="relu")(x)
model = keras.Model(inputs, keras.layers.Dense(10)(x))
model.save("k3.keras")
model.save("k3.h5")
"""

# What the refusal tells the user to do, done: the same layers in tf_keras, Keras 3's weights.
CONVERT = """
import keras
import tf_keras

old = keras.saving.load_model("k3.keras")
inputs = tf_keras.Input((8, 8, 1))
x = tf_keras.layers.Flatten()(inputs)
x = tf_keras.layers.Dense(16, activation="relu")(x)
new = tf_keras.Model(inputs, tf_keras.layers.Dense(10)(x))
new.set_weights(old.get_weights())
new.save("converted.keras")
"""


@pytest.mark.slow
def test_a_real_keras3_file_is_refused_and_the_advice_works(tmp_path: Path) -> None:
    pytest.importorskip("keras", minversion="3")
    shutil.copytree(ROOT / "configs", tmp_path / "configs")
    keras3_python(KERAS3_MODEL, tmp_path)
    version = json.loads(zipfile.ZipFile(tmp_path / "k3.keras").read("metadata.json"))[
        "keras_version"
    ]
    for name in ("k3.keras", "k3.h5"):
        code, output = validate(tmp_path, recipe(tmp_path, tmp_path / name))
        assert code == 2, output
        assert output.strip() == refusal(str((tmp_path / name).resolve()), version)

    keras3_python(CONVERT, tmp_path)
    path = recipe(tmp_path, tmp_path / "converted.keras")
    path.write_text("extends: base\n" + path.read_text())
    out = tmp_path / "out"
    code, output = invoke("run", str(path), "--out", str(out))
    assert code == 0, output
    assert "1 ok, 0 failed" in output


TINY = """\
name: tiny
extends: base
train: {epochs: 2, early_stopping: {enabled: false}}
pipeline:
  - stage: train
    width_multiplier: 0.125
  - stage: quantize
    mode: {sweep: [float16, int8]}
"""


@pytest.mark.slow
def test_clean_keeps_the_frontier_the_artifacts_and_the_finished_run(tmp_path: Path) -> None:
    from effcli._tf import keras
    from effcli.results import RunDir

    shutil.copytree(ROOT / "configs", tmp_path / "configs")
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY)
    run = RunDir(tmp_path / "out")
    code, output = invoke("run", str(path), "--out", str(run.root))
    assert code == 0, output
    frontier = invoke("frontier", str(run.root), "--all", "--format", "json")
    artifacts = run.artifact_dirs()
    assert len(artifacts) == 2
    models = {name: a.keras.read_bytes() for name, a in artifacts.items()}
    # The case that matters: the artifacts' model.keras are links to the train node's file.
    assert all(a.keras.stat().st_nlink > 1 for a in artifacts.values())

    code, output = invoke("clean", str(run.root), "--cache-only")
    assert code == 0, output
    assert output.startswith("remove cache/ (3 nodes, ")
    assert not run.cache.exists()

    assert invoke("frontier", str(run.root), "--all", "--format", "json") == frontier
    inodes = [a.keras.stat().st_ino for a in run.artifact_dirs().values()]
    for name, artifact in run.artifact_dirs().items():
        # The links left are the artifacts' own (both variants export the one trained model).
        assert artifact.keras.stat().st_nlink == inodes.count(artifact.keras.stat().st_ino)
        assert artifact.keras.read_bytes() == models[name]
        assert keras.models.load_model(artifact.keras, compile=False).count_params() > 0
    code, output = invoke("run", str(path), "--out", str(run.root))
    assert code == 0, output
    assert "0 to run, 2 already in results.csv" in output
    assert "0 ok, 0 failed, 2 already done; nodes: 0 ran" in output
