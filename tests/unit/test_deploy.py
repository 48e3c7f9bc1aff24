"""effcli.deploy without TensorFlow: labels and card rendering, the metadata writer and reader on
hand-built .tflite files (float32 and int8 Dense layers written with LiteRT's schema), the
card's snippet run against them, `effdl measure --out` cards, and export_model on a fake run."""

from __future__ import annotations

import csv
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import flatbuffers
import numpy as np
import pytest
import typer
from ai_edge_litert import schema_py_generated as schema
from ai_edge_litert.interpreter import Interpreter
from typer.testing import CliRunner

from effcli.deploy import (
    LABELS_ENTRY,
    PREPROCESSING_ENTRY,
    CardFacts,
    RewriteError,
    _artifact,
    card_snippet,
    class_names,
    labels_text,
    model_io,
    prepare_tflite,
    read_metadata,
    render_card,
    rewrite,
    signature_names,
    wilson,
    write_deploy_files,
)
from effcli.deploy._card import ReplicateAccuracy, SampleAccuracy, compact_arguments
from effcli.deploy._preprocessing import preprocessing
from effcli.deploy.export import export_model
from effcli.errors import UsageError
from effcli.measure.flatbuffer import model_stats
from effcli.measure.litert import LiteRTModel
from effcli.results.rundir import ArtifactDir, RunDir, unit_name

WEIGHTS = np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0.5, 0.5]], dtype=np.float32)
BIAS = np.array([0.0, 0.1, 0.0], dtype=np.float32)
IN_SCALE, IN_ZERO = 0.02, -10  # int8 model: input quantization
W_SCALE, OUT_SCALE, OUT_ZERO = 0.01, 0.05, 3
NORMALIZE = {
    "mode": "standardize",
    "per": "channel",
    "range": [0.0, 1.0],
    "mean": [0.1, 0.2, 0.30000000000000004, 0.4],
    "std": [2.0, 0.5, 1.25, 0.123456789],
    "offset": [0.1, 0.2, 0.30000000000000004, 0.4],
    "divisor": [2.0, 0.5, 1.25, 0.123456789],
}
SPLIT: dict[str, Any] = {
    "data": {"source": "csv", "path": "t.csv", "label": "kind", "normalize": "standardize"},
    "seed": 3,
    "fractions": {"train": 0.7, "val": 0.1, "test": 0.2},
    "sizes": {"train": 70, "val": 10, "test": 20},
    "class_counts": {"test": [7, 7, 6]},
    "class_names": ["cat", "dog", "eel"],
    "normalize": NORMALIZE,
}


def _buffer(data: np.ndarray | None = None) -> schema.BufferT:
    buf = schema.BufferT()
    buf.data = None if data is None else np.frombuffer(data.tobytes(), dtype=np.uint8)
    return buf


def _quant(scale: float, zero: int) -> schema.QuantizationParametersT:
    q = schema.QuantizationParametersT()
    q.scale, q.zeroPoint = np.array([scale], np.float32), np.array([zero], np.int64)
    return q


def _tensor(name: bytes, shape: list[int], buffer: int, kind: int, q: Any = None) -> Any:
    t = schema.TensorT()
    t.name, t.shape, t.type, t.buffer = name, np.array(shape, dtype=np.int32), kind, buffer
    t.quantization = q
    return t


