"""Models users bring to `effdl measure`: what each file is, its .tflite, its row.

A `.tflite` file is checked and measured without TensorFlow. `.keras`/`.h5` files and SavedModel
folders are converted to float32 TFLite first (that path imports TensorFlow). With an output
folder, each model gets the runs' artifact folder and results row (pipeline `measure`), so
`effdl frontier DIR results/` places them on one frontier.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from effcli._native import native_quiet
from effcli.errors import UsageError
from effcli.measure.flatbuffer import InvalidFlatbuffer, ModelStats, model_stats
from effcli.measure.litert import InvalidModel, LiteRTModel
from effcli.measure.row import (
    Measurement,
    TestSet,
    measure_tflite,
    save_labels,
    save_measurement,
)
from effcli.recipe.schema import MeasureSpec
from effcli.results import ResultsStore, RunDir

TFLITE_SUFFIXES = (".tflite",)
KERAS_SUFFIXES = (".keras", ".h5", ".hdf5")


@dataclass
class Candidate:
    """One input file and the .tflite measured for it."""

    source: Path
    kind: str  # tflite | keras | saved_model
    tflite: Path | None = None
    keras_model: Any = None  # the loaded Keras model, when converted (for Keras-side accuracy)
    stats: ModelStats | None = None
    runtime: LiteRTModel | None = None
    row: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """The row's variant name: the file name without its suffix (a folder's name)."""
        return self.source.name if self.source.is_dir() else self.source.stem


def file_kind(path: Path) -> str:
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


def candidates(files: list[Path]) -> list[Candidate]:
    """One candidate per distinct file; two files that would share a row name are refused."""
    found: dict[str, Candidate] = {}
    for path in files:
        candidate = Candidate(source=path, kind=file_kind(path))
        earlier = found.get(candidate.name)
        if earlier is not None and earlier.source != path:
            raise UsageError(
                f"{earlier.source} and {path} would both be named '{candidate.name}' (rows are "
                "keyed by file name); rename one"
            )
        found[candidate.name] = candidate
    return list(found.values())


def check_tflite(candidate: Candidate, threads: int) -> None:
    """Parse the flatbuffer and load it in LiteRT; errors name the file (exit 2)."""
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


def convert(candidate: Candidate, folder: Path) -> None:
    """Keras file or SavedModel -> float32 model.tflite in `folder` (imports TensorFlow)."""
    from effcli.artifacts import KerasModel
    from effcli.results.rundir import TFLITE_FILE

    try:
        with native_quiet():  # the converter logs on fd 2
            if candidate.kind == "keras":
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
    candidate.tflite = folder / TFLITE_FILE
    candidate.tflite.write_bytes(content)


def check_shape(candidate: Candidate, test: TestSet) -> None:
    """The model takes the data's input shape, or a UsageError saying both."""
    assert candidate.runtime is not None
    shape = [int(d) for d in candidate.runtime.input_detail["shape"][1:]]
    if shape != list(test.x.shape[1:]):
        raise UsageError(
            f"{candidate.source}: the model takes inputs of shape {tuple(shape)}, the data's "
            f"test split has {tuple(test.x.shape[1:])}; pass the data it was trained on"
        )


def measure_candidate(
    candidate: Candidate,
    test: TestSet | None,
    label: str,
    threads: int,
    settings: MeasureSpec | None = None,
) -> Measurement:
    """The candidate's row (pipeline `measure`), from the one row builder runs use too."""
    assert candidate.tflite is not None
    measured = measure_tflite(
        candidate.tflite,
        test,
        keras_model=candidate.keras_model,
        runtime=candidate.runtime,
        stats=candidate.stats,
        settings=settings,
    )
    candidate.row = {
        "variant": candidate.name,
        "pipeline": "measure",
        "status": "ok",
        "error": "",
        **measured.metrics,
        "file": str(candidate.source),
        "data": label,
        "threads": threads,
    }
    return measured


def write_candidate(
    out: RunDir, candidate: Candidate, measured: Measurement, test: TestSet | None
) -> None:
    """The results.csv row, and artifacts/<name>/ with the model, metrics, layers and (with a
    test set) predictions, whose labels go to the folder once."""
    assert candidate.tflite is not None
    folder = out.artifact(candidate.name)
    folder.path.mkdir(parents=True, exist_ok=True)
    if candidate.tflite.resolve() != folder.tflite.resolve():
        shutil.copyfile(candidate.tflite, folder.tflite)
    record = {k: v for k, v in candidate.row.items() if k not in ("status", "error")}
    save_measurement(folder, measured, record)
    if test is not None:
        save_labels(out, test.y)
    ResultsStore(out.results).append(candidate.row)
