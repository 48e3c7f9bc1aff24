"""Read and rewrite the deployment facts a .tflite flatbuffer holds: its metadata entries, its
serving signature and the tensors behind it.

The schema's object API ships with `ai_edge_litert` (a newer schema than TensorFlow's copy, so
nothing the converter writes is dropped) and needs no TensorFlow: a model is unpacked into
Python objects, edited and packed again. Packing keeps every buffer's bytes; each buffer is
aligned to 16 bytes as the converter aligns them (the schema's `force_align: 16`, which the
generated Python packer ignores), so kernels read their weights from the same layout.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from effcli.errors import EffdlError

SIGNATURE_KEY = "serving_default"
INPUT_NAME = "input"
OUTPUT_NAME = "logits"
_IDENTIFIER = b"TFL3"
_BUFFER_ALIGNMENT = 16
# The flatbuffer's TensorType codes and their numpy names (the ones a classifier's
# input/output can have).
_TENSOR_TYPES = {
    0: "float32",
    1: "float16",
    2: "int32",
    3: "uint8",
    4: "int64",
    7: "int16",
    9: "int8",
    10: "float64",
    16: "uint16",
}


class RewriteError(EffdlError):
    """The file cannot be rewritten as asked (its bytes are then kept as converted)."""


@dataclass(frozen=True)
class TensorSpec:
    """One end of the model: its signature name (or tensor name), shape, dtype, quantization."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    scale: float | None = None  # per-tensor quantization; None for float tensors
    zero_point: int | None = None

    @property
    def quantized(self) -> bool:
        return self.scale is not None

    def to_json(self) -> dict[str, Any]:
        record: dict[str, Any] = {"name": self.name, "shape": list(self.shape), "dtype": self.dtype}
        if self.quantized:
            record["quantization"] = {"scale": self.scale, "zero_point": self.zero_point}
        return record


@dataclass(frozen=True)
class ModelIO:
    """The model's single input and output, and the signature key they are called by (None
    when the file has no signature)."""

    input: TensorSpec
    output: TensorSpec
    signature: str | None

    @property
    def classes(self) -> int:
        """The output size: one score per class."""
        return int(self.output.shape[-1]) if self.output.shape else 1


def _schema() -> Any:
    from ai_edge_litert import schema_py_generated

    return schema_py_generated


def _root(content: bytes) -> Any:
    if len(content) < 8 or content[4:8] != _IDENTIFIER:
        raise RewriteError("not a .tflite flatbuffer (no TFL3 identifier)")
    return _schema().Model.GetRootAs(content, 0)


def _text(value: bytes | str | None) -> str:
    if value is None:
        return ""
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else value


def read_metadata(content: bytes) -> dict[str, bytes]:
    """Every metadata entry of a .tflite file: name -> the bytes of its buffer."""
    model = _root(content)
    entries: dict[str, bytes] = {}
    for i in range(model.MetadataLength()):
        entry = model.Metadata(i)
        buffer = model.Buffers(entry.Buffer())
        if buffer.DataLength():
            data = buffer.DataAsNumpy().tobytes()
        elif buffer.Offset() and buffer.Size():  # stored after the flatbuffer (>2 GB models)
            data = content[buffer.Offset() : buffer.Offset() + buffer.Size()]
        else:
            data = b""
        entries[_text(entry.Name())] = data
    return entries


def signature_names(content: bytes) -> dict[str, tuple[list[str], list[str]]]:
    """signature key -> (input names, output names), as the flatbuffer stores them."""
    model = _root(content)
    found: dict[str, tuple[list[str], list[str]]] = {}
    for i in range(model.SignatureDefsLength()):
        sig = model.SignatureDefs(i)
        inputs = [_text(sig.Inputs(j).Name()) for j in range(sig.InputsLength())]
        outputs = [_text(sig.Outputs(j).Name()) for j in range(sig.OutputsLength())]
        found[_text(sig.SignatureKey())] = (inputs, outputs)
    return found


def _tensor_spec(graph: Any, index: int, name: str) -> TensorSpec:
    tensor = graph.Tensors(index)
    shape = tuple(int(d) for d in tensor.ShapeAsNumpy()) if tensor.ShapeLength() else ()
    dtype = _TENSOR_TYPES.get(tensor.Type(), f"type{tensor.Type()}")
    q = tensor.Quantization()
    scale = zero_point = None
    if q is not None and q.ScaleLength() == 1 and dtype not in ("float32", "float16", "float64"):
        scale = float(q.Scale(0))
        zero_point = int(q.ZeroPoint(0)) if q.ZeroPointLength() else 0
    return TensorSpec(
        name=name or _text(tensor.Name()),
        shape=shape,
        dtype=dtype,
        scale=scale,
        zero_point=zero_point,
    )


