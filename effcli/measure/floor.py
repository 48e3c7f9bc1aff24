"""The timing floor: what one invoke of a model with (almost) nothing to do costs here.

A model whose latency is a small multiple of the floor is timed mostly as Python's call into the
interpreter and the interpreter's own dispatch, so its latency differences say little about the
model. The floor model is one RESHAPE of the input to its own shape: the converter cannot emit
less (an identity graph has no op), and XNNPACK takes it in float32 and int8 alike, so it runs
through the same delegate as real models. It is written with LiteRT's flatbuffer schema (no
TensorFlow) and timed by the same `LiteRTModel.timing` as every row, once per input shape, dtype
and thread count in a process.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from effcli._native import native_quiet
from effcli.measure.flatbuffer import _DTYPES
from effcli.measure.litert import InvalidModel, LiteRTModel

# (input shape with batch 1, dtype name, threads) -> p50 ms, for this process.
_FLOORS: dict[tuple[tuple[int, ...], str, int], float] = {}


def floor_model(input_shape: Sequence[int], dtype: Any) -> bytes:
    """A .tflite whose one op reshapes an input of `input_shape` and `dtype` to itself.

    Integer inputs get scale 1 and zero point 0, so float samples quantize to themselves."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    codes = {np.dtype(v).name: k for k, v in _DTYPES.items()}
    name = np.dtype(dtype).name
    if name not in codes:
        raise ValueError(f"no TFLite tensor type for dtype {name}")
    shape = np.array(input_shape, dtype=np.int32)

    quantized = bool(np.issubdtype(np.dtype(dtype), np.integer))

    def tensor(label: bytes, dims: np.ndarray, kind: int, buffer: int, data: bool = True) -> Any:
        t = schema.TensorT()
        t.name, t.shape, t.type, t.buffer = label, dims, kind, buffer
        if data and quantized:
            t.quantization = schema.QuantizationParametersT()
            t.quantization.scale = np.array([1.0], dtype=np.float32)
            t.quantization.zeroPoint = np.array([0], dtype=np.int64)
        return t

    empty, new_shape = schema.BufferT(), schema.BufferT()
    new_shape.data = np.frombuffer(shape.tobytes(), dtype=np.uint8)
    code = schema.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.RESHAPE
    code.version = 1
    op = schema.OperatorT()
    op.opcodeIndex = 0
    op.inputs, op.outputs = np.array([0, 1], dtype=np.int32), np.array([2], dtype=np.int32)
    graph = schema.SubGraphT()
    graph.tensors = [
        tensor(b"input", shape, codes[name], 0),
        tensor(b"shape", np.array([len(shape)], dtype=np.int32), schema.TensorType.INT32, 1, False),
        tensor(b"output", shape, codes[name], 0),
    ]
    graph.inputs, graph.outputs = np.array([0], dtype=np.int32), np.array([2], dtype=np.int32)
    graph.operators = [op]
    model = schema.ModelT()
    model.version, model.description = 3, b"effdl timing floor"
    model.operatorCodes, model.subgraphs, model.buffers = [code], [graph], [empty, new_shape]
    builder = flatbuffers.Builder(256)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def timing_floor_ms(input_shape: Sequence[int], dtype: Any, threads: int = 1) -> float:
    """p50 ms of the floor model for this input (batch dimension included, timed at 1), measured
    once per process and cached; NaN when LiteRT cannot build it for this dtype."""
    shape = (1, *(int(d) for d in input_shape[1:]))
    key = (shape, np.dtype(dtype).name, int(threads))
    if key not in _FLOORS:
        try:
            with native_quiet():  # LiteRT logs its XNNPACK delegate on fd 2
                runtime = LiteRTModel(floor_model(shape, dtype), num_threads=int(threads))
            sample = np.zeros(shape[1:], dtype=np.float32)
            _FLOORS[key] = runtime.timing(sample).p50_ms
        except (InvalidModel, ValueError, RuntimeError):
            _FLOORS[key] = math.nan
    return _FLOORS[key]


def floor_record(input_shape: Sequence[int], threads: int = 1) -> dict[str, Any]:
    """The floors of a run's input for run.json: the float32 and int8 exports' input dtypes (a
    row's own `latency_floor_ms` is its input's floor)."""
    shape = [1, *(int(d) for d in input_shape[1:])]
    floors = {name: timing_floor_ms(shape, name, threads) for name in ("float32", "int8")}
    return {"input_shape": shape, "threads": threads, "floor_ms": floors}
