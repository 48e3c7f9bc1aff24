"""Run an exported .tflite with the LiteRT interpreter (no TensorFlow needed).

`tf.lite.Interpreter` is deprecated; `ai_edge_litert` is its replacement and gave identical
accuracy here. Quantized inputs/outputs are (de)quantized with the tensors' own scale/zero point.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from effcli.errors import EffdlError


class InvalidModel(EffdlError):
    """The file is not a model LiteRT can load."""

    exit_code = 2


@dataclass(frozen=True)
class Timing:
    """One latency measurement: percentiles of single invokes, and how far the repeats agree.

    `cv` is the coefficient of variation (standard deviation / mean) of the repeats' p50s, NaN
    with one repeat. It answers "would timing again give the same p50?": the per-invoke spread
    would not (a few slow invokes out of 200 widen it without moving a median). It sees noise
    within this measurement only, not a machine that is busier at another time.
    """

    p50_ms: float
    p95_ms: float
    cv: float


class LiteRTModel:
    """A loaded .tflite model with float-in/float-out helpers."""

    def __init__(self, model: Path | bytes, num_threads: int = 1) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self.num_threads = num_threads
        self._content = model if isinstance(model, bytes) else Path(model).read_bytes()
        try:
            self.interpreter = Interpreter(model_content=self._content, num_threads=num_threads)
            self.interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise InvalidModel(
                f"not a valid .tflite model: {' '.join(str(exc).split())[:200]}"
            ) from None
        self._batch = 1

    @property
    def input_detail(self) -> dict[str, Any]:
        return self.interpreter.get_input_details()[0]

    @property
    def output_detail(self) -> dict[str, Any]:
        return self.interpreter.get_output_details()[0]

    def _quantize_input(self, x: np.ndarray) -> np.ndarray:
        detail = self.input_detail
        dtype = detail["dtype"]
        if np.issubdtype(dtype, np.integer):
            scale, zero_point = detail["quantization"]
            info = np.iinfo(dtype)
            x = np.clip(np.round(x / scale + zero_point), info.min, info.max)
        return x.astype(dtype)

    def _dequantize_output(self, y: np.ndarray) -> np.ndarray:
        detail = self.output_detail
        if np.issubdtype(detail["dtype"], np.integer):
            scale, zero_point = detail["quantization"]
            return (y.astype(np.float32) - zero_point) * scale
        return y.astype(np.float32)

    def with_threads(self, num_threads: int) -> LiteRTModel:
        """The same model in a new interpreter with `num_threads` threads."""
        return LiteRTModel(self._content, num_threads=num_threads)

    def _set_batch(self, batch: int) -> None:
        if batch != self._batch:
            shape = list(self.input_detail["shape"])
            shape[0] = batch
            self.interpreter.resize_tensor_input(self.input_detail["index"], shape)
            self.interpreter.allocate_tensors()
            self._batch = batch

    def predict(self, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """Float outputs for float inputs, in chunks (per sample if the model cannot resize)."""
        outputs = []
        for start in range(0, len(x), batch_size):
            chunk = x[start : start + batch_size]
            try:
                self._set_batch(len(chunk))
                outputs.append(self._invoke(chunk))
            except (ValueError, RuntimeError):
                self._set_batch(1)
                outputs.extend(self._invoke(sample[np.newaxis]) for sample in chunk)
        return np.concatenate(outputs) if outputs else np.empty((0,))

    def _invoke(self, batch: np.ndarray) -> np.ndarray:
        self.interpreter.set_tensor(self.input_detail["index"], self._quantize_input(batch))
        self.interpreter.invoke()
        return self._dequantize_output(self.interpreter.get_tensor(self.output_detail["index"]))

    def accuracy(self, x: np.ndarray, y: np.ndarray) -> float:
        """Top-1 accuracy on the given split."""
        return float(np.mean(np.argmax(self.predict(x), axis=-1) == y))

    def timing(
        self, sample: np.ndarray, warmup: int = 20, runs: int = 200, repeats: int = 3
    ) -> Timing:
        """Milliseconds of one single-sample invoke, after warm-up (see `Timing`).

        Each percentile is the median over `repeats` independent timing runs: a sub-millisecond
        model timed once is at the mercy of one scheduler hiccup (seen here: 0.1 ms read as 0.5).
        """
        self._set_batch(1)
        self.interpreter.set_tensor(
            self.input_detail["index"], self._quantize_input(sample[np.newaxis])
        )
        p50s, p95s = [], []
        for _ in range(repeats):
            for _ in range(warmup):
                self.interpreter.invoke()
            times = np.empty(runs)
            for i in range(runs):
                start = time.perf_counter()
                self.interpreter.invoke()
                times[i] = time.perf_counter() - start
            p50s.append(np.percentile(times, 50))
            p95s.append(np.percentile(times, 95))
        cv = float(np.std(p50s, ddof=1) / np.mean(p50s)) if repeats > 1 else math.nan
        return Timing(float(np.median(p50s) * 1e3), float(np.median(p95s) * 1e3), cv)

    def latency_ms(
        self, sample: np.ndarray, warmup: int = 20, runs: int = 200, repeats: int = 3
    ) -> tuple[float, float]:
        """(p50, p95) milliseconds of one single-sample invoke (see `timing`)."""
        measured = self.timing(sample, warmup, runs, repeats)
        return measured.p50_ms, measured.p95_ms

    def throughput_per_s(
        self, sample: np.ndarray, batch: int, seconds: float = 0.1, repeats: int = 3
    ) -> float | None:
        """Samples per second invoking batches of `batch` copies of `sample` back to back: the
        median over `repeats` runs of at least `seconds` (and 3 invokes) each, after 2 warm-up
        invokes. None when the model cannot be resized to that batch (a fixed batch dimension)."""
        inputs = self._quantize_input(np.repeat(sample[np.newaxis], batch, axis=0))
        try:
            self._set_batch(batch)
            self.interpreter.set_tensor(self.input_detail["index"], inputs)
            for _ in range(2):
                self.interpreter.invoke()
            rates = []
            for _ in range(repeats):
                count, start = 0, time.perf_counter()
                while count < 3 or time.perf_counter() - start < seconds:
                    self.interpreter.invoke()
                    count += 1
                rates.append(batch * count / (time.perf_counter() - start))
        except (ValueError, RuntimeError):
            return None
        finally:
            self._reset_batch()
        return float(np.median(rates))

    def _reset_batch(self) -> None:
        """Back to batch 1, even after a resize that failed halfway (shapes already changed)."""
        shape = list(self.input_detail["shape"])
        if shape[0] != 1 or self._batch != 1:
            shape[0] = 1
            self.interpreter.resize_tensor_input(self.input_detail["index"], shape)
            self.interpreter.allocate_tensors()
        self._batch = 1
