"""Latency you can trust: the timing floor, the spread of the repeats, more thread counts and
throughput at a batch, from the recipe's `measure:` to the row, `effdl measure` and the frontier.

The models are written with LiteRT's own flatbuffer schema (no TensorFlow): float32 Dense
chains big enough to sit far above the floor, and a model whose batch cannot change.
"""

from __future__ import annotations

import json
import math
import re
import textwrap
from pathlib import Path

import flatbuffers
import numpy as np
import pytest
import typer
from ai_edge_litert import schema_py_generated as schema
from pydantic import ValidationError
from typer.testing import CliRunner

from effcli.cli.frontier import frontier
from effcli.cli.measure import measure
from effcli.measure import floor as floor_module
from effcli.measure.floor import floor_model, floor_record, timing_floor_ms
from effcli.measure.latency import NEAR_FLOOR_FACTOR, near_floor
from effcli.measure.litert import LiteRTModel
from effcli.measure.row import measure_tflite
from effcli.plan import load_plan
from effcli.recipe.schema import MeasureSpec

app = typer.Typer()
app.command("measure")(measure)
app.command("frontier")(frontier)


def dense_chain(widths: list[int], fixed_batch: bool = False) -> bytes:
    """float32 input [1, widths[0]] through Dense layers of `widths[1:]` units. `fixed_batch`
    first reshapes the input to the literal shape [1, widths[0]], so no other batch fits."""
    rng = np.random.default_rng(0)
    buffers, tensors, ops = [schema.BufferT()], [], []

    def tensor(shape: list[int], data: np.ndarray | None = None, kind: int = 0) -> int:
        t = schema.TensorT()
        t.name, t.shape, t.type = f"t{len(tensors)}".encode(), np.array(shape, np.int32), kind
        t.buffer = 0
        if data is not None:
            buf = schema.BufferT()
            buf.data = np.frombuffer(data.tobytes(), dtype=np.uint8)
            buffers.append(buf)
            t.buffer = len(buffers) - 1
        tensors.append(t)
        return len(tensors) - 1

    def op(code: int, inputs: list[int], outputs: list[int]) -> None:
        o = schema.OperatorT()
        o.opcodeIndex, o.inputs, o.outputs = code, np.array(inputs, np.int32), np.array(outputs)
        if code == 0:
            o.builtinOptionsType = schema.BuiltinOptions.FullyConnectedOptions
            o.builtinOptions = schema.FullyConnectedOptionsT()
        ops.append(o)

    codes = []
    for builtin in (schema.BuiltinOperator.FULLY_CONNECTED, schema.BuiltinOperator.RESHAPE):
        code = schema.OperatorCodeT()
        code.builtinCode = code.deprecatedBuiltinCode = builtin
        code.version = 1
        codes.append(code)
    first = current = tensor([1, widths[0]])
    if fixed_batch:
        shape = tensor([2], np.array([1, widths[0]], np.int32), schema.TensorType.INT32)
        current = tensor([1, widths[0]])
        op(1, [first, shape], [current])
    for units_in, units in zip(widths, widths[1:], strict=False):
        kernel = tensor([units, units_in], rng.normal(size=(units, units_in)).astype(np.float32))
        bias = tensor([units], np.zeros(units, np.float32))
        out = tensor([1, units])
        op(0, [current, kernel, bias], [out])
        current = out
    graph = schema.SubGraphT()
    graph.tensors, graph.operators = tensors, ops
    graph.inputs, graph.outputs = np.array([first], np.int32), np.array([current], np.int32)
    model = schema.ModelT()
    model.version, model.operatorCodes, model.subgraphs, model.buffers = 3, codes, [graph], buffers
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """~1.1 M multiply-adds: hundreds of times the floor on any machine."""
    path = tmp_path_factory.mktemp("models") / "big.tflite"
    path.write_bytes(dense_chain([64, 1024, 1024, 10]))
    return path


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("models") / "small.tflite"
    path.write_bytes(dense_chain([16, 8, 4]))
    return path


@pytest.mark.parametrize("dtype", [np.float32, np.int8])
def test_floor_model_is_an_identity_of_the_input(dtype: type) -> None:
    runtime = LiteRTModel(floor_model([1, 8, 8, 1], dtype))
    assert runtime.input_detail["dtype"] == dtype
    x = np.arange(64, dtype=np.float32).reshape(1, 8, 8, 1) - 32
    assert np.array_equal(runtime.predict(x), x)