def model_io(content: bytes) -> ModelIO:
    """The input and output of the model's main subgraph, named as its serving signature
    names them (the tensor names when it has none)."""
    model = _root(content)
    if not model.SubgraphsLength():
        raise RewriteError("the .tflite file has no subgraph")
    graph = model.Subgraphs(0)
    if graph.InputsLength() != 1 or graph.OutputsLength() != 1:
        raise RewriteError(
            f"the model has {graph.InputsLength()} inputs and {graph.OutputsLength()} outputs; "
            "a deployable classifier has one of each"
        )
    inp, out = int(graph.Inputs(0)), int(graph.Outputs(0))
    names = {inp: "", out: ""}
    signature = None
    for i in range(model.SignatureDefsLength()):
        sig = model.SignatureDefs(i)
        if sig.SubgraphIndex() != 0:
            continue
        key = _text(sig.SignatureKey())
        if signature is None or key == SIGNATURE_KEY:
            signature = key
            for j in range(sig.InputsLength()):
                if sig.Inputs(j).TensorIndex() == inp:
                    names[inp] = _text(sig.Inputs(j).Name())
            for j in range(sig.OutputsLength()):
                if sig.Outputs(j).TensorIndex() == out:
                    names[out] = _text(sig.Outputs(j).Name())
    return ModelIO(
        input=_tensor_spec(graph, inp, names[inp]),
        output=_tensor_spec(graph, out, names[out]),
        signature=signature,
    )


@functools.cache
def _aligned_buffer_class() -> type:
    schema = _schema()

    class AlignedBuffer(schema.BufferT):  # type: ignore[name-defined]
        """A buffer whose data vector starts on a 16-byte boundary, as the converter writes it."""

        def Pack(self, builder: Any) -> Any:  # the generated API's name
            if self.data is None:
                return super().Pack(builder)
            payload = np.asarray(self.data, dtype=np.uint8).tobytes()
            builder.StartVector(1, len(payload), _BUFFER_ALIGNMENT)
            builder.head = builder.head - len(payload)
            builder.Bytes[builder.head : builder.head + len(payload)] = payload
            data = builder.EndVector(len(payload))
            schema.BufferStart(builder)
            schema.BufferAddData(builder, data)
            schema.BufferAddOffset(builder, self.offset)
            schema.BufferAddSize(builder, self.size)
            return schema.BufferEnd(builder)

    return AlignedBuffer


def _aligned(buffer: Any, cls: type) -> Any:
    aligned = cls()
    aligned.data, aligned.offset, aligned.size = buffer.data, buffer.offset, buffer.size
    return aligned


def _name_signature(model: Any, input_name: str, output_name: str) -> None:
    """Name the serving signature's input and output (adding the signature if the file has
    none): callers ask for `runner(input=...)["logits"]`, not for Keras' generated names."""
    schema = _schema()
    graph = model.subgraphs[0]
    inputs = [int(i) for i in (graph.inputs if graph.inputs is not None else [])]
    outputs = [int(i) for i in (graph.outputs if graph.outputs is not None else [])]
    if len(inputs) != 1 or len(outputs) != 1:
        raise RewriteError(
            f"the model has {len(inputs)} inputs and {len(outputs)} outputs; only a single "
            "input and output are renamed"
        )
    signatures = [s for s in (model.signatureDefs or []) if s.subgraphIndex == 0]
    keyed = [s for s in signatures if _text(s.signatureKey) == SIGNATURE_KEY]
    if signatures and not keyed:
        found = ", ".join(_text(s.signatureKey) for s in signatures)
        raise RewriteError(f"the model's signature is {found}, not {SIGNATURE_KEY}")
    if not keyed:
        signature = schema.SignatureDefT()
        signature.signatureKey, signature.subgraphIndex = SIGNATURE_KEY, 0
        model.signatureDefs = [*(model.signatureDefs or []), signature]
        keyed = [signature]
    signature = keyed[0]
    for attr, index, name in (
        ("inputs", inputs[0], input_name),
        ("outputs", outputs[0], output_name),
    ):
        entry = schema.TensorMapT()
        entry.name, entry.tensorIndex = name, index
        setattr(signature, attr, [entry])


def rewrite(
    content: bytes,
    entries: Mapping[str, bytes],
    *,
    input_name: str = INPUT_NAME,
    output_name: str = OUTPUT_NAME,
) -> bytes:
    """`content` with metadata `entries` added (an entry of the same name replaced) and the
    serving signature's input and output named `input_name` and `output_name`; every tensor,
    operator and weight byte is kept."""
    import flatbuffers

    schema = _schema()
    model = schema.ModelT.InitFromObj(_root(content))
    if not model.subgraphs:
        raise RewriteError("the .tflite file has no subgraph")
    if any(b.offset or b.size for b in model.buffers or []):
        raise RewriteError("its weights are stored after the flatbuffer (a >2 GB model)")
    cls = _aligned_buffer_class()
    buffers = [_aligned(b, cls) for b in model.buffers or []]
    existing = {_text(m.name): m for m in model.metadata or []}
    metadata = list(model.metadata or [])
    for name, data in entries.items():
        buffer = cls()
        buffer.data = np.frombuffer(bytes(data), dtype=np.uint8)
        if name in existing:  # rewriting twice replaces, never duplicates
            buffers[existing[name].buffer] = buffer
            continue
        entry = schema.MetadataT()
        entry.name, entry.buffer = name, len(buffers)
        buffers.append(buffer)
        metadata.append(entry)
    model.buffers, model.metadata = buffers, metadata
    _name_signature(model, input_name, output_name)
    builder = flatbuffers.Builder(len(content) + 4096)
    builder.Finish(model.Pack(builder), file_identifier=_IDENTIFIER)
    return bytes(builder.Output())
