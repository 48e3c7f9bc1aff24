"""`effdl measure FILE...`: the footprint (and, with --data, the accuracy) of existing models.

A `.tflite` file is measured as `effdl run` measures its exports, without TensorFlow: bytes,
gzip bytes, weights/sparsity/unique values/MACs/memory from the flatbuffer, LiteRT latency.
`.keras`/`.h5` files and SavedModel folders are converted to float32 TFLite first (that path
imports TensorFlow). `--out DIR` writes DIR/results.csv in the runs' schema (pipeline `measure`)
plus artifacts/<name>/, so `effdl frontier DIR results/` places them on one frontier and
`effdl report DIR` describes them.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import typer

from effcli._native import native_quiet
from effcli.cli._common import console, err_console, reports_errors
from effcli.errors import UsageError

TFLITE_SUFFIXES = (".tflite",)
KERAS_SUFFIXES = (".keras", ".h5", ".hdf5")


@dataclass
class Candidate:
    """One input file and the .tflite measured for it."""

    source: Path
    name: str
    tflite: Path | None = None
    keras_model: Any = None  # the loaded Keras model, when converted (for Keras-side accuracy)
    stats: Any = None
    runtime: Any = None
    row: dict[str, Any] = field(default_factory=dict)

    @property
    def converted(self) -> bool:
        return self.source.suffix.lower() not in TFLITE_SUFFIXES


@dataclass
class TestSplit:
    x: Any
    y: Any
    label: str  # what the data was, for the table title and the `data` column


def _kind(path: Path) -> str:
    """tflite | keras | saved_model, or a UsageError naming what is accepted."""
    if not path.exists():
        raise UsageError(f"{path}: no such file or directory")
    if path.is_dir():
        if (path / "saved_model.pb").is_file():
            return "saved_model"
        raise UsageError(f"{path}: a folder, but not a SavedModel (no saved_model.pb)")
    suffix = path.suffix.lower()
    if suffix in TFLITE_SUFFIXES:
        return "tflite"
    if suffix in KERAS_SUFFIXES:
        return "keras"
    raise UsageError(
        f"{path}: not a model file effdl can measure; give a .tflite, .keras or .h5 file or a "
        "SavedModel folder"
    )


def _name(path: Path) -> str:
    return path.name if path.is_dir() else path.stem


def _check_tflite(candidate: Candidate, threads: int) -> None:
    """Parse the flatbuffer and load it in LiteRT; errors name the file (exit 2)."""
    from effcli.measure.flatbuffer import InvalidFlatbuffer, model_stats
    from effcli.measure.litert import InvalidModel, LiteRTModel

    assert candidate.tflite is not None
    content = candidate.tflite.read_bytes()
    try:
        candidate.stats = model_stats(content)
    except InvalidFlatbuffer as exc:
        raise InvalidFlatbuffer(f"{candidate.source}: {exc}") from None
    except Exception as exc:  # a TFL3 file whose tables do not add up
        raise InvalidFlatbuffer(
            f"{candidate.source}: corrupt .tflite flatbuffer ({type(exc).__name__}: {exc})"
        ) from None
    try:
        with native_quiet():  # LiteRT logs its XNNPACK delegate on fd 2
            candidate.runtime = LiteRTModel(content, num_threads=threads)
    except InvalidModel as exc:
        raise InvalidModel(f"{candidate.source}: {exc}") from None


def _convert(candidate: Candidate, kind: str, folder: Path) -> None:
    """Keras file or SavedModel -> float32 .tflite in `folder` (imports TensorFlow)."""
    from effcli.artifacts import KerasModel

    try:
        with native_quiet():  # the converter logs on fd 2
            if kind == "keras":
                from effcli._tf import keras

                candidate.keras_model = keras.models.load_model(candidate.source, compile=False)
                content = KerasModel(candidate.keras_model).to_tflite().content
            else:
                from effcli._tf import tf

                converter = tf.lite.TFLiteConverter.from_saved_model(str(candidate.source))
                content = converter.convert()
    except Exception as exc:
        text = " ".join(str(exc).split())[:300]
        raise UsageError(
            f"{candidate.source}: cannot convert it to TFLite ({type(exc).__name__}: {text})"
        ) from None
    folder.mkdir(parents=True, exist_ok=True)
    candidate.tflite = folder / "model.tflite"
    candidate.tflite.write_bytes(content)


def _split_pairs(text: str) -> list[str]:
    """Split `a=1,b=[1, 2],c=x` on the commas outside brackets."""
    parts, depth, current = [], 0, ""
    for char in text:
        depth += char in "[{("
        depth -= char in "]})"
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return [p.strip() for p in parts if p.strip()]


def parse_data_spec(text: str) -> tuple[dict[str, Any], int]:
    """`source=npz,path=x.npz,seed=1` -> (data spec, seed); dotted keys nest (`split.test=0.3`)."""
    import yaml

    spec: dict[str, Any] = {}
    for pair in _split_pairs(text):
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(
                f"--data {text}: expected a recipe .yaml, a .npz with x and y, or KEY=VALUE pairs "
                "such as source=digits or source=npz,path=data.npz"
            )
        try:
            parsed = yaml.safe_load(value) if value.strip() else ""
        except yaml.YAMLError:
            parsed = value
        target = spec
        *parents, last = key.strip().split(".")
        for parent in parents:
            target = target.setdefault(parent, {})
        target[last] = parsed
    seed = spec.pop("seed", 0)
    if not isinstance(seed, int):
        raise UsageError(f"--data {text}: seed must be a whole number (got {seed!r})")
    if "source" not in spec:
        raise UsageError(f"--data {text}: name the data source, e.g. source=digits")
    return spec, seed


def _pydantic_line(exc: Exception) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        first = errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        return f"{where}: {first.get('msg')}" if where else str(first.get("msg"))
    return str(exc)


def load_test_split(text: str) -> TestSplit:
    """The test split named by --data: a recipe's data block (its seed, paths relative to it), a
    .npz with arrays x and y (e.g. a run's test.npz, used whole), or KEY=VALUE pairs."""
    import numpy as np
    from pydantic import ValidationError

    from effcli.data.base import load_splits
    from effcli.registry import UnknownName

    path = Path(text).expanduser()
    if path.suffix.lower() in (".yaml", ".yml") and "=" not in text:
        if not path.is_file():
            raise UsageError(f"--data {text}: no such recipe file")
        from effcli.plan import load_plan

        plan = load_plan(path)
        spec, seed, root = dict(plan.data_spec), plan.seed, path.resolve().parent
    elif path.suffix.lower() == ".npz" and "=" not in text:
        if not path.is_file():
            raise UsageError(f"--data {text}: no such file")
        with np.load(path, allow_pickle=False) as arrays:
            if "x" not in arrays or "y" not in arrays:
                raise UsageError(
                    f"--data {text}: the .npz needs arrays x and y (found "
                    f"{', '.join(arrays.files) or 'none'}); for other names use "
                    f"source=npz,path={text},x_key=...,y_key=..."
                )
            x, y = arrays["x"], arrays["y"]
        return TestSplit(x.astype(np.float32), y.astype(np.int64), f"{path} (whole file)")
    else:
        spec, seed = parse_data_spec(text)
        root = Path.cwd()
    source = str(spec["source"])
    try:
        splits = load_splits(spec, root, seed)
    except UnknownName as exc:
        raise UsageError(f"--data {text}: {exc}") from None
    except ValidationError as exc:
        raise UsageError(f"--data {text}: {_pydantic_line(exc)}") from None
    return TestSplit(splits.x_test, splits.y_test, f"{source} test split, seed {seed}")


def _check_shape(candidate: Candidate, split: TestSplit) -> None:
    shape = [int(d) for d in candidate.runtime.input_detail["shape"][1:]]
    if shape != list(split.x.shape[1:]):
        raise UsageError(
            f"{candidate.source}: the model takes inputs of shape {tuple(shape)}, the data's "
            f"test split has {tuple(split.x.shape[1:])}; pass the data it was trained on"
        )


def _measure(candidate: Candidate, split: TestSplit | None, threads: int) -> dict[str, Any]:
    import numpy as np

    from effcli.measure.accuracy import keras_accuracy
    from effcli.measure.footprint import gzip_bytes, tflite_bytes

    assert candidate.tflite is not None
    runtime = candidate.runtime
    if split is not None:
        sample = split.x[0]
    else:  # a fixed input of the model's shape: latency does not depend on the values
        shape = [int(d) for d in runtime.input_detail["shape"][1:]]
        sample = np.random.default_rng(0).random(shape, dtype=np.float32)
    p50, p95 = runtime.latency_ms(sample)
    row: dict[str, Any] = {
        "variant": candidate.name,
        "pipeline": "measure",
        "status": "ok",
        "error": "",
        "tflite_bytes": tflite_bytes(candidate.tflite),
        "gzip_bytes": gzip_bytes(candidate.tflite),
        "latency_ms_p50": p50,
        "latency_ms_p95": p95,
        **candidate.stats.metrics(),
    }
    if split is not None:
        row["tflite_accuracy"] = runtime.accuracy(split.x, split.y)
        if candidate.keras_model is not None:
            row["accuracy"] = keras_accuracy(candidate.keras_model, split.x, split.y)
    row["file"] = str(candidate.source)
    row["data"] = split.label if split is not None else ""
    row["threads"] = threads
    return row


def _write(out: Path, candidate: Candidate) -> None:
    """results.csv row, and artifacts/<name>/ with the measured model, metrics and layers."""
    from effcli.results import ResultsStore

    assert candidate.tflite is not None
    folder = out / "artifacts" / candidate.name
    folder.mkdir(parents=True, exist_ok=True)
    if candidate.tflite.resolve() != (folder / "model.tflite").resolve():
        shutil.copyfile(candidate.tflite, folder / "model.tflite")
    (folder / "layers.json").write_text(
        json.dumps(candidate.stats.to_json(), indent=2, sort_keys=True, default=str) + "\n"
    )
    metrics = {k: v for k, v in candidate.row.items() if k not in ("status", "error")}
    (folder / "metrics.json").write_text(
        json.dumps(metrics, indent=2, sort_keys=True, default=str) + "\n"
    )
    ResultsStore(out / "results.csv").append(candidate.row)


@reports_errors
def measure(
    files: list[Path] = typer.Argument(
        ..., help=".tflite files (or .keras/.h5 files, SavedModel folders: converted first)."
    ),
    data: str | None = typer.Option(
        None,
        "--data",
        "-d",
        help="Also measure accuracy on a test split: a recipe .yaml (its data block and seed), a "
        ".npz with x and y (e.g. a run's test.npz), or source=digits / source=npz,path=x.npz.",
    ),
    out: Path | None = typer.Option(
        None, "--out", "-o", help="Write DIR/results.csv (same schema as runs) and artifacts/."
    ),
    threads: int = typer.Option(1, "--threads", min=1, help="LiteRT threads for latency."),
) -> None:
    """Footprint of existing models: bytes, gzip bytes, params, sparsity, MACs, memory, latency,
    and accuracy with --data."""
    from effcli.frontier.table import frontier_table

    if out is not None and (out / "run.json").is_file():
        raise UsageError(
            f"--out {out}: that is the run directory of 'effdl run'; write measurements to a "
            "folder of their own (effdl frontier compares several folders)"
        )
    kinds = {path: _kind(path) for path in files}
    candidates = [Candidate(source=path, name=_name(path)) for path in files]
    seen: dict[str, Path] = {}
    for candidate in candidates:
        if candidate.name in seen and seen[candidate.name] != candidate.source:
            raise UsageError(
                f"{seen[candidate.name]} and {candidate.source} would both be named "
                f"'{candidate.name}' (rows are keyed by file name); rename one"
            )
        seen[candidate.name] = candidate.source
    candidates = list({c.name: c for c in candidates}.values())

    # Every .tflite is checked before any slow step, so a bad file fails in a second.
    for candidate in candidates:
        if kinds[candidate.source] == "tflite":
            candidate.tflite = candidate.source
            _check_tflite(candidate, threads)
    split = load_test_split(data) if data else None
    with tempfile.TemporaryDirectory(prefix="effdl-measure-") as scratch:
        for candidate in candidates:
            if candidate.tflite is None:
                base = out / "artifacts" if out else Path(scratch)
                _convert(candidate, kinds[candidate.source], base / candidate.name)
                _check_tflite(candidate, threads)
        if split is not None:
            for candidate in candidates:
                _check_shape(candidate, split)
        for candidate in candidates:
            err_console.print(f"measuring {candidate.source}")
            candidate.row = _measure(candidate, split, threads)
            if out is not None:
                _write(out, candidate)

    import pandas as pd

    rows = pd.DataFrame([c.row for c in candidates])
    columns = [
        c
        for c in (
            "variant",
            "tflite_accuracy",
            "accuracy",
            "tflite_bytes",
            "gzip_bytes",
            "latency_ms_p50",
            "latency_ms_p95",
            "params",
            "nonzero_params",
            "kernel_sparsity",
            "unique_weights",
            "macs",
            "peak_memory_bytes",
        )
        if c in rows.columns
    ]
    on = f" on {split.label}" if split is not None else " (no --data: no accuracy)"
    title = f"measured {len(rows)} model(s){on}; latency: {threads} thread(s)"
    console.print(frontier_table(rows, columns, title, set(columns) - {"variant"}))
    if out is not None:
        console.print(f"wrote {out / 'results.csv'} (compare: effdl frontier {out} results/)")
