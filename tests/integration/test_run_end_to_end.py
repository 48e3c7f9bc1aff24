"""A tiny recipe through the real CLI: TF-MOT, TFLite export, LiteRT measurement, cache, frontier.

These tests share one run directory (module fixture) because each TensorFlow training costs
seconds; they check that every number in results.csv can be re-derived from the artifacts.
"""

from __future__ import annotations

import csv
import gzip
import shutil
import textwrap
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from effcli.cli.main import app

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]

RECIPE = """\
name: tiny
extends: base
train:
  epochs: 4
  early_stopping: {{enabled: false}}
pipeline:
  - stage: train
    width_multiplier: {{sweep: [0.125, 0.25]}}
  - stage: prune
    enabled: {{sweep: [false, true]}}
    sparsity: {{sweep: {sparsities}}}
    epochs: 3
  - stage: quantize
    calibration_samples: 64
"""


def write_recipe(folder: Path, sparsities: list[float]) -> Path:
    path = folder / "tiny.yaml"
    path.write_text(textwrap.dedent(RECIPE.format(sparsities=sparsities)))
    return path


def read_rows(csv_path: Path) -> list[dict[str, str]]:
    with open(csv_path, newline="") as handle:
        return list(csv.DictReader(handle))


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path, str]]:
    folder = tmp_path_factory.mktemp("tiny")
    shutil.copytree(ROOT / "configs", folder / "configs")
    recipe = write_recipe(folder, [0.5])
    out = folder / "out"
    code, output = invoke("run", str(recipe), "--out", str(out))
    assert code == 0, output
    yield recipe, out, output


def test_every_variant_has_an_ok_row(run: tuple[Path, Path, str]) -> None:
    _, out, output = run
    rows = read_rows(out / "results.csv")
    assert len(rows) == 4
    assert {r["status"] for r in rows} == {"ok"}
    assert "4 ok, 0 failed" in output
    assert list(rows[0])[:5] == ["variant", "label", "pipeline", "status", "error"]
    assert {"train.width_multiplier", "prune.enabled", "prune.sparsity"} <= set(rows[0])


def test_footprint_numbers_match_the_artifacts(run: tuple[Path, Path, str]) -> None:
    _, out, _ = run
    for row in read_rows(out / "results.csv"):
        tflite = out / "artifacts" / row["variant"] / "model.tflite"
        content = tflite.read_bytes()
        assert int(row["tflite_bytes"]) == len(content)
        assert int(row["gzip_bytes"]) == len(gzip.compress(content, 9, mtime=0))
        assert float(row["latency_ms_p50"]) > 0
        assert float(row["latency_ms_p95"]) >= float(row["latency_ms_p50"])
        assert (out / "artifacts" / row["variant"] / "recipe.yaml").is_file()


def test_quality_is_rederivable_from_test_npz(run: tuple[Path, Path, str]) -> None:
    from ai_edge_litert.interpreter import Interpreter

    _, out, _ = run
    test = np.load(out / "test.npz")
    for row in read_rows(out / "results.csv"):
        interpreter = Interpreter(
            model_path=str(out / "artifacts" / row["variant"] / "model.tflite")
        )
        interpreter.allocate_tensors()
        inp, outp = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
        assert inp["dtype"] == np.int8  # full-integer export
        scale, zero = inp["quantization"]
        correct = 0
        for x, y in zip(test["x"], test["y"], strict=True):
            q = np.clip(np.round(x / scale + zero), -128, 127).astype(np.int8)[np.newaxis]
            interpreter.set_tensor(inp["index"], q)
            interpreter.invoke()
            correct += int(np.argmax(interpreter.get_tensor(outp["index"])) == y)
        assert correct / len(test["y"]) == pytest.approx(float(row["tflite_accuracy"]), abs=1e-9)


def test_each_keras_model_is_serialized_once_and_its_accuracy_rederivable(
    run: tuple[Path, Path, str],
) -> None:
    """The trained model in the cache, the quantize node's source and the variant's artifact
    are one file (hard links): the export step adds no re-serialization."""
    import json

    from effcli._tf import keras

    _, out, _ = run
    test = np.load(out / "test.npz")
    for row in read_rows(out / "results.csv"):
        nodes = json.loads((out / "artifacts" / row["variant"] / "nodes.json").read_text())
        parent = out / "cache" / nodes[-2]["key"] / "model.keras"  # the model that was quantized
        copies = [
            parent,
            out / "cache" / nodes[-1]["key"] / "model.keras",
            out / "artifacts" / row["variant"] / "model.keras",
        ]
        assert len({c.stat().st_ino for c in copies}) == 1, copies
        model = keras.models.load_model(copies[-1], compile=False)
        hits = np.argmax(model.predict(test["x"], verbose=0), axis=-1) == test["y"]
        assert float(row["accuracy"]) == pytest.approx(float(hits.mean()), abs=1e-9)