def dense_tflite(int8: bool = False, signature: tuple[str, str] | None = None) -> bytes:
    """A Dense(4 -> 3) .tflite, float32 or int8 in and out, optionally with a signature
    (input name, output name) as the converter writes one."""
    code = schema.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.FULLY_CONNECTED
    code.version = 4 if int8 else 1
    op = schema.OperatorT()
    op.opcodeIndex = 0
    op.inputs, op.outputs = np.array([0, 1, 2], dtype=np.int32), np.array([3], dtype=np.int32)
    op.builtinOptionsType = schema.BuiltinOptions.FullyConnectedOptions
    op.builtinOptions = schema.FullyConnectedOptionsT()
    graph = schema.SubGraphT()
    if int8:
        kernel = np.round(WEIGHTS / W_SCALE).astype(np.int8)
        bias = np.round(BIAS / (IN_SCALE * W_SCALE)).astype(np.int32)
        i8, i32 = schema.TensorType.INT8, schema.TensorType.INT32
        graph.tensors = [
            _tensor(b"serving_default_x:0", [1, 4], 0, i8, _quant(IN_SCALE, IN_ZERO)),
            _tensor(b"dense/kernel", [3, 4], 1, i8, _quant(W_SCALE, 0)),
            _tensor(b"dense/bias", [3], 2, i32, _quant(IN_SCALE * W_SCALE, 0)),
            _tensor(b"Identity", [1, 3], 0, i8, _quant(OUT_SCALE, OUT_ZERO)),
        ]
        buffers = [_buffer(), _buffer(kernel), _buffer(bias)]
    else:
        f32 = schema.TensorType.FLOAT32
        graph.tensors = [
            _tensor(b"serving_default_x:0", [1, 4], 0, f32),
            _tensor(b"dense/kernel", [3, 4], 1, f32),
            _tensor(b"dense/bias", [3], 2, f32),
            _tensor(b"Identity", [1, 3], 0, f32),
        ]
        buffers = [_buffer(), _buffer(WEIGHTS), _buffer(BIAS)]
    graph.operators = [op]
    graph.inputs, graph.outputs = np.array([0], dtype=np.int32), np.array([3], dtype=np.int32)
    model = schema.ModelT()
    model.version, model.operatorCodes, model.subgraphs = 3, [code], [graph]
    model.buffers = buffers
    if signature is not None:
        sig = schema.SignatureDefT()
        sig.signatureKey, sig.subgraphIndex = b"serving_default", 0
        entries = []
        for name, index in zip(signature, (0, 3), strict=True):
            entry = schema.TensorMapT()
            entry.name, entry.tensorIndex = name, index
            entries.append(entry)
        sig.inputs, sig.outputs = [entries[0]], [entries[1]]
        model.signatureDefs = [sig]
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def inputs(n: int = 50) -> np.ndarray:
    return np.random.default_rng(0).normal(size=(n, 4)).astype(np.float32)


# -- labels ------------------------------------------------------------------------------------


def test_labels_are_the_class_names_in_output_order_else_indices() -> None:
    assert class_names(SPLIT, 3) == ["cat", "dog", "eel"]
    assert class_names({"class_names": ["a", "b"]}, 4) == ["a", "b", "2", "3"]
    assert class_names({"class_names": ["two\nlines", "b"]}, 2) == ["two lines", "b"]
    assert class_names({"sizes": {}}, 3) == class_names(None, 3) == ["0", "1", "2"]
    assert labels_text(["cat", "dog"]) == "cat\ndog\n"


# -- intervals ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("k", "n"), [(81, 263), (13, 120), (1, 10), (359, 360)])
def test_wilson_bounds_solve_the_score_equation(k: int, n: int) -> None:
    # The Wilson interval's ends are the p with |k/n - p| = z * sqrt(p (1 - p) / n).
    z = 1.959963984540054
    interval = wilson(k, n)
    assert interval.low < k / n < interval.high
    for p in (interval.low, interval.high):
        assert (k / n - p) ** 2 == pytest.approx(z * z * p * (1 - p) / n, rel=1e-9)


def test_wilson_at_the_edges() -> None:
    z2 = 1.959963984540054**2
    none_right, all_right = wilson(0, 50), wilson(50, 50)
    assert none_right.low == 0.0 and none_right.high == pytest.approx(z2 / (50 + z2))
    assert all_right.high == 1.0 and all_right.low == pytest.approx(50 / (50 + z2))
    assert math.isnan(wilson(0, 0).low)
    # The textbook value for 81 of 263 (Newcombe 1998: 0.2553 to 0.3662).
    assert (round(wilson(81, 263).low, 4), round(wilson(81, 263).high, 4)) == (0.2553, 0.3662)


# -- metadata writer and reader ----------------------------------------------------------------


