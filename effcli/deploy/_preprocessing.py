"""What a caller does to an input before the model and how to read its output: the class names
in output order (labels.txt) and the preprocessing record (the source's scaling, the recipe's
normalization with its exact constants, the tensors' quantization) that both the model card and
the `.tflite` metadata carry."""

from __future__ import annotations

from typing import Any

import numpy as np

from effcli.deploy._flatbuffer import ModelIO, TensorSpec

LABELS_ENTRY = "effdl.labels"  # metadata entry: labels.txt's text
PREPROCESSING_ENTRY = "effdl.preprocessing"  # metadata entry: preprocessing() as JSON
PREPROCESSING_FORMAT = "effdl.preprocessing/1"
NORMALIZE_FORMULA = "x = (x - offset) / divisor, element-wise along the last axis (channels)"
# What each built-in source does to its raw values before the recipe's normalization.
SOURCE_SCALING = {
    "digits": "scikit-learn digits: 8x8 grayscale pixel values 0..16 divided by 16 (float32 in [0, 1])",
    "image_folder": "images resized to data.image_size, pixel values divided by 255 (float32 in [0, 1])",
    "cifar10": "CIFAR-10 32x32 RGB pixel values divided by 255 (float32 in [0, 1])",
    "npz": "x as stored in the .npz; uint8 arrays divided by 255, other types cast to float32",
    "csv": "one value per feature, in the order below: numeric columns standardized with the "
    "training rows' mean and std, categories one-hot",
    "mnist1d": "MNIST-1D sequences of 40 values, as the generator standardizes them",
    "tfds": "the TFDS dataset's values; uint8 divided by 255",
    "synthetic": "synthetic float32 values (a smoke-test source)",
}


def class_names(split: dict[str, Any] | None, classes: int) -> list[str]:
    """The label of each output position: the source's class names (image_folder, csv,
    cifar10 record them in split.json), else the class index; `classes` is the model's output
    size, which decides how many lines there are."""
    names = [str(n) for n in (split or {}).get("class_names") or []]
    # One label per line: a name cannot hold a line break.
    names = [" ".join(n.splitlines()) for n in names]
    return [names[i] if i < len(names) else str(i) for i in range(classes)]


def labels_text(names: list[str]) -> str:
    """labels.txt: one class name per line, line i for output i."""
    return "".join(f"{name}\n" for name in names)


def preprocessing(split: dict[str, Any] | None, io: ModelIO | None) -> dict[str, Any]:
    """What a caller does to an input before the model, as JSON (the `effdl.preprocessing`
    metadata entry and the card's constants): the source, the normalization and the model's
    input/output tensors with their quantization."""
    data = (split or {}).get("data") or {}
    record: dict[str, Any] = {
        "format": PREPROCESSING_FORMAT,
        "source": data.get("source"),
        "source_scaling": SOURCE_SCALING.get(str(data.get("source"))),
        "normalize": None,
        "labels": LABELS_ENTRY,
    }
    norm = (split or {}).get("normalize")
    if norm:
        record["normalize"] = {
            "mode": norm.get("mode"),
            "per": norm.get("per"),
            "offset": list(norm["offset"]),
            "divisor": list(norm["divisor"]),
            "formula": NORMALIZE_FORMULA,
        }
    if io is not None:
        record["signature"] = io.signature
        record["input"] = io.input.to_json()
        record["output"] = io.output.to_json()
        if io.input.quantized:
            record["input"]["quantization"]["formula"] = quantize_formula(io.input)
        if io.output.quantized:
            record["output"]["quantization"]["formula"] = "y = (q - zero_point) * scale"
    return record


def int_range(dtype: str) -> tuple[int, int]:
    info = np.iinfo(np.dtype(dtype))
    return int(info.min), int(info.max)


def quantize_formula(tensor: TensorSpec) -> str:
    low, high = int_range(tensor.dtype)
    return f"q = clip(round(x / scale + zero_point), {low}, {high}) as {tensor.dtype}"