def test_pruned_model_really_has_the_sparsity(run: tuple[Path, Path, str]) -> None:
    from effcli._tf import keras

    _, out, _ = run
    pruned = [r for r in read_rows(out / "results.csv") if r["prune.enabled"] == "True"]
    assert len(pruned) == 2
    for row in pruned:
        model = keras.models.load_model(
            out / "artifacts" / row["variant"] / "model.keras", compile=False
        )
        kernels = [layer.kernel.numpy() for layer in model.layers if hasattr(layer, "kernel")]
        inner = kernels[1:-1]  # first and last layers are kept dense by default
        zeros = sum(int((k == 0).sum()) for k in inner) / sum(k.size for k in inner)
        assert zeros == pytest.approx(0.5, abs=0.02)
        assert float(row["prune_achieved_sparsity"]) == pytest.approx(zeros, abs=1e-9)
        assert int(row["nonzero_params"]) < int(row["params"])
        assert int(row["gzip_bytes"]) < int(row["tflite_bytes"])
    dense = [r for r in read_rows(out / "results.csv") if r["prune.enabled"] == "False"]
    for row in dense:
        assert float(row["sparsity"]) < 0.01


def test_rerun_trains_nothing(run: tuple[Path, Path, str]) -> None:
    recipe, out, _ = run
    before = (out / "results.csv").read_bytes()
    metas = {p: p.stat().st_mtime_ns for p in (out / "cache").glob("*/meta.json")}
    code, output = invoke("run", str(recipe), "--out", str(out))
    assert code == 0, output
    assert "0 to run, 4 already in results.csv" in output
    assert "nodes: 0 ran" in output
    assert (out / "results.csv").read_bytes() == before
    assert {p: p.stat().st_mtime_ns for p in (out / "cache").glob("*/meta.json")} == metas


def test_plan_reports_everything_cached(run: tuple[Path, Path, str]) -> None:
    recipe, out, _ = run
    code, output = invoke("plan", str(recipe), "--out", str(out))
    assert code == 0, output
    assert "8 nodes cached, 0 to run" in output


def test_new_sweep_value_runs_only_new_nodes(run: tuple[Path, Path, str]) -> None:
    recipe, out, _ = run
    write_recipe(recipe.parent, [0.5, 0.75])
    code, output = invoke("run", str(recipe), "--out", str(out))
    assert code == 0, output
    # Two new prune nodes (one per width) and their two quantize nodes; no train reruns.
    assert "2 ok, 0 failed, 4 already done; nodes: 4 ran" in output
    assert "ran    train" not in output
    assert len(read_rows(out / "results.csv")) == 6


def test_frontier_prints_the_pareto_table(run: tuple[Path, Path, str]) -> None:
    _, out, _ = run
    code, output = invoke("frontier", str(out))
    assert code == 0, output
    assert "Pareto frontier" in output
    assert "KB" in output


def test_rows_have_labels_and_nodes_their_learning_curves(run: tuple[Path, Path, str]) -> None:
    import json

    _, out, output = run
    rows = read_rows(out / "results.csv")
    # (An earlier test added sparsity 0.75 to the sweep.)
    assert {r["label"] for r in rows} == {
        f"w{w} {p}int8" for w in ("0.125", "0.25") for p in ("", "prune50% ", "prune75% ")
    }
    assert "ok     w0.25 prune50% int8" in output  # progress names variants by label
    for row in rows:
        nodes = json.loads((out / "artifacts" / row["variant"] / "nodes.json").read_text())
        by_stage = {n["stage"]: n for n in nodes}
        train = by_stage["train"]["history"]
        assert [e["epoch"] for e in train] == [1, 2, 3, 4]  # epochs: 4, no early stop
        assert {"loss", "accuracy", "val_loss", "val_accuracy", "learning_rate"} <= set(train[0])
        assert train[0]["learning_rate"] == pytest.approx(1e-3)
        assert all(e["epoch_seconds"] > 0 for e in train)
        if "prune" in by_stage:
            assert len(by_stage["prune"]["history"]) == 3
        assert by_stage["quantize"]["history"] == []
        # The cache entry keeps the same curve.
        meta = json.loads((out / "cache" / by_stage["train"]["key"] / "meta.json").read_text())
        assert meta["history"] == train