@pytest.mark.parametrize("int8", [False, True])
def test_rewrite_embeds_metadata_names_the_signature_and_keeps_outputs(int8: bool) -> None:
    original = dense_tflite(int8=int8, signature=("x", "Identity"))
    assert signature_names(original) == {"serving_default": (["x"], ["Identity"])}
    entries = {"effdl.labels": b"cat\ndog\neel\n", "effdl.preprocessing": b'{"a": 1}'}
    rewritten = rewrite(original, entries)

    assert {k: v for k, v in read_metadata(rewritten).items() if k in entries} == entries
    assert signature_names(rewritten) == {"serving_default": (["input"], ["logits"])}
    interpreter = Interpreter(model_content=rewritten)
    assert interpreter.get_signature_list() == {
        "serving_default": {"inputs": ["input"], "outputs": ["logits"]}
    }
    x = inputs()
    before, after = LiteRTModel(original).predict(x), LiteRTModel(rewritten).predict(x)
    assert np.array_equal(before, after)  # bit-identical
    assert model_stats(original).metrics() == model_stats(rewritten).metrics()
    io = model_io(rewritten)
    assert (io.input.name, io.output.name, io.signature) == ("input", "logits", "serving_default")
    assert io.input.quantized is int8 and io.classes == 3
    if int8:
        assert (io.input.scale, io.input.zero_point) == (pytest.approx(IN_SCALE), IN_ZERO)
        detail = interpreter.get_input_details()[0]
        assert detail["quantization"] == (io.input.scale, io.input.zero_point)


def test_rewrite_adds_a_signature_and_replaces_its_own_entries() -> None:
    original = dense_tflite()  # no signature at all
    assert signature_names(original) == {}
    once = rewrite(original, {"effdl.labels": b"a\n"})
    twice = rewrite(once, {"effdl.labels": b"b\n", "effdl.preprocessing": b"{}"})
    assert read_metadata(twice) == {"effdl.labels": b"b\n", "effdl.preprocessing": b"{}"}
    assert signature_names(twice) == {"serving_default": (["input"], ["logits"])}
    runner = Interpreter(model_content=twice).get_signature_runner("serving_default")
    x = inputs(1)
    assert np.array_equal(runner(input=x)["logits"], LiteRTModel(original).predict(x))


def test_rewritten_buffers_start_on_16_byte_boundaries() -> None:
    rewritten = rewrite(dense_tflite(), {"effdl.labels": b"odd length"})
    model = schema.Model.GetRootAs(rewritten, 0)
    starts = []
    for i in range(model.BuffersLength()):
        buffer = model.Buffers(i)
        if buffer.DataLength():
            offset = buffer._tab.Vector(buffer._tab.Offset(4))  # where the data bytes begin
            starts.append(offset % 16)
    assert len(starts) == 3 and set(starts) == {0}


def test_not_a_tflite_is_a_rewrite_error() -> None:
    with pytest.raises(RewriteError, match="no TFL3 identifier"):
        rewrite(b"junk junk junk", {})
    with pytest.raises(RewriteError):
        read_metadata(b"nope")


def test_prepare_keeps_the_original_bytes_when_anything_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "model.tflite"
    original = dense_tflite(signature=("x", "Identity"))
    path.write_bytes(original)
    other = dense_tflite(int8=True)  # a "rewrite" that changes the outputs must be refused

    monkeypatch.setattr(_artifact, "rewrite", lambda content, entries: other)
    deployed = prepare_tflite(path, SPLIT, check=inputs())
    assert path.read_bytes() == original and not deployed.embedded
    assert "rewriting failed" in deployed.note and deployed.labels == ["cat", "dog", "eel"]
    assert deployed.io is not None and deployed.io.input.name == "x"  # the file's own names

    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"not a model")
    broken = prepare_tflite(junk, SPLIT)
    assert junk.read_bytes() == b"not a model" and "no TFL3 identifier" in broken.note
    assert broken.labels == ["cat", "dog", "eel"]  # from split.json's class counts