def test_floor_is_positive_cached_and_below_a_real_model(big: Path) -> None:
    floor = timing_floor_ms([1, 8, 8, 1], np.float32)
    assert 0 < floor < LiteRTModel(big).timing(np.zeros(64, np.float32)).p50_ms
    # A batch dimension other than 1 is the same floor (timed at batch 1), from the cache.
    assert timing_floor_ms([32, 8, 8, 1], np.float32) == floor
    record = floor_record((360, 8, 8, 1))  # e.g. the test split's shape, for run.json
    assert record["input_shape"] == [1, 8, 8, 1] and record["threads"] == 1
    assert record["floor_ms"]["float32"] == floor and record["floor_ms"]["int8"] > 0


def test_floor_of_an_unknown_dtype_is_nan_not_a_crash() -> None:
    assert math.isnan(timing_floor_ms([1, 4], np.complex64))


@pytest.mark.parametrize(
    ("p50", "floor", "expected"),
    [
        (0.004, 0.001, True),  # 4x the floor
        (0.005, 0.001, False),  # exactly 5x: not under
        (0.03, 0.0007, False),  # a quickstart CNN on this machine: ~40x
        (math.nan, 0.001, None),
        (0.004, math.nan, None),
    ],
)
def test_near_floor_predicate(p50: float, floor: float, expected: bool | None) -> None:
    assert NEAR_FLOOR_FACTOR == 5.0
    assert near_floor(p50, floor) is expected


def test_row_has_cv_floor_and_flag(big: Path, small: Path) -> None:
    heavy = measure_tflite(big).metrics
    assert heavy["latency_ms_p50"] <= heavy["latency_ms_p95"]
    assert math.isfinite(heavy["latency_ms_cv"]) and heavy["latency_ms_cv"] >= 0
    assert heavy["latency_floor_ms"] == timing_floor_ms([1, 64], np.float32, 1)
    assert heavy["latency_near_floor"] is False
    light = measure_tflite(small).metrics
    expected = light["latency_ms_p50"] < NEAR_FLOOR_FACTOR * light["latency_floor_ms"]
    assert light["latency_near_floor"] is expected
    assert not any(k.endswith(("_t4", "_t1")) or k == "throughput_per_s" for k in light)


