"""`effdl measure` on .tflite files and `effdl report` on a run directory, without TensorFlow.

The valid .tflite here is a float32 Dense(4 -> 3) written with LiteRT's own flatbuffer schema,
so the fast tests cover the whole measure path; converting real Keras models is in
tests/integration/test_measure.py.
"""

from __future__ import annotations

import csv
import gzip
import json
import subprocess
import sys
from pathlib import Path

import flatbuffers
import numpy as np
import pytest
import typer
from ai_edge_litert import schema_py_generated as schema
from typer.testing import CliRunner

from effcli.cli.frontier import frontier
from effcli.cli.measure import measure, parse_data_spec
from effcli.cli.report import report
from effcli.errors import UsageError

app = typer.Typer()
app.command("measure")(measure)
app.command("report")(report)
app.command("frontier")(frontier)

WEIGHTS = np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0.5, 0.5]], dtype=np.float32)
BIAS = np.array([0.0, 0.1, 0.0], dtype=np.float32)


def dense_tflite() -> bytes:
    """A float32 Dense(4 -> 3) as a .tflite flatbuffer, built from the schema (no TensorFlow)."""

    def buffer(data: np.ndarray | None = None) -> schema.BufferT:
        buf = schema.BufferT()
        buf.data = None if data is None else np.frombuffer(data.tobytes(), dtype=np.uint8)
        return buf

    def tensor(name: bytes, shape: list[int], buffer_index: int) -> schema.TensorT:
        t = schema.TensorT()
        t.name, t.shape = name, np.array(shape, dtype=np.int32)
        t.type, t.buffer = schema.TensorType.FLOAT32, buffer_index
        return t

    code = schema.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.FULLY_CONNECTED
    code.version = 1
    op = schema.OperatorT()
    op.opcodeIndex = 0
    op.inputs, op.outputs = np.array([0, 1, 2], dtype=np.int32), np.array([3], dtype=np.int32)
    op.builtinOptionsType = schema.BuiltinOptions.FullyConnectedOptions
    op.builtinOptions = schema.FullyConnectedOptionsT()
    graph = schema.SubGraphT()
    graph.tensors = [
        tensor(b"x", [1, 4], 0),
        tensor(b"dense/kernel", [3, 4], 1),
        tensor(b"dense/bias", [3], 2),
        tensor(b"y", [1, 3], 0),
    ]
    graph.operators = [op]
    graph.inputs, graph.outputs = np.array([0], dtype=np.int32), np.array([3], dtype=np.int32)
    model = schema.ModelT()
    model.version, model.operatorCodes, model.subgraphs = 3, [code], [graph]
    model.buffers = [buffer(), buffer(WEIGHTS), buffer(BIAS)]
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


@pytest.fixture
def model_file(tmp_path: Path) -> Path:
    path = tmp_path / "dense.tflite"
    path.write_bytes(dense_tflite())
    return path


def invoke(*args: str) -> object:
    return CliRunner().invoke(app, [str(a) for a in args])


def one_error_line(output: str) -> str:
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1, output
    assert "Traceback" not in output
    return lines[0]


# -- measure: bad inputs -----------------------------------------------------------------------


def test_junk_tflite_is_one_line_exit_2(tmp_path: Path) -> None:
    junk = tmp_path / "x.tflite"
    junk.write_bytes(b"this is not a model at all")
    result = invoke("measure", junk)
    assert result.exit_code == 2
    assert one_error_line(result.output) == (
        f"error: {junk}: not a .tflite flatbuffer (no TFL3 identifier)"
    )


def test_truncated_tflite_names_the_file(tmp_path: Path, model_file: Path) -> None:
    broken = tmp_path / "broken.tflite"
    broken.write_bytes(model_file.read_bytes()[:40])
    result = invoke("measure", model_file, broken)
    assert result.exit_code == 2
    line = one_error_line(result.output)
    assert line.startswith(f"error: {broken}: ") and "flatbuffer" in line


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("missing.tflite", "{path}: no such file or directory"),
        (
            "model.onnx",
            "{path}: not a model file effdl can measure; give a .tflite, .keras or .h5 file or a "
            "SavedModel folder",
        ),
        ("folder", "{path}: a folder, but not a SavedModel (no saved_model.pb)"),
    ],
)
def test_unsupported_inputs(tmp_path: Path, name: str, message: str) -> None:
    path = tmp_path / name
    if name == "model.onnx":
        path.write_bytes(b"onnx")
    elif name == "folder":
        path.mkdir()
    result = invoke("measure", path)
    assert result.exit_code == 2
    assert one_error_line(result.output) == "error: " + message.format(path=path)