def test_prepare_embeds_the_preprocessing_the_card_states(tmp_path: Path) -> None:
    path = tmp_path / "model.tflite"
    path.write_bytes(dense_tflite(int8=True, signature=("x", "Identity")))
    deployed = prepare_tflite(path, SPLIT, check=inputs())
    assert deployed.embedded and deployed.note == ""
    found = read_metadata(path.read_bytes())
    assert found[LABELS_ENTRY] == b"cat\ndog\neel\n"
    record = json.loads(found[PREPROCESSING_ENTRY])
    assert record == deployed.preprocessing
    assert record["normalize"]["offset"] == NORMALIZE["offset"]  # exact constants
    assert record["normalize"]["divisor"] == NORMALIZE["divisor"]
    assert record["input"]["name"] == "input" and record["input"]["dtype"] == "int8"
    assert record["input"]["quantization"]["zero_point"] == IN_ZERO
    assert "round(x / scale + zero_point)" in record["input"]["quantization"]["formula"]
    assert record["output"]["shape"] == [1, 3] and record["source"] == "csv"


# -- the card ----------------------------------------------------------------------------------

NODES = [
    {"key": "a" * 64, "stage": "train", "label": "train(width_multiplier=0.25)", "seed": 4,
     "replicate": 1, "resolved": {"model": {"family": "cnn", "args": {"width_multiplier": 0.25}},
                                  "train": {"epochs": 2}}},
    {"key": "b" * 64, "stage": "quantize", "label": "quantize(mode=int8)", "seed": 4,
     "replicate": 1, "resolved": {"mode": "int8", "calibration_samples": 32}},
]  # fmt: skip
METRICS = {
    "variant": "abc123def456",
    "label": "w0.25 int8",
    "pipeline": "train>quantize",
    "replicate": 1,
    "tflite_accuracy": 0.85,
    "accuracy": 0.9,
    "tflite_bytes": 123456,
    "gzip_bytes": 100000,
    "params": 5000,
    "nonzero_params": 4000,
    "latency_ms_p50": 0.0123,
    "latency_ms_p95": 0.02,
    "macs": 777,
    "peak_memory_bytes": 4096,
}


def facts(content: bytes, **changes: Any) -> CardFacts:
    io = model_io(rewrite(content, {}))
    base: dict[str, Any] = {
        "variant": "abc123def456",
        "metrics": METRICS,
        "labels": ["cat", "dog", "eel"],
        "preprocessing": preprocessing(SPLIT, io),
        "io": io,
        "label": "w0.25 int8",
        "run": "demo",
        "replicate": 1,
        "seeds": [4],
        "nodes": NODES,
        "split": SPLIT,
        "test": SampleAccuracy(17, 20),
    }
    return CardFacts(**{**base, **changes})


def test_compact_arguments_flatten_nested_settings() -> None:
    assert compact_arguments(NODES[0]["resolved"]) == (
        "model.family=cnn, model.args.width_multiplier=0.25, train.epochs=2"
    )


def test_card_states_data_constants_metrics_footprint_and_pipeline() -> None:
    card = render_card(facts(dense_tflite(int8=True)))
    assert card.startswith("# Model card: w0.25 int8\n")
    assert "variant `abc123def456`" in card and "replicate 1, training seed 4" in card
    assert "split seed 3" in card and "train 70, val 10, test 20 samples" in card
    assert '"source": "csv"' in card and "in output order: cat, dog, eel" in card
    # The normalization with its exact constants, the int8 input and its formula.
    assert "offset = `[0.1, 0.2, 0.30000000000000004, 0.4]`" in card
    assert "divisor = `[2.0, 0.5, 1.25, 0.123456789]`" in card
    assert "shape [1, 4], dtype int8" in card
    assert "`q = clip(round(x / scale + zero_point), -128, 127) as int8`" in card
    assert f"zero_point = `{IN_ZERO}`" in card
    # Accuracy with its Wilson interval over test samples, said to be about test samples.
    low, high = wilson(17, 20).low, wilson(17, 20).high
    assert "85.00 % (17 of 20 test samples), 95 % Wilson interval over test samples" in card
    assert f"[{100 * low:.2f} %, {100 * high:.2f} %]" in card and "not across training" in card
    assert "| 123,456 | 100,000 | 5,000 | 4,000 | 0.0123 | 0.02 | 777 | 4,096 |" in card
    assert (
        "| 2 | quantize | quantize(mode=int8) | `bbbbbbbbbbbb` | mode=int8, calibration_samples=32 |"
        in card
    )
    assert "Embedded in model.tflite: metadata `effdl.labels`" in card
    assert "replicates of this variant" not in card


