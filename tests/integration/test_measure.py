"""`effdl measure` on models TensorFlow made: a converted .tflite, a .keras file, a SavedModel."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from effcli.cli.frontier import frontier
from effcli.cli.measure import measure

pytestmark = pytest.mark.slow

app = typer.Typer()
app.command("measure")(measure)
app.command("frontier")(frontier)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tiny Dense(6 -> 3) tf_keras model as .keras, SavedModel and float .tflite, plus data."""
    from effcli._tf import keras
    from effcli.artifacts import KerasModel

    folder = tmp_path_factory.mktemp("models")
    keras.utils.set_random_seed(0)
    head = keras.layers.Dense(3, bias_initializer=keras.initializers.Constant(0.1), name="head")
    model = keras.Sequential([keras.Input((6,)), head])  # a zero bias would be dropped
    model.save(folder / "tiny.keras")
    model.save(folder / "tiny_saved", save_format="tf")
    (folder / "tiny.tflite").write_bytes(KerasModel(model).to_tflite().content)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 6)).astype(np.float32)
    logits = model.predict(x, verbose=0)
    y = np.where(rng.random(40) < 0.7, np.argmax(logits, axis=1), rng.integers(0, 3, 40))
    np.savez(folder / "test.npz", x=x, y=y)
    expected = float(np.mean(np.argmax(logits, axis=1) == y))
    (folder / "expected.json").write_text(json.dumps({"accuracy": expected}))
    return {
        "keras": folder / "tiny.keras",
        "saved": folder / "tiny_saved",
        "tflite": folder / "tiny.tflite",
        "data": folder / "test.npz",
        "expected": folder / "expected.json",
    }


def rows(path: Path) -> dict[str, dict[str, str]]:
    with open(path, newline="") as handle:
        return {r["variant"]: r for r in csv.DictReader(handle)}


def test_measure_a_converted_tflite(tmp_path: Path, models: dict[str, Path]) -> None:
    out = tmp_path / "measured"
    args = ["measure", str(models["tflite"]), "--data", str(models["data"]), "--out", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    row = rows(out / "results.csv")["tiny"]
    assert int(row["tflite_bytes"]) == models["tflite"].stat().st_size
    assert int(row["params"]) == 6 * 3 + 3 and int(row["macs"]) == 6 * 3
    assert float(row["latency_ms_p50"]) > 0 and float(row["latency_ms_p95"]) > 0
    expected = json.loads(models["expected"].read_text())["accuracy"]
    assert float(row["tflite_accuracy"]) == pytest.approx(expected)
    # The CSV is readable by `effdl frontier`, alone and next to a run.
    run = tmp_path / "run"
    run.mkdir()
    (run / "results.csv").write_text(
        "variant,pipeline,status,error,tflite_accuracy,tflite_bytes\nbig,train,ok,,1.0,99999999\n"
    )
    merged = CliRunner().invoke(app, ["frontier", str(out), str(run), "--format", "json"])
    assert merged.exit_code == 0, merged.output
    front = {(r["run"], r["variant"]) for r in json.loads(merged.output)}
    assert front == {("measured", "tiny"), ("run", "big")}


def test_measure_keras_and_savedmodel_converts_them(
    tmp_path: Path, models: dict[str, Path]
) -> None:
    out = tmp_path / "measured"
    args = [str(models["keras"]), str(models["saved"]), "--data", str(models["data"])]
    result = CliRunner().invoke(app, ["measure", *args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    found = rows(out / "results.csv")
    assert set(found) == {"tiny", "tiny_saved"}
    expected = json.loads(models["expected"].read_text())["accuracy"]
    for name, row in found.items():
        converted = out / "artifacts" / name / "model.tflite"
        assert int(row["tflite_bytes"]) == converted.stat().st_size
        assert int(row["params"]) == 21
        assert float(row["tflite_accuracy"]) == pytest.approx(expected)
    assert float(found["tiny"]["accuracy"]) == pytest.approx(expected)  # the Keras model itself
