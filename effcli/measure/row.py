"""The measured row: what effdl reports about one exported .tflite, built in one place for
`effdl run` (each variant's export) and `effdl measure` (files users bring).

Every number comes from the file itself: its bytes, its flatbuffer (weights, sparsity, unique
values, MACs, activation memory), and the LiteRT interpreter running it (latency; accuracy and the
per-sample predictions when there is a test split).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from effcli._atomic import replacing, write_json
from effcli.measure.accuracy import keras_accuracy
from effcli.measure.flatbuffer import ModelStats, model_stats
from effcli.measure.footprint import gzip_bytes, tflite_bytes
from effcli.measure.latency import latency_metrics, throughput_metrics
from effcli.measure.litert import LiteRTModel
from effcli.recipe.schema import MeasureSpec
from effcli.results.rundir import ArtifactDir, RunDir


@dataclass(frozen=True)
class TestSet:
    """The inputs and labels quality is reported on (a run's test split)."""

    x: np.ndarray
    y: np.ndarray


@dataclass
class Measurement:
    """The row columns measured from one file, the flatbuffer statistics behind them, and the
    predicted class of every test sample (None without a test set)."""

    metrics: dict[str, Any]
    stats: ModelStats
    predictions: np.ndarray | None = None


def latency_sample(runtime: LiteRTModel, test: TestSet | None) -> np.ndarray:
    """The input timed: the first test sample, else a fixed input of the model's shape (latency
    does not depend on the values)."""
    if test is not None:
        return test.x[0]
    shape = [int(d) for d in runtime.input_detail["shape"][1:]]
    return np.random.default_rng(0).random(shape, dtype=np.float32)


def measure_tflite(
    path: Path,
    test: TestSet | None = None,
    *,
    keras_model: Any = None,
    threads: int = 1,
    runtime: LiteRTModel | None = None,
    stats: ModelStats | None = None,
    settings: MeasureSpec | None = None,
) -> Measurement:
    """Footprint, latency and (with `test`) accuracy of the .tflite at `path`; `accuracy` of
    the Keras model it was converted from, when given. `runtime`/`stats` reuse what a caller
    already loaded; `settings` (a recipe's `measure:`) add thread counts and throughput."""
    path = Path(path)
    runtime = runtime or LiteRTModel(path, num_threads=threads)
    stats = stats or model_stats(path.read_bytes())
    settings = settings or MeasureSpec()
    sample = latency_sample(runtime, test)
    metrics: dict[str, Any] = {
        "tflite_bytes": tflite_bytes(path),
        "gzip_bytes": gzip_bytes(path),
        **latency_metrics(runtime, sample, settings),
    }
    predictions = None
    if test is not None:
        predictions = np.argmax(runtime.predict(test.x), axis=-1).astype(np.int32)
        metrics = {"tflite_accuracy": float(np.mean(predictions == test.y)), **metrics}
    metrics.update(throughput_metrics(runtime, sample, settings))
    metrics.update(stats.metrics())
    if keras_model is not None and test is not None:
        metrics["accuracy"] = keras_accuracy(keras_model, test.x, test.y)
    return Measurement(metrics=metrics, stats=stats, predictions=predictions)


def save_labels(run: RunDir, labels: np.ndarray) -> None:
    """The test labels, once per run directory (each row's predictions.npy indexes them)."""
    with replacing(run.labels, ".npy") as tmp:
        np.save(tmp, np.asarray(labels, dtype=np.int32))


def save_measurement(folder: ArtifactDir, measurement: Measurement, record: dict[str, Any]) -> None:
    """layers.json (the per-layer table), metrics.json (`record`: the row's identity and
    numbers) and predictions.npy into an artifact folder."""
    write_json(folder.layers, measurement.stats.to_json())
    write_json(folder.metrics, record)
    if measurement.predictions is not None:
        with replacing(folder.predictions, ".npy") as tmp:
            np.save(tmp, measurement.predictions)