def test_card_with_replicates_and_without_metadata() -> None:
    replicates = ReplicateAccuracy(0.8, 0.7, 0.9, 3, "a 95 % bootstrap", (0.75, 0.8, 0.85))
    card = render_card(facts(dense_tflite(), replicates=replicates, metadata_note="it broke"))
    assert "across 3 replicates of this variant" in card and "this file is replicate 1" in card
    assert "mean 80.00 %, 95 % interval [70.00 %, 90.00 %] by a 95 % bootstrap" in card
    assert "replicates: 75.00 %, 80.00 %, 85.00 %" in card
    assert "Not embedded: it broke" in card


@pytest.mark.parametrize("int8", [False, True])
def test_the_cards_snippet_runs_the_model(
    int8: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "model.tflite"
    path.write_bytes(dense_tflite(int8=int8, signature=("x", "Identity")))
    deployed = prepare_tflite(path, SPLIT)
    card = render_card(facts(path.read_bytes(), preprocessing=deployed.preprocessing))
    (tmp_path / "labels.txt").write_text(labels_text(deployed.labels))
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, Any] = {}
    exec(card_snippet(card), namespace)  # the card's own code is what is tested

    raw = inputs()
    # What effdl measures: the normalized input through LiteRTModel, argmax -> labels.txt.
    normalized = ((raw.astype(np.float64) - NORMALIZE["offset"]) / NORMALIZE["divisor"]).astype(
        np.float32
    )
    expected = np.argmax(LiteRTModel(path).predict(normalized), axis=1)
    got = [namespace["predict"](x) for x in raw]
    assert got == [deployed.labels[i] for i in expected]
    assert len(set(got)) > 1  # the inputs reach more than one class


def test_snippet_without_normalization_or_signature(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    content = dense_tflite()
    (tmp_path / "model.tflite").write_bytes(content)
    (tmp_path / "labels.txt").write_text("0\n1\n2\n")
    io = model_io(content)
    split = {k: v for k, v in SPLIT.items() if k != "normalize"}
    card = render_card(facts(content, io=io, preprocessing=preprocessing(split, io), split=split))
    assert "OFFSET" not in card_snippet(card) and "set_tensor" in card_snippet(card)
    assert "normalization: none beyond the source scaling" in card
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, Any] = {}
    exec(card_snippet(card), namespace)
    x = inputs()
    assert [namespace["predict"](v) for v in x] == [
        str(i) for i in np.argmax(x @ WEIGHTS.T + BIAS, axis=1)
    ]


def test_write_deploy_files_reads_the_folder(tmp_path: Path) -> None:
    folder = ArtifactDir(tmp_path / "v")
    folder.path.mkdir()
    folder.tflite.write_bytes(dense_tflite(signature=("x", "Identity")))
    folder.metrics.write_text(json.dumps(METRICS))
    folder.nodes.write_text(json.dumps(NODES))
    labels = np.array([0, 1, 2, 0, 1], dtype=np.int32)
    np.save(folder.predictions, np.array([0, 1, 1, 0, 2], dtype=np.int32))
    deployed = prepare_tflite(folder.tflite, SPLIT)
    write_deploy_files(folder, deployed, split=SPLIT, test_labels=labels, run="demo")
    assert folder.labels_txt.read_text() == "cat\ndog\neel\n"
    card = folder.model_card.read_text()
    assert "60.00 % (3 of 5 test samples)" in card and "effdl run `demo`" in card
    # Written again later (export) from the file alone: the embedded metadata is found.
    folder.model_card.unlink()
    write_deploy_files(folder, split=SPLIT, test_labels=labels)
    assert "Embedded in model.tflite" in folder.model_card.read_text()


# -- effdl measure --out -----------------------------------------------------------------------