def test_two_files_with_one_name_are_refused(tmp_path: Path, model_file: Path) -> None:
    other = tmp_path / "sub" / "dense.tflite"
    other.parent.mkdir()
    other.write_bytes(model_file.read_bytes())
    result = invoke("measure", model_file, other)
    assert result.exit_code == 2
    assert "would both be named 'dense'" in one_error_line(result.output)


# -- measure: a valid file ---------------------------------------------------------------------


def labelled_npz(path: Path) -> float:
    """x and y for the Dense model; returns the accuracy the model must reach on them."""
    rng = np.random.default_rng(0)
    x = rng.random((30, 4), dtype=np.float32)
    y = rng.integers(0, 3, 30)
    np.savez(path, x=x, y=y)
    return float(np.mean(np.argmax(x @ WEIGHTS.T + BIAS, axis=1) == y))


def test_measure_a_tflite_and_place_it_on_a_frontier(tmp_path: Path, model_file: Path) -> None:
    expected = labelled_npz(tmp_path / "test.npz")
    out = tmp_path / "measured"
    result = invoke("measure", model_file, "--data", tmp_path / "test.npz", "--out", out)
    assert result.exit_code == 0, result.output
    assert "measured 1 model(s) on" in result.output and "dense" in result.output

    with open(out / "results.csv", newline="") as handle:
        (row,) = list(csv.DictReader(handle))
    assert row["variant"] == "dense" and row["pipeline"] == "measure" and row["status"] == "ok"
    assert int(row["tflite_bytes"]) == model_file.stat().st_size
    content = model_file.read_bytes()
    assert int(row["gzip_bytes"]) == len(gzip.compress(content, compresslevel=9, mtime=0))
    assert (int(row["params"]), int(row["nonzero_params"]), int(row["macs"])) == (15, 5, 12)
    assert float(row["kernel_sparsity"]) == pytest.approx(8 / 12)
    assert float(row["latency_ms_p50"]) > 0 and float(row["latency_ms_p95"]) > 0
    assert float(row["tflite_accuracy"]) == pytest.approx(expected)
    assert row["file"] == str(model_file)
    artifacts = out / "artifacts" / "dense"
    assert (artifacts / "model.tflite").read_bytes() == model_file.read_bytes()
    assert json.loads((artifacts / "layers.json").read_text())["layers"][0]["macs"] == 12

    # One frontier with a run's rows; measure's columns use the runs' schema.
    run = tmp_path / "run"
    run.mkdir()
    (run / "results.csv").write_text(
        "variant,pipeline,status,error,tflite_accuracy,tflite_bytes\n"
        "small,train>quantize,ok,,0.1,100\nhuge,train>quantize,ok,,1.0,10000000\n"
    )
    merged = invoke("frontier", out, run, "--all", "--format", "json")
    assert merged.exit_code == 0, merged.output
    records = {(r["run"], r["variant"]) for r in json.loads(merged.output)}
    assert records == {("measured", "dense"), ("run", "small"), ("run", "huge")}


def test_measure_without_data_has_no_accuracy(model_file: Path) -> None:
    result = invoke("measure", model_file)
    assert result.exit_code == 0, result.output
    assert "(no --data: no accuracy)" in result.output and "tflite_accuracy" not in result.output


def test_data_shape_must_match_the_model(tmp_path: Path, model_file: Path) -> None:
    np.savez(tmp_path / "d.npz", x=np.zeros((4, 8, 8, 1), np.float32), y=np.arange(4))
    result = invoke("measure", model_file, "--data", tmp_path / "d.npz")
    assert result.exit_code == 2
    assert one_error_line(result.output) == (
        f"error: {model_file}: the model takes inputs of shape (4,), the data's test split has "
        "(8, 8, 1); pass the data it was trained on"
    )


