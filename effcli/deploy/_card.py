"""labels.txt and model_card.md: what a deployer needs next to a model.tflite, rendered from
facts already gathered (no TensorFlow, no interpreter): the class names in output order, how
inputs are prepared (the source's scaling, the recipe's normalization with its exact constants,
int8 quantization), the metrics and footprint measured on this file, the pipeline that made it,
and a Python snippet that calls it.
"""

from __future__ import annotations

import json
import keyword
import math
import re
from dataclasses import dataclass, field
from typing import Any

from effcli.deploy._flatbuffer import ModelIO
from effcli.deploy._preprocessing import (
    LABELS_ENTRY,
    PREPROCESSING_ENTRY,
    int_range,
    quantize_formula,
)

_Z95 = 1.959963984540054  # the standard normal's 97.5 % quantile
SNIPPET_HEADING = "## How to call it"
_NOT_EMBEDDED = "Not embedded: "


@dataclass(frozen=True)
class Interval:
    low: float
    high: float


def wilson(correct: int, n: int, z: float = _Z95) -> Interval:
    """The Wilson score interval of a proportion correct/n (95 % by default): unlike the
    normal approximation it stays inside [0, 1] and is honest near 0 and 1."""
    if n <= 0:
        return Interval(math.nan, math.nan)
    p = correct / n
    denominator = 1 + z * z / n
    center = (p + z * z / (2 * n)) / denominator
    half = z / denominator * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return Interval(max(0.0, center - half), min(1.0, center + half))


@dataclass(frozen=True)
class SampleAccuracy:
    """This one model's predictions on the test split: how many were right of how many."""

    correct: int
    n: int

    @property
    def interval(self) -> Interval:
        return wilson(self.correct, self.n)


@dataclass(frozen=True)
class ReplicateAccuracy:
    """tflite_accuracy over a variant's replicates: mean, interval and how it was computed."""

    mean: float
    low: float
    high: float
    n_replicates: int
    method: str
    values: tuple[float, ...] = ()


@dataclass
class CardFacts:
    """Everything a model card says, gathered by the caller (effcli.deploy._artifact)."""

    variant: str
    metrics: dict[str, Any]
    labels: list[str]
    preprocessing: dict[str, Any]
    io: ModelIO | None = None
    label: str = ""
    run: str = ""
    replicate: int = 0
    seeds: list[int] = field(default_factory=list)  # the training seeds of the pipeline's nodes
    nodes: list[dict[str, Any]] = field(default_factory=list)
    split: dict[str, Any] | None = None  # split.json; None for a model effdl measure was given
    data_note: str = ""  # what the test data was when there is no split.json
    metadata_note: str = ""  # why the metadata is not embedded ("" when it is)
    test: SampleAccuracy | None = None
    replicates: ReplicateAccuracy | None = None


def _pct(value: Any) -> str:
    try:
        return f"{100 * float(value):.2f} %"
    except (TypeError, ValueError):
        return "n/a"


def _number(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:.4g}"
    try:
        return f"{int(float(value)):,}"
    except (TypeError, ValueError):
        return str(value)


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(", ", ": "), sort_keys=False, default=str)