def test_measure_out_writes_labels_and_a_card(tmp_path: Path) -> None:
    from effcli.cli.measure import measure

    app = typer.Typer()
    app.command("measure")(measure)
    app.command("other")(lambda: None)
    plain = tmp_path / "plain.tflite"
    plain.write_bytes(dense_tflite())
    shipped = tmp_path / "shipped.tflite"
    shipped.write_bytes(dense_tflite(signature=("x", "y")))
    prepare_tflite(shipped, SPLIT)  # an effdl export, measured again
    x = inputs(30)
    np.savez(tmp_path / "test.npz", x=x, y=np.argmax(x @ WEIGHTS.T + BIAS, axis=1))
    out = tmp_path / "measured"
    args = ["measure", plain, shipped, "--data", tmp_path / "test.npz", "--out", out]
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output

    run = RunDir(out)
    plain_dir, shipped_dir = run.artifact("plain"), run.artifact("shipped")
    assert plain_dir.labels_txt.read_text() == "0\n1\n2\n"
    card = plain_dir.model_card.read_text()
    assert "effdl measure (from `" in card and "100.00 % (30 of 30 test samples)" in card
    assert "Not embedded: effdl measure does not rewrite the models it measures" in card
    assert shipped_dir.labels_txt.read_text() == "cat\ndog\neel\n"  # read from its metadata
    assert "Embedded in model.tflite" in shipped_dir.model_card.read_text()
    assert shipped_dir.tflite.read_bytes() == shipped.read_bytes()


def test_deploy_does_not_import_tensorflow(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "import effcli.deploy, effcli.deploy.export\n"
        f"effcli.deploy.rewrite(open({str(tmp_path / 'm.tflite')!r}, 'rb').read(), {{}})\n"
        "print('tensorflow' in sys.modules, 'tf_keras' in sys.modules)\n"
    )
    (tmp_path / "m.tflite").write_bytes(dense_tflite())
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "False False"


# -- export ------------------------------------------------------------------------------------

VARIANTS = {"abc111aaaa11": "w0.25 int8", "abc222bbbb22": "w0.5 int8", "fff333cccc33": "w1 fp32"}
TEST_LABELS = np.array([0, 1, 2, 0, 1, 2, 0, 1, 2, 0], dtype=np.int32)


