"""Turning user arrays into model inputs: the kind rule and the shape/dtype checks (npz, tfds)."""

from __future__ import annotations

import numpy as np

from effcli.data.base import DataError

KINDS = ("image", "sequence", "tabular")

KIND_RULE = (
    "image | sequence | tabular; omitted: inferred from x's shape per sample: (H, W, C) -> "
    "image; (L, C) with C <= 8 channels and L > C -> sequence; any other (H, W) -> grayscale "
    "image (a channel axis is added); (F,) -> tabular"
)


def infer_kind(sample_shape: tuple[int, ...]) -> str | None:
    """The kind `KIND_RULE` gives for one sample's shape, or None when no kind fits."""
    if len(sample_shape) == 1:
        return "tabular"
    if len(sample_shape) == 3:
        return "image"
    if len(sample_shape) == 2:
        length, channels = sample_shape
        return "sequence" if channels <= 8 and length > channels else "image"
    return None


def to_inputs(x: np.ndarray, kind: str | None, where: str) -> tuple[np.ndarray, str]:
    """float32 inputs shaped for `kind` (inferred when None); uint8 is scaled to [0, 1]."""
    if x.ndim < 2:
        raise DataError(
            f"{where}: x must hold one row per sample, shape (N, ...) (got shape {x.shape})"
        )
    if x.dtype.kind not in "biuf":
        raise DataError(f"{where}: x must be numeric (got dtype {x.dtype})")
    kind = kind or infer_kind(tuple(x.shape[1:]))
    if kind is None:
        raise DataError(
            f"{where}: cannot tell the kind of x with shape {x.shape}; reshape it to "
            "(N, H, W, C), (N, L, C) or (N, F)"
        )
    if (kind, x.ndim) in (("image", 3), ("sequence", 2)):
        x = x[..., np.newaxis]  # the single channel axis
    elif kind == "tabular" and x.ndim > 2:
        x = x.reshape(len(x), -1)
    want = {"image": 4, "sequence": 3, "tabular": 2}[kind]
    if x.ndim != want:
        shapes = {"image": "(N, H, W, C) or (N, H, W)", "sequence": "(N, L, C) or (N, L)"}
        raise DataError(
            f"{where}: kind {kind} needs x of shape {shapes[kind]} (got shape {x.shape})"
        )
    out = x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else x.astype(np.float32)
    bad = int(np.size(out) - np.count_nonzero(np.isfinite(out)))
    if bad:
        raise DataError(f"{where}: x holds {bad} NaN or infinite value(s); clean them first")
    return out, kind
