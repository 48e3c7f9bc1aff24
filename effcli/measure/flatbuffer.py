"""Footprint read from the .tflite flatbuffer itself: weights, sparsity, unique values, MACs, memory.

Everything here comes from the exported file (the schema ships with `ai_edge_litert`; neither
TensorFlow nor an interpreter is needed), so the numbers describe what is deployed: int8 kernels
are counted as int8, BatchNorm folded by the converter is not counted twice, and a factorized
layer's two kernels are both there. Interpreter delegates (XNNPACK) rewrite the graph, which is why
the flatbuffer and not a live interpreter is the source.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from effcli.errors import EffdlError
from effcli.measure._sparse import densify


class InvalidFlatbuffer(EffdlError):
    """The bytes are not a TFLite model."""

    exit_code = 2


# Ops whose input 1 is a weight kernel, and how MACs follow from output and kernel shapes.
KERNEL_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV", "CONV_3D")
# Ops that only move shapes around: their constant inputs are not weights.
SHAPE_OPS = (
    "RESHAPE",
    "STRIDED_SLICE",
    "PACK",
    "SHAPE",
    "TRANSPOSE",
    "PAD",
    "PADV2",
    "SLICE",
    "GATHER",
    "CONCATENATION",
    "SQUEEZE",
    "EXPAND_DIMS",
    "MEAN",
    "SUM",
    "REDUCE_MAX",
    "RESIZE_BILINEAR",
    "RESIZE_NEAREST_NEIGHBOR",
    "SPLIT",
    "SPLIT_V",
    "TILE",
    "BROADCAST_TO",
)
_DTYPES: dict[int, Any] = {
    0: np.float32,
    1: np.float16,
    2: np.int32,
    3: np.uint8,
    4: np.int64,
    6: np.bool_,
    7: np.int16,
    9: np.int8,
    10: np.float64,
    12: np.uint64,
    15: np.uint32,
    16: np.uint16,
}


@dataclass
class LayerStats:
    """One compute op of the deployed graph and its weights."""

    index: int
    op: str
    name: str
    kernel_shape: list[int]
    dtype: str
    params: int  # kernel + bias + other constant inputs of this op
    nonzero: int
    kernel_params: int
    kernel_nonzero: int
    unique_values: int  # distinct kernel values
    macs: int
    encoding: str = "dense"  # how the file stores the kernel: dense, or sparse (TFLite's format)

    @property
    def sparsity(self) -> float:
        return 1 - self.kernel_nonzero / self.kernel_params if self.kernel_params else 0.0


@dataclass
class ModelStats:
    """Whole-model footprint derived from the flatbuffer."""

    params: int
    nonzero_params: int
    kernel_params: int
    kernel_nonzero: int
    unique_weights: int
    macs: int
    peak_memory_bytes: int
    weight_dtypes: dict[str, int]
    layers: list[LayerStats] = field(default_factory=list)

    @property
    def sparsity(self) -> float:
        """Fraction of exact zeros over all weight tensors (kernels, biases, folded constants)."""
        return 1 - self.nonzero_params / self.params if self.params else 0.0

    @property
    def kernel_sparsity(self) -> float:
        return 1 - self.kernel_nonzero / self.kernel_params if self.kernel_params else 0.0

    def metrics(self) -> dict[str, float]:
        """The columns this adds to a results row."""
        return {
            "params": self.params,
            "nonzero_params": self.nonzero_params,
            "sparsity": self.sparsity,
            "kernel_sparsity": self.kernel_sparsity,
            "unique_weights": self.unique_weights,
            "macs": self.macs,
            "peak_memory_bytes": self.peak_memory_bytes,
        }

    def to_json(self) -> dict[str, Any]:
        layers = [{**asdict(layer), "sparsity": layer.sparsity} for layer in self.layers]
        return {
            **self.metrics(),
            "weight_dtypes": self.weight_dtypes,
            "peak_memory": "peak bytes of activation tensors alive at once in execution order",
            "layers": layers,
        }


def _op_names() -> dict[int, str]:
    from ai_edge_litert.schema_py_generated import BuiltinOperator

    return {v: k for k, v in vars(BuiltinOperator).items() if not k.startswith("_")}


class Flatbuffer:
    """The parsed main subgraph of a .tflite file, with constant tensors as numpy arrays."""

    def __init__(self, content: bytes) -> None:
        from ai_edge_litert.schema_py_generated import Model, ModelT

        if len(content) < 8 or content[4:8] != b"TFL3":
            raise InvalidFlatbuffer("not a .tflite flatbuffer (no TFL3 identifier)")
        try:
            self.model = ModelT.InitFromObj(Model.GetRootAs(content, 0))
        except Exception as exc:
            raise InvalidFlatbuffer(f"corrupt .tflite flatbuffer: {type(exc).__name__}") from None
        if not self.model.subgraphs:
            raise InvalidFlatbuffer("the .tflite file has no subgraph")
        self.content = content
        self.graph = self.model.subgraphs[0]
        names = _op_names()
        self.op_types = [
            names.get(max(code.builtinCode, code.deprecatedBuiltinCode), "CUSTOM")
            for code in self.model.operatorCodes or []
        ]
        self._dense: dict[int, np.ndarray] = {}  # sparse constants, densified once
        # A float16 model stores weights as float16 constants behind DEQUANTIZE ops, a sparse
        # one (EXPERIMENTAL_SPARSITY) as sparse constants behind DENSIFY ops: the op's output
        # is that weight.
        self.dequantized: dict[int, int] = {}
        for op in self.graph.operators or []:
            kind = self.op_type(op)
            if kind in ("DEQUANTIZE", "DENSIFY") and self.constant(int(op.inputs[0])) is not None:
                self.dequantized[int(op.outputs[0])] = int(op.inputs[0])

    def op_type(self, op: Any) -> str:
        return self.op_types[op.opcodeIndex]

    def tensor(self, index: int) -> Any:
        return self.graph.tensors[index]

    def shape(self, index: int) -> list[int]:
        shape = self.tensor(index).shape
        return [int(d) for d in shape] if shape is not None else []

    def constant(self, index: int) -> np.ndarray | None:
        """The tensor's data if it is a constant stored in the file, else None."""
        if index < 0:
            return None
        tensor = self.tensor(index)
        buffer = self.model.buffers[tensor.buffer] if tensor.buffer else None
        if buffer is None:
            return None
        if buffer.data is not None and len(buffer.data):
            raw = bytes(np.asarray(buffer.data, dtype=np.uint8))
        elif buffer.offset and buffer.size:  # large models keep buffers after the flatbuffer
            raw = self.content[buffer.offset : buffer.offset + buffer.size]
        else:
            return None
        dtype = _DTYPES.get(tensor.type)
        if dtype is None:  # int4/string/...: count bytes, not values
            return np.frombuffer(raw, dtype=np.uint8)
        values = np.frombuffer(raw, dtype=dtype)
        if tensor.sparsity is not None:  # stored in TFLite's sparse encoding
            if index not in self._dense:
                self._dense[index] = densify(values, self.shape(index), tensor.sparsity)
            return self._dense[index]
        return values.reshape(self.shape(index) or (-1,))

    def weight(self, index: int) -> tuple[int, np.ndarray] | None:
        """(stored tensor, data) of a weight input, looking through a float16 DEQUANTIZE."""
        index = self.dequantized.get(index, index)
        data = self.constant(index)
        return (index, data) if data is not None else None

    def nbytes(self, index: int) -> int:
        dtype = _DTYPES.get(self.tensor(index).type, np.uint8)
        return math.prod(max(d, 1) for d in self.shape(index)) * np.dtype(dtype).itemsize