def fake_run(root: Path, replicates: int = 3) -> RunDir:
    """A run directory with 3 variants x `replicates`, each with a real (tiny) model."""
    run = RunDir(root)
    root.mkdir(parents=True)
    (root / "split.json").write_text(json.dumps(SPLIT))
    (root / "run.json").write_text(json.dumps({"name": "fake"}))
    np.save(run.labels, TEST_LABELS)
    rows = []
    rng = np.random.default_rng(1)
    for variant, label in VARIANTS.items():
        for r in range(replicates):
            predictions = np.where(rng.random(10) < 0.7, TEST_LABELS, (TEST_LABELS + 1) % 3)
            folder = run.artifact(unit_name(variant, r))
            folder.path.mkdir(parents=True)
            folder.tflite.write_bytes(dense_tflite(signature=("x", "Identity")))
            prepare_tflite(folder.tflite, SPLIT)
            np.save(folder.predictions, predictions.astype(np.int32))
            accuracy = float(np.mean(predictions == TEST_LABELS))
            row = {"variant": variant, "label": label, "replicate": r, "replicate_seed": r,
                   "pipeline": "train>quantize", "status": "ok", "error": "",
                   "tflite_accuracy": accuracy, "tflite_bytes": 1000}  # fmt: skip
            for name, payload in (("metrics.json", row), ("nodes.json", NODES)):
                (folder.path / name).write_text(json.dumps(payload))
            for name in ("recipe.yaml", "layers.json", "model.keras"):
                (folder.path / name).write_text("{}")
            write_deploy_files(folder, split=SPLIT, test_labels=TEST_LABELS, run="fake")
            rows.append(row)
    rows.append({"variant": "dead00000000", "label": "broken", "status": "failed",
                 "error": "train: diverged"})  # fmt: skip
    with open(run.results, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return run


def test_export_by_prefix_takes_replicate_0_with_the_replicate_interval(tmp_path: Path) -> None:
    run = fake_run(tmp_path / "run")
    target = export_model(run.root, "fff", tmp_path / "ship")
    assert target == tmp_path / "ship"
    assert sorted(os.listdir(target)) == [
        "labels.txt", "layers.json", "metrics.json", "model.tflite", "model_card.md",
        "nodes.json", "recipe.yaml",
    ]  # fmt: skip
    source = run.artifact("fff333cccc33")
    assert (target / "model.tflite").read_bytes() == source.tflite.read_bytes()
    card = (target / "model_card.md").read_text()
    assert "variant `fff333cccc33` (`w1 fp32`)" in card and "replicate 0" in card
    assert "across 3 replicates of this variant" in card
    assert "two-way bootstrap over test samples and replicates" in card
    values = [json.loads(run.artifact(unit_name("fff333cccc33", r)).metrics.read_text())[
        "tflite_accuracy"] for r in range(3)]  # fmt: skip
    assert f"mean {100 * np.mean(values):.2f} %" in card


def test_export_by_label_and_replicate_with_keras(tmp_path: Path) -> None:
    run = fake_run(tmp_path / "run")
    (tmp_path / "empty").mkdir()
    target = export_model(run.root, "w0.5 int8", tmp_path / "empty", 2, include_keras=True)
    assert (target / "model.keras").is_file()
    assert (target / "model.tflite").read_bytes() == run.artifact(
        "abc222bbbb22.r2"
    ).tflite.read_bytes()
    metrics = json.loads((target / "metrics.json").read_text())
    assert (metrics["variant"], metrics["replicate"]) == ("abc222bbbb22", 2)
    card = (target / "model_card.md").read_text()
    assert "this file is replicate 2" in card
    # An artifact folder's name says the replicate too.
    again = export_model(run.root, "abc222bbbb22.r1", tmp_path / "again")
    assert json.loads((again / "metrics.json").read_text())["replicate"] == 1


def test_export_of_a_single_replicate_run_has_no_replicate_line(tmp_path: Path) -> None:
    run = fake_run(tmp_path / "run", replicates=1)
    card = (export_model(run.root, "abc1", tmp_path / "ship") / "model_card.md").read_text()
    assert "replicates of this variant" not in card and "Wilson interval" in card


@pytest.mark.parametrize(
    ("variant", "message"),
    [
        ("abc", "variant 'abc' is ambiguous in"),
        ("w0.25 int9", "no variant 'w0.25 int9' in"),
        ("zzz", "no variant 'zzz' in"),
        ("broken", "variant dead00000000 has no exported model: it failed (train: diverged)"),
    ],
)
def test_export_refuses_unknown_and_ambiguous_variants(
    tmp_path: Path, variant: str, message: str
) -> None:
    run = fake_run(tmp_path / "run", replicates=1)
    with pytest.raises(UsageError, match=re.escape(message)) as info:
        export_model(run.root, variant, tmp_path / "ship")
    text = str(info.value)
    assert "\n" not in text and not (tmp_path / "ship").exists()
    if variant == "abc":
        assert "abc111aaaa11 (w0.25 int8), abc222bbbb22 (w0.5 int8)" in text
    if variant == "w0.25 int9":
        assert "close matches: w0.25 int8" in text


def test_export_refuses_bad_places(tmp_path: Path) -> None:
    run = fake_run(tmp_path / "run", replicates=2)
    with pytest.raises(UsageError, match="no such run directory"):
        export_model(tmp_path / "nope", "abc1", tmp_path / "ship")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(UsageError, match="already exists and is not empty"):
        export_model(run.root, "abc1", tmp_path / "full")
    with pytest.raises(UsageError, match="has no replicate 5; its replicates: 0, 1"):
        export_model(run.root, "abc1", tmp_path / "ship", replicate=5)
    (run.root / "results.csv").unlink()
    with pytest.raises(UsageError, match="no results.csv"):
        export_model(run.root, "abc1", tmp_path / "ship")