def test_parse_data_spec() -> None:
    assert parse_data_spec("source=digits") == ({"source": "digits"}, 0)
    spec, seed = parse_data_spec("source=npz, path=a b.npz,seed=3,split.test=0.3,max_samples=50")
    assert seed == 3
    assert spec == {"source": "npz", "path": "a b.npz", "split": {"test": 0.3}, "max_samples": 50}
    assert parse_data_spec("source=synthetic,shape=[8, 8, 1],classes=3")[0]["shape"] == [8, 8, 1]
    with pytest.raises(UsageError, match="name the data source, e.g. source=digits"):
        parse_data_spec("path=x.npz")
    with pytest.raises(UsageError, match="expected a recipe .yaml, a .npz with x and y, or KEY="):
        parse_data_spec("digits")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            "source=digitz",
            "--data source=digitz: unknown dataset 'digitz' (did you mean 'digits'?)",
        ),
        ("source=digits,colour=1", "--data source=digits,colour=1: colour: Extra inputs are not"),
    ],
)
def test_data_errors_are_one_line(model_file: Path, spec: str, message: str) -> None:
    result = invoke("measure", model_file, "--data", spec)
    assert result.exit_code == 2
    assert one_error_line(result.output).startswith("error: " + message)


def test_measure_and_report_do_not_import_tensorflow(tmp_path: Path, model_file: Path) -> None:
    run_dir = fake_run(tmp_path / "run")
    code = (
        "import sys, typer\n"
        "from typer.testing import CliRunner\n"
        "from effcli.cli.measure import measure\n"
        "from effcli.cli.report import report\n"
        "app = typer.Typer()\n"
        "app.command('measure')(measure)\n"
        "app.command('report')(report)\n"
        f"r = CliRunner().invoke(app, ['measure', {str(model_file)!r}])\n"
        "assert r.exit_code == 0, r.output\n"
        f"r = CliRunner().invoke(app, ['report', {str(run_dir)!r}])\n"
        "assert r.exit_code == 0, r.output\n"
        "print('tensorflow' in sys.modules, 'tf_keras' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "False False"


# -- report ------------------------------------------------------------------------------------

RESULTS = """variant,pipeline,status,error,train.width_multiplier,tflite_accuracy,tflite_bytes,gzip_bytes,latency_ms_p50,train_seconds
v1,train>quantize,ok,,0.25,0.95,50000,40000,0.01,8.0
v2,train>quantize,ok,,0.5,0.97,120000,100000,0.02,9.0
v3,train>quantize,failed,train: <script>alert(1)</script> diverged,1.0,,,,,
"""


def fake_run(root: Path) -> Path:
    """A run directory as `effdl run` writes it, with one variant's artifacts."""
    root.mkdir(parents=True)
    (root / "results.csv").write_text(RESULTS)
    (root / "recipe.yaml").write_text("name: fake\npipeline:\n  - stage: train\n")
    keys = ["a" * 64, "b" * 64]
    plan = {
        "name": "fake",
        "data": {"source": "digits"},
        "seed": 0,
        "nodes": [
            {"key": keys[0], "stage": "train", "label": "train(width_multiplier=0.25)"},
            {"key": keys[1], "stage": "quantize", "label": "quantize(mode=int8)"},
        ],
        "variants": [{"variant": v} for v in ("v1", "v2", "v3")],
    }
    (root / "plan.json").write_text(json.dumps(plan))
    (root / "run.json").write_text(json.dumps({"name": "fake", "data": {"source": "digits"}}))
    nodes = [
        {"key": keys[0], "stage": "train", "label": "train(width_multiplier=0.25)",
         "seconds": 12.5, "train_seconds": 8.0},
        {"key": keys[1], "stage": "quantize", "label": "quantize(mode=int8)",
         "seconds": 3.25, "train_seconds": 0.0},
    ]  # fmt: skip
    (root / "cache" / keys[0]).mkdir(parents=True)
    (root / "cache" / keys[0] / "meta.json").write_text(json.dumps(nodes[0]))
    folder = root / "artifacts" / "v1"
    folder.mkdir(parents=True)
    (folder / "nodes.json").write_text(json.dumps(nodes))
    (folder / "metrics.json").write_text(json.dumps({"variant": "v1", "tflite_bytes": 50000}))
    layers = {
        "weight_dtypes": {"int8": 1000},
        "layers": [
            {"index": 0, "op": "CONV_2D", "name": "cnn/conv1_1/Relu;cnn/conv1_1/BiasAdd",
             "kernel_shape": [8, 3, 3, 1], "dtype": "int8", "params": 80, "kernel_params": 72,
             "sparsity": 0.5, "unique_values": 17, "macs": 4608},
            {"index": 3, "op": "FULLY_CONNECTED", "name": "logits", "kernel_shape": [10, 32],
             "dtype": "int8", "params": 330, "kernel_params": 320, "sparsity": 0.0,
             "unique_values": 211, "macs": 320},
        ],
    }  # fmt: skip
    (folder / "layers.json").write_text(json.dumps(layers))
    return root


def test_report_is_one_self_contained_file(tmp_path: Path) -> None:
    run_dir = fake_run(tmp_path / "run")
    target = tmp_path / "out" / "report.html"
    result = invoke("report", run_dir, "--out", target)
    assert result.exit_code == 0, result.output
    assert list(target.parent.iterdir()) == [target]
    html = target.read_text()
    assert html.startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>")
    # Self-contained: inline CSS, the plot inline, nothing fetched, no scripts.
    assert "<style>" in html and 'src="data:image/png;base64,iVBORw0KGgo' in html
    for external in ("<script", "<link", 'src="http', 'href="http', "url("):
        assert external not in html
    for section in ("summary", "frontier", "results", "variants", "recipe", "environment"):
        assert f'<section id="{section}">' in html
    # Text from the run directory is escaped.
    assert "&lt;script&gt;alert(1)&lt;/script&gt; diverged" in html
    # Plan summary, environment, per-variant layers and time.
    assert "<td>nodes cached</td><td>1 of 2</td>" in html
    assert "<td>nodes in plan.json</td><td>2 (train 1, quantize 1)</td>" in html
    assert "<td>ok</td><td>2</td>" in html and "<td>failed</td><td>1</td>" in html
    for package in ("tensorflow", "tf_keras", "tensorflow-model-optimization", "ai-edge-litert"):
        assert f"<td>{package}</td>" in html
    assert "cnn/conv1_1/Relu" in html and "BiasAdd" not in html  # fused names shortened
    assert '<td class="num">4,608</td><td class="num">93.5 %</td>' in html  # MACs and share
    assert "<td>train(width_multiplier=0.25)</td>" in html
    assert '<td class="num">12.5 s</td><td class="num">8.0 s</td>' in html
    assert "Best quality: <b>v2</b>" in html
    assert "name: fake" in html


def test_report_default_path_and_missing_pieces(tmp_path: Path) -> None:
    run_dir = tmp_path / "bare"
    run_dir.mkdir()
    (run_dir / "results.csv").write_text(RESULTS)
    result = invoke("report", run_dir)
    assert result.exit_code == 0, result.output
    html = (run_dir / "report.html").read_text()
    assert "no recipe.yaml" in html and "no artifacts/ folder" in html


def test_report_needs_a_results_csv(tmp_path: Path) -> None:
    result = invoke("report", tmp_path)
    assert result.exit_code == 2
    assert one_error_line(result.output) == (
        f"error: {tmp_path}: no results.csv (not a run directory; run 'effdl run RECIPE' first)"
    )


def test_report_with_a_wrong_column_fails_instead_of_writing(tmp_path: Path) -> None:
    run_dir = fake_run(tmp_path / "run")
    result = invoke("report", run_dir, "--quality", "tflite_acc")
    assert result.exit_code == 2
    line = one_error_line(result.output)
    assert line.startswith("error: --quality tflite_acc: no such column (did you mean")
    assert not (run_dir / "report.html").exists()


def test_measure_never_writes_into_a_run_directory(tmp_path: Path, model_file: Path) -> None:
    run_dir = fake_run(tmp_path / "run")
    before = (run_dir / "results.csv").read_text()
    result = invoke("measure", model_file, "--out", run_dir)
    assert result.exit_code == 2
    assert "that is the run directory of 'effdl run'" in one_error_line(result.output)
    assert (run_dir / "results.csv").read_text() == before