def _macs(op: str, out_shape: list[int], kernel_shape: list[int], in_shape: list[int]) -> int:
    """Multiply-accumulates of one kernel op at batch 1 (analytic, from the deployed shapes)."""
    kernel = math.prod(kernel_shape)
    if op in ("CONV_2D", "DEPTHWISE_CONV_2D"):  # out (1, H, W, C): each position uses the kernel
        return math.prod(out_shape[1:3]) * kernel
    if op == "CONV_3D":
        return math.prod(out_shape[1:4]) * kernel
    if op == "FULLY_CONNECTED":  # kernel (out, in); rows = output elements / out
        units = kernel_shape[0] if kernel_shape else 1
        return (math.prod(out_shape) // max(units, 1)) * kernel
    if op == "TRANSPOSE_CONV":  # each input position scatters the whole kernel
        return math.prod(in_shape[1:3]) * kernel
    return 0


def model_stats(content: bytes | Path) -> ModelStats:
    """Weights, sparsity, unique values, MACs and activation memory of a .tflite model."""
    fb = Flatbuffer(content if isinstance(content, bytes) else Path(content).read_bytes())
    ops = fb.graph.operators or []
    counted: set[int] = set()
    layers: list[LayerStats] = []
    dtypes: dict[str, int] = {}
    params = nonzero = kernel_params = kernel_nonzero = unique = macs = 0
    for position, op in enumerate(ops):
        kind = fb.op_type(op)
        if kind in SHAPE_OPS or kind in ("DEQUANTIZE", "DENSIFY"):
            continue
        inputs = [int(i) for i in (op.inputs if op.inputs is not None else [])]
        constants = [(slot, w) for slot, i in enumerate(inputs) if (w := fb.weight(i)) is not None]
        if kind == "TRANSPOSE_CONV":  # input 0 is the output shape, not a weight
            constants = [(slot, w) for slot, w in constants if slot != 0]
        if not constants:
            continue
        layer_params = layer_nonzero = 0
        for _, (index, data) in constants:
            if index in counted:  # a constant shared by several ops counts once
                continue
            counted.add(index)
            layer_params += data.size
            layer_nonzero += int(np.count_nonzero(data))
            name = np.dtype(data.dtype).name
            dtypes[name] = dtypes.get(name, 0) + int(data.size)
        params += layer_params
        nonzero += layer_nonzero
        if kind not in KERNEL_OPS:
            continue
        kernel_entry = dict(constants).get(1)
        if kernel_entry is None:  # a kernel computed at run time (not a weight)
            continue
        kernel_index, kernel = kernel_entry
        out_shape = fb.shape(int(op.outputs[0]))
        in_shape = fb.shape(inputs[2]) if kind == "TRANSPOSE_CONV" else fb.shape(inputs[0])
        layer = LayerStats(
            index=position,
            op=kind,
            name=fb.tensor(int(op.outputs[0])).name.decode(errors="replace"),
            kernel_shape=list(kernel.shape),
            dtype=np.dtype(kernel.dtype).name,
            params=layer_params,
            nonzero=layer_nonzero,
            kernel_params=int(kernel.size),
            kernel_nonzero=int(np.count_nonzero(kernel)),
            unique_values=int(len(np.unique(kernel))),
            macs=_macs(kind, out_shape, list(kernel.shape), in_shape),
            encoding="sparse" if fb.tensor(kernel_index).sparsity is not None else "dense",
        )
        layers.append(layer)
        kernel_params += layer.kernel_params
        kernel_nonzero += layer.kernel_nonzero
        unique += layer.unique_values
        macs += layer.macs
    return ModelStats(
        params=params,
        nonzero_params=nonzero,
        kernel_params=kernel_params,
        kernel_nonzero=kernel_nonzero,
        unique_weights=unique,
        macs=macs,
        peak_memory_bytes=peak_activation_bytes(fb),
        weight_dtypes=dtypes,
        layers=layers,
    )


def peak_activation_bytes(fb: Flatbuffer) -> int:
    """Peak bytes of non-constant tensors alive at once, walking ops in execution order.

    A tensor is alive from the op that produces it (or the start, for model inputs) to its last
    consumer (or the end, for model outputs). This is the arena a memory planner needs with no
    in-place reuse; weights are not included (they are in the file, see tflite_bytes).
    """
    ops = fb.graph.operators or []

    def activation(index: int) -> bool:
        return index >= 0 and index not in fb.dequantized and fb.constant(index) is None

    last_use: dict[int, int] = {}
    for position, op in enumerate(ops):
        for index in op.inputs if op.inputs is not None else []:
            if activation(int(index)):
                last_use[int(index)] = position
    outputs = {int(i) for i in (fb.graph.outputs if fb.graph.outputs is not None else [])}
    for index in outputs:
        last_use[index] = len(ops)
    live = {int(i) for i in (fb.graph.inputs if fb.graph.inputs is not None else [])}
    peak = sum(fb.nbytes(i) for i in live)
    for position, op in enumerate(ops):
        live |= {int(i) for i in (op.outputs if op.outputs is not None else []) if activation(i)}
        peak = max(peak, sum(fb.nbytes(i) for i in live))
        live = {i for i in live if last_use.get(i, -1) > position}
    return int(peak)