def _flatten(value: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(value, dict) and value:
        pairs: list[tuple[str, Any]] = []
        for key, inner in value.items():
            pairs.extend(_flatten(inner, f"{prefix}{key}."))
        return pairs
    return [(prefix[:-1], value)]


def compact_arguments(resolved: dict[str, Any]) -> str:
    """A node's resolved arguments on one line: `model.family=cnn, train.epochs=1, ...`."""
    parts = []
    for key, value in _flatten(resolved):
        text = value if isinstance(value, str) else json.dumps(value, default=str)
        parts.append(f"{key}={text}")
    return ", ".join(parts)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _shape(shape: tuple[int, ...] | list[int]) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def _title(facts: CardFacts) -> str:
    return facts.label or facts.variant


def _overview(facts: CardFacts) -> list[str]:
    made = f"effdl run `{facts.run}`" if facts.run else "effdl"
    if facts.split is None:
        made = f"effdl measure (from `{facts.metrics.get('file', 'a file')}`)"
    lines = [f"# Model card: {_title(facts)}", ""]
    who = f"`model.tflite`, made by {made}: variant `{facts.variant}`"
    if facts.label:
        who += f" (`{facts.label}`)"
    if facts.metrics.get("alternative"):
        who += f", alternative `{facts.metrics['alternative']}`"
    if facts.split is not None:
        seeds = ", ".join(str(s) for s in facts.seeds) or "n/a"
        who += f", replicate {facts.replicate}, training seed {seeds}"
        if "seed" in facts.split:
            who += f" (split seed {facts.split['seed']})"
    lines += [who + ".", ""]
    lines += [
        f"Files: `model.tflite`, `labels.txt` ({len(facts.labels)} classes, line i = output i), "
        "this card; `recipe.yaml`, `nodes.json`, `metrics.json`, `layers.json` say how it was "
        "made and measured.",
        "",
    ]
    return lines


def _data(facts: CardFacts) -> list[str]:
    lines = ["## Data", ""]
    split = facts.split
    if split is None:
        lines.append(f"- test data: {facts.data_note or 'none given (no accuracy)'}")
        if facts.preprocessing.get("source"):
            lines.append("- preprocessing and labels: as the file's effdl metadata records them")
        else:
            lines.append(
                "- effdl did not train this model: its input preprocessing is not known here; "
                "labels.txt holds class indices"
            )
        return [*lines, ""]
    if split.get("data") is not None:
        lines.append(f"- data spec: `{_compact(split['data'])}`")
    sizes = split.get("sizes") or {}
    if sizes:
        shown = ", ".join(f"{k} {_number(v)}" for k, v in sizes.items())
        extra = []
        if split.get("fractions"):
            extra.append(f"fractions {_compact(split['fractions'])}")
        if split.get("max_samples"):
            extra.append(f"max_samples {split['max_samples']}")
        if "seed" in split:
            extra.append(f"seed {split['seed']}")
        tail = f" ({'; '.join(extra)})" if extra else ""
        lines.append(f"- split sizes: {shown} samples{tail}")
    lines.append(f"- classes: {len(facts.labels)}, in output order: {', '.join(facts.labels)}")
    return [*lines, ""]


def _normalization_lines(facts: CardFacts) -> list[str]:
    split = facts.split or {}
    lines: list[str] = []
    source = facts.preprocessing.get("source")
    scaling = facts.preprocessing.get("source_scaling")
    if source:
        lines.append(f"- source scaling (`{source}`): {scaling or 'as the source prepares them'}")
    if split.get("features"):
        stats = split.get("standardization") or {}
        categories = split.get("categories") or {}
        lines.append("- features, in input order:")
        for position, feature in enumerate(split["features"]):
            if feature in stats:
                s = stats[feature]
                how = f"(value - {s['mean']!r}) / {s['std']!r}"
            else:
                column, _, value = str(feature).partition("=")
                how = f"1.0 if {column} == {value!r} else 0.0" if column in categories else ""
            lines.append(f"  {position}. `{feature}` {how}".rstrip())
    norm = facts.preprocessing.get("normalize")
    if norm:
        raw = split.get("normalize") or {}
        stats_text = ", ".join(
            f"{k} = {raw[k]!r}" for k in ("mean", "std", "min", "max") if k in raw
        )
        range_text = f", range {list(raw['range'])}" if norm["mode"] == "scale" else ""
        lines.append(
            f"- normalization (`{norm['mode']}`, per {norm['per']}{range_text}, statistics of "
            f"the training split: {stats_text}): {norm['formula']}, with"
        )
        lines.append(f"  offset = `{norm['offset']!r}`, divisor = `{norm['divisor']!r}`")
    elif facts.split is not None:
        lines.append("- normalization: none beyond the source scaling (the recipe sets none)")
    return lines


def _input(facts: CardFacts) -> list[str]:
    lines = ["## Input and output", ""]
    io = facts.io
    lines += _normalization_lines(facts)
    if io is None:
        return [*lines, "- the model's tensors could not be read", ""]
    call = f"signature `{io.signature}`" if io.signature else "no signature (call by tensor index)"
    lines.append(
        f"- input `{io.input.name}` ({call}): shape {list(io.input.shape)}, dtype "
        f"{io.input.dtype} (batch first)"
    )
    if io.input.quantized:
        lines.append(
            f"- {io.input.dtype} input: quantize the normalized float x with "
            f"`{quantize_formula(io.input)}`, scale = `{io.input.scale!r}`, "
            f"zero_point = `{io.input.zero_point}`"
        )
    lines.append(
        f"- output `{io.output.name}`: shape {list(io.output.shape)}, dtype {io.output.dtype}: "
        "one score (logit) per class; argmax = the line of labels.txt"
    )
    if io.output.quantized:
        lines.append(
            f"- {io.output.dtype} output: dequantize with `y = (q - zero_point) * scale`, "
            f"scale = `{io.output.scale!r}`, zero_point = `{io.output.zero_point}` (argmax is "
            "the same either way)"
        )
    return [*lines, ""]


def _metrics(facts: CardFacts) -> list[str]:
    lines = ["## Metrics", ""]
    m = facts.metrics
    if facts.test is not None:
        ci = facts.test.interval
        lines.append(
            f"- `tflite_accuracy` (this file, LiteRT): {_pct(facts.test.correct / facts.test.n)} "
            f"({facts.test.correct} of {facts.test.n} test samples), 95 % Wilson interval over "
            f"test samples [{_pct(ci.low)}, {_pct(ci.high)}]: the uncertainty of this one model "
            "on a test set of this size, not across training runs (replicates)"
        )
    elif "tflite_accuracy" in m:
        lines.append(f"- `tflite_accuracy` (this file, LiteRT): {_pct(m['tflite_accuracy'])}")
    else:
        lines.append("- no test data: no accuracy")
    if facts.replicates is not None:
        r = facts.replicates
        values = ", ".join(_pct(v) for v in r.values)
        lines.append(
            f"- across {r.n_replicates} replicates of this variant (each trained with its own "
            f"seed; this file is replicate {facts.replicate}): mean {_pct(r.mean)}, 95 % "
            f"interval [{_pct(r.low)}, {_pct(r.high)}] by {r.method}"
            + (f"; replicates: {values}" if values else "")
        )
    if "accuracy" in m:
        lines.append(f"- Keras `accuracy` (the model before conversion): {_pct(m['accuracy'])}")
    return [*lines, ""]


FOOTPRINT = (
    ("tflite_bytes", "bytes"),
    ("gzip_bytes", "gzip bytes"),
    ("params", "params"),
    ("nonzero_params", "nonzero params"),
    ("latency_ms_p50", "latency p50 (ms)"),
    ("latency_ms_p95", "latency p95 (ms)"),
    ("macs", "MACs"),
    ("peak_memory_bytes", "peak memory (bytes)"),
)


def _footprint(facts: CardFacts) -> list[str]:
    lines = [
        "## Footprint",
        "",
        "Measured on this very file (latency: LiteRT, one thread, batch 1, on the machine that "
        "ran effdl; peak memory: activation bytes alive at once).",
        "",
        "| " + " | ".join(title for _, title in FOOTPRINT) + " |",
        "|" + "---|" * len(FOOTPRINT),
    ]
    lines.append("| " + " | ".join(_number(facts.metrics.get(k)) for k, _ in FOOTPRINT) + " |")
    return [*lines, ""]


def _pipeline(facts: CardFacts) -> list[str]:
    lines = ["## Pipeline", ""]
    if not facts.nodes:
        lines.append(f"- `{facts.metrics.get('pipeline', 'measure')}`: no effdl pipeline")
        return [*lines, ""]
    lines += [
        f"`{facts.metrics.get('pipeline', '')}`, node by node (key: the cache entry's id):",
        "",
        "| # | stage | label | key | arguments |",
        "|---|---|---|---|---|",
    ]
    for i, node in enumerate(facts.nodes, 1):
        args = compact_arguments(node.get("resolved") or {})
        key = str(node.get("key", ""))[:12]
        lines.append(
            f"| {i} | {_cell(str(node.get('stage', '')))} | {_cell(str(node.get('label', '')))} "
            f"| `{key}` | {_cell(args)} |"
        )
    return [*lines, ""]


def _metadata(facts: CardFacts) -> list[str]:
    lines = ["## TFLite metadata", ""]
    if facts.metadata_note:
        lines.append(f"{_NOT_EMBEDDED}{facts.metadata_note}")
    else:
        io = facts.io
        names = f"input `{io.input.name}`, output `{io.output.name}`" if io else ""
        lines.append(
            f"Embedded in model.tflite: metadata `{LABELS_ENTRY}` (the text of labels.txt) and "
            f"`{PREPROCESSING_ENTRY}` (JSON: the source, normalization constants, input and "
            f"output shape, dtype and quantization); signature `{io.signature if io else ''}` "
            f"with {names}. Read them with `effcli.deploy.read_metadata`."
        )
    return [*lines, ""]


def _array(values: list[float]) -> str:
    return "np.array([" + ", ".join(repr(float(v)) for v in values) + "])"


def snippet(facts: CardFacts) -> str:
    """Python that loads model.tflite and labels.txt from the working directory and defines
    `predict(x) -> label` for one input as the data source prepares it."""
    io = facts.io
    norm = facts.preprocessing.get("normalize")
    code = ["import numpy as np", "from ai_edge_litert.interpreter import Interpreter", ""]
    if norm:
        code += [
            "# Normalization with the training split's statistics (split.json):",
            "# x = (x - OFFSET) / DIVISOR along the last axis.",
            f"OFFSET = {_array(norm['offset'])}",
            f"DIVISOR = {_array(norm['divisor'])}",
        ]
    if io is not None and io.input.quantized:
        code += [
            f"# {io.input.dtype} input: {quantize_formula(io.input)}",
            f"SCALE, ZERO_POINT = {io.input.scale!r}, {io.input.zero_point}",
        ]
    if io is not None and io.output.quantized:
        code += [
            f"# {io.output.dtype} output: y = (q - zero_point) * scale",
            f"OUT_SCALE, OUT_ZERO_POINT = {io.output.scale!r}, {io.output.zero_point}",
        ]
    code += [
        "",
        'labels = open("labels.txt", encoding="utf-8").read().splitlines()',
        'interpreter = Interpreter(model_path="model.tflite")',
    ]
    signature = io.signature if io is not None else None
    if signature:
        code.append(f'runner = interpreter.get_signature_runner("{signature}")')
    else:
        code += [
            "interpreter.allocate_tensors()",
            'input_index = interpreter.get_input_details()[0]["index"]',
            'output_index = interpreter.get_output_details()[0]["index"]',
        ]
    shape = _shape(io.input.shape[1:]) if io is not None else "of the model's input"
    source = facts.preprocessing.get("source")
    prepared = f"as the {source} source prepares it" if source else "prepared as in training"
    code += [
        "",
        "",
        "def predict(x: np.ndarray) -> str:",
        f'    """The label of one input x of shape {shape}, float32 {prepared}."""',
    ]
    if norm:
        code.append(
            "    x = ((np.asarray(x, dtype=np.float64) - OFFSET) / DIVISOR).astype(np.float32)"
        )
    else:
        code.append("    x = np.asarray(x, dtype=np.float32)")
    dtype = io.input.dtype if io is not None else "float32"
    if io is not None and io.input.quantized:
        low, high = int_range(dtype)
        code.append(
            f"    x = np.clip(np.round(x / SCALE + ZERO_POINT), {low}, {high}).astype(np.{dtype})"
        )
    elif dtype != "float32":
        code.append(f"    x = x.astype(np.{dtype})")
    if signature and io is not None:
        name = io.input.name
        call = f"{name}=x[np.newaxis]" if _keyword(name) else f"**{{{name!r}: x[np.newaxis]}}"
        code.append(f'    scores = runner({call})["{io.output.name}"][0]')
    else:
        code += [
            "    interpreter.set_tensor(input_index, x[np.newaxis])",
            "    interpreter.invoke()",
            "    scores = interpreter.get_tensor(output_index)[0]",
        ]
    if io is not None and io.output.quantized:
        code.append("    scores = (scores.astype(np.float32) - OUT_ZERO_POINT) * OUT_SCALE")
    code.append("    return labels[int(np.argmax(scores))]")
    return "\n".join(code) + "\n"


def _keyword(name: str) -> bool:
    """Whether `name` can be passed as `runner(name=...)`."""
    return name.isidentifier() and not keyword.iskeyword(name)


def _call(facts: CardFacts) -> list[str]:
    if facts.io is None:
        return [SNIPPET_HEADING, "", "No snippet: the model's tensors could not be read.", ""]
    return [
        SNIPPET_HEADING,
        "",
        "With `pip install ai-edge-litert`, in this folder:",
        "",
        "```python",
        snippet(facts).rstrip("\n"),
        "```",
        "",
    ]


def render_card(facts: CardFacts) -> str:
    """model_card.md."""
    sections = [
        _overview(facts),
        _data(facts),
        _input(facts),
        _metrics(facts),
        _footprint(facts),
        _pipeline(facts),
        _call(facts),
        _metadata(facts),
    ]
    return "\n".join(line for section in sections for line in section).rstrip("\n") + "\n"


def card_snippet(card: str) -> str:
    """The Python snippet of a model card (its `How to call it` code block)."""
    head = card.find(SNIPPET_HEADING)
    found = re.search(r"```python\n(.*?)```", card[head:], re.DOTALL) if head >= 0 else None
    if found is None:
        raise ValueError("the model card has no Python snippet")
    return found.group(1)


def metadata_note(card: str) -> str:
    """Why an earlier card says the metadata is not embedded ("" when it does not say)."""
    for line in card.splitlines():
        if line.startswith(_NOT_EMBEDDED):
            return line[len(_NOT_EMBEDDED) :].strip()
    return ""
