"""Run an exported .tflite with the LiteRT interpreter (no TensorFlow needed).

`tf.lite.Interpreter` is deprecated; `ai_edge_litert` is its replacement and gave identical
accuracy here. Quantized inputs/outputs are (de)quantized with the tensors' own scale/zero point.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from effcli.errors import EffdlError


class InvalidModel(EffdlError):
    """The file is not a model LiteRT can load."""

    exit_code = 2


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

    def latency_ms(
        self, sample: np.ndarray, warmup: int = 20, runs: int = 200, repeats: int = 3
    ) -> tuple[float, float]:
        """(p50, p95) milliseconds of one single-sample invoke, after warm-up.

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
        return float(np.median(p50s) * 1e3), float(np.median(p95s) * 1e3)
