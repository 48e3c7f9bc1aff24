"""Shrink: TFLite post-training full-integer (int8) quantization.

Calibration uses a representative set drawn from the training split (never val or test), and the
model's input and output are int8 too, as on integer-only accelerators.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import Field

from effcli.artifacts import Artifact, KerasModel, TFLiteModel
from effcli.errors import StageFailed
from effcli.stages.base import Stage, StageContext, StageParams, StageResult, stages


class QuantizeParams(StageParams):
    mode: Literal["int8"] = "int8"
    calibration_samples: int = Field(
        256, ge=1, le=100_000, description="training samples used to calibrate ranges, >= 1"
    )


def representative_samples(x_train: np.ndarray, count: int, seed: int) -> np.ndarray:
    """A seeded random subset of the training split for range calibration."""
    rng = np.random.default_rng(seed)
    pick = rng.permutation(len(x_train))[: min(count, len(x_train))]
    return x_train[pick].astype(np.float32)


@stages.register("quantize")
class QuantizeStage(Stage):
    """Full-integer post-training quantization to a .tflite flatbuffer."""

    Params = QuantizeParams
    produces = "tflite"

    def run(self, parent: Artifact | None, ctx: StageContext) -> StageResult:
        from effcli._tf import tf

        assert isinstance(parent, KerasModel)
        p: QuantizeParams = self.params  # type: ignore[assignment]
        samples = representative_samples(ctx.data.x_train, p.calibration_samples, ctx.seed)

        def representative() -> Any:
            for sample in samples:
                yield [sample[np.newaxis]]

        converter = tf.lite.TFLiteConverter.from_keras_model(parent.model)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
        try:
            content = converter.convert()
        except Exception as exc:  # the converter's reason, on one line
            reason = " ".join(str(exc).split())[:300]
            raise StageFailed(f"int8 conversion failed: {reason}") from None
        return StageResult(
            artifact=TFLiteModel(content, source=parent),
            info={"mode": p.mode, "calibration_samples": len(samples)},
        )