def test_floor_is_timed_at_the_model_threads(small: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real = floor_module.timing_floor_ms

    def spy(shape: list[int], dtype: type, threads: int = 1) -> float:
        calls.append(threads)
        return real(shape, dtype, threads)

    monkeypatch.setattr("effcli.measure.latency.timing_floor_ms", spy)
    measure_tflite(small, threads=2)
    assert calls == [2]


def test_latency_threads_add_columns(small: Path) -> None:
    metrics = measure_tflite(small, settings=MeasureSpec(latency_threads=[1, 4])).metrics
    assert metrics["latency_ms_p50_t4"] > 0 and metrics["latency_ms_p95_t4"] > 0
    assert "latency_ms_p50_t1" not in metrics and metrics["latency_ms_p50"] > 0
    # The plain columns are always the default threads: [4] alone still has them.
    alone = measure_tflite(small, settings=MeasureSpec(latency_threads=[4])).metrics
    assert {"latency_ms_p50", "latency_ms_p50_t4"} <= set(alone)


def test_throughput_at_a_batch(small: Path, tmp_path: Path) -> None:
    metrics = measure_tflite(small, settings=MeasureSpec(throughput_batch=8)).metrics
    assert metrics["throughput_per_s"] > 0
    fixed = tmp_path / "fixed.tflite"
    fixed.write_bytes(dense_chain([16, 8, 4], fixed_batch=True))
    runtime = LiteRTModel(fixed)
    assert runtime.throughput_per_s(np.zeros(16, np.float32), 8) is None
    # The failed resize left the interpreter usable at batch 1.
    assert runtime.predict(np.ones((1, 16), np.float32)).shape == (1, 4)
    row = measure_tflite(fixed, settings=MeasureSpec(throughput_batch=8)).metrics
    assert row["throughput_per_s"] is None and row["latency_ms_p50"] > 0


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"latency_threads": [1, 0]}, "each thread count must be 1..64 (got 0)"),
        ({"latency_threads": [65]}, "each thread count must be 1..64 (got 65)"),
        ({"latency_threads": [1, 4, 1]}, "thread count 1 is listed twice"),
        ({"latency_threads": [True]}, "must be a whole number (got True)"),
        ({"latency_threads": 4}, "a non-empty list of thread counts"),
        ({"latency_threads": []}, "a non-empty list of thread counts"),
        ({"throughput_batch": 0}, "greater than or equal to 1"),
        ({"throughput_batch": 4097}, "less than or equal to 4096"),
        ({"throughput_batch": True}, "expected a batch size"),
        ({"latency_runs": 100}, "Extra inputs are not permitted"),
    ],
)
def test_measure_spec_rejects(spec: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        MeasureSpec.model_validate(spec)


def test_measure_spec_defaults() -> None:
    assert MeasureSpec().latency_threads == (1,) and MeasureSpec().throughput_batch is None
    assert MeasureSpec.model_validate({"latency_threads": [1, 4]}).latency_threads == (1, 4)


def test_plan_carries_measure_without_changing_node_keys(tmp_path: Path) -> None:
    body = "pipeline:\n  - stage: train\n  - stage: quantize\n"
    plain = tmp_path / "plain.yaml"
    plain.write_text("name: t\n" + body)
    timed = tmp_path / "timed.yaml"
    timed.write_text("name: t\nmeasure: {latency_threads: [1, 4], throughput_batch: 32}\n" + body)
    a, b = load_plan(plain, require_data=False), load_plan(timed, require_data=False)
    assert a.measure == MeasureSpec()
    assert b.measure == MeasureSpec(latency_threads=[1, 4], throughput_batch=32)
    assert list(a.nodes) == list(b.nodes)


def test_cli_measure_options(small: Path) -> None:
    result = CliRunner().invoke(
        app,
        ["measure", str(small), "--latency-threads", "1,2", "--throughput-batch", "4"],
    )
    assert result.exit_code == 0, result.output
    # The title wraps at the console's width and the floor differs per CPU: match the words.
    title = " ".join(result.output.split())
    floor = re.search(r"timing floor ([0-9.e-]+) ms", title)
    assert floor is not None, title
    assert 0 < float(floor.group(1)) < 1  # one reshape costs well under a millisecond
    as_json = CliRunner().invoke(
        app,
        ["measure", str(small), "--latency-threads", "2", "--throughput-batch", "4"]
        + ["--format", "json"],
    )
    assert as_json.exit_code == 0, as_json.output
    row = json.loads(as_json.stdout)[0]
    for column in ("latency_ms_cv", "latency_floor_ms", "latency_ms_p50_t2", "throughput_per_s"):
        assert row[column] > 0, column
    assert row["latency_near_floor"] in (True, False)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--latency-threads", "1,x"], "--latency-threads 1,x: give thread counts separated"),
        (["--latency-threads", "1,1"], "--latency-threads 1,1: thread count 1 is listed twice"),
        (["--latency-threads", "0"], "--latency-threads 0: each thread count must be 1..64"),
        (["--throughput-batch", "0"], "--throughput-batch 0: input should be greater than"),
    ],
)
def test_cli_measure_bad_options(small: Path, args: list[str], message: str) -> None:
    result = CliRunner().invoke(app, ["measure", str(small), *args])
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())


CSV_HEADER = "variant,pipeline,status,error,tflite_accuracy,tflite_bytes,latency_ms_p50,"
ROWS = textwrap.dedent(
    """\
    tiny,train,ok,,0.90,2000,0.002,0.0007,True
    mid,train,ok,,0.95,9000,0.003,0.0007,True
    big,train,ok,,0.98,90000,0.05,0.0007,False
    """
)


@pytest.mark.parametrize(
    ("footprint", "shown"), [("latency_ms_p50", True), ("tflite_bytes", False)]
)
def test_frontier_notes_rows_near_the_floor(tmp_path: Path, footprint: str, shown: bool) -> None:
    (tmp_path / "results.csv").write_text(
        CSV_HEADER + "latency_floor_ms,latency_near_floor\n" + ROWS
    )
    result = CliRunner().invoke(app, ["frontier", str(tmp_path), "-f", footprint])
    assert result.exit_code == 0, result.output
    note = "2 rows time under 5x the timing floor (0.0007 ms): their latency differences are"
    assert (note in " ".join(result.output.split())) is shown


def test_frontier_reads_runs_from_before_the_column(tmp_path: Path) -> None:
    old = "old,train,ok,,0.85,2000,0.001,,\n"
    (tmp_path / "results.csv").write_text(
        CSV_HEADER + "latency_floor_ms,latency_near_floor\n" + old + ROWS.splitlines()[0] + "\n"
    )
    result = CliRunner().invoke(app, ["frontier", str(tmp_path), "-f", "latency_ms_p50"])
    assert result.exit_code == 0, result.output
    assert "1 rows time under 5x" in " ".join(result.output.split())
