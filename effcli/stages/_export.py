"""Conversion to TFLite, optionally in TFLite's sparse encoding, kept only when it changed nothing.

`tf.lite.Optimize.EXPERIMENTAL_SPARSITY` stores a pruned kernel as its nonzero values and index
arrays, densified when the model is loaded, so pruning finally shrinks the raw file. It is kept
only when the sparse file is smaller, loads in LiteRT with its default (XNNPACK) delegate, and
gives exactly the dense file's outputs on the check samples; otherwise the dense file is kept and
the reason recorded. (Measured here: XNNPACK refuses a sparse int8 FULLY_CONNECTED kernel, "failed
to delegate FULLY_CONNECTED node", while sparse float32 kernels and int8 convolutions run with
bit-identical outputs.)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from effcli.errors import StageFailed
from effcli.measure.litert import InvalidModel, LiteRTModel


def one_line(exc: BaseException, limit: int = 300) -> str:
    return " ".join(str(exc).split())[:limit] or type(exc).__name__


def convert(converter: Any, what: str) -> bytes:
    """The converter's flatbuffer; its failure fails the node with the converter's reason."""
    try:
        return bytes(converter.convert())
    except Exception as exc:  # the converter's reason, on one line
        raise StageFailed(f"{what} conversion failed: {one_line(exc)}") from None


def export(
    make_converter: Callable[[], Any], what: str, *, sparse: bool, samples: np.ndarray
) -> tuple[bytes, dict[str, Any]]:
    """The dense flatbuffer, or with `sparse` the sparse one when it is smaller and gives the
    same outputs on `samples`; and what was decided, for the node's record."""
    from effcli._tf import tf

    dense = convert(make_converter(), what)
    if not sparse:
        return dense, {}
    converter = make_converter()
    converter.optimizations = [*converter.optimizations, tf.lite.Optimize.EXPERIMENTAL_SPARSITY]
    candidate = convert(converter, f"{what} (sparse format)")
    record: dict[str, Any] = {"dense_bytes": len(dense), "sparse_bytes": len(candidate)}
    reason = _refusal(dense, candidate, samples)
    if reason is not None:
        return dense, {**record, "sparse_format": False, "sparse_format_refused": reason}
    return candidate, {**record, "sparse_format": True}


def _refusal(dense: bytes, sparse: bytes, samples: np.ndarray) -> str | None:
    """Why the sparse file may not replace the dense one, or None."""
    if len(sparse) >= len(dense):
        return f"not smaller than the dense encoding ({len(sparse):,} >= {len(dense):,} bytes)"
    try:
        outputs = LiteRTModel(sparse).predict(samples)
    except InvalidModel as exc:
        return f"LiteRT cannot run it ({one_line(exc, 160)})"
    except (ValueError, RuntimeError) as exc:  # loads at batch 1, fails when resized (the ViT)
        return f"LiteRT cannot run it on a batch ({one_line(exc, 160)})"
    if not np.array_equal(LiteRTModel(dense).predict(samples), outputs):
        return f"its outputs differ from the dense export's on {len(samples)} samples"
    return None
