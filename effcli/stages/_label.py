"""Tokens of readable variant labels (effcli.plan.labels): how a stage and its varying
arguments read, `prune50%`, `w0.25`, `lr0.001`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# Argument names as they appear in labels (the rest are written out).
ABBREVIATIONS = {
    "width_multiplier": "w",
    "depth_multiplier": "d",
    "resolution_multiplier": "r",
    "compound_phi": "phi",
    "learning_rate": "lr",
    "epochs": "ep",
    "batch_size": "bs",
    "weight_decay": "wd",
    "label_smoothing": "ls",
    "optimizer": "",
    "temperature": "T",
    "alpha": "a",
    "augment": "aug",
    "calibration_samples": "cal",
    "sparse_format": "sparse",
    "clusters": "c",
    "rank": "rank",
    "energy": "energy",
    "n_trials": "trials",
    "input_size": "in",
    "patch_size": "p",
    "blocks": "b",
}
# Arguments whose value is a share, written as a percentage (`train_fraction: 0.25` -> `f25%`).
PERCENTAGES = {"train_fraction": "f"}
# Keys of a swept dict whose value alone names it (`{family: cnn, args: {...}}` -> `cnn w0.5`).
NAMING_KEYS = ("family", "source", "stage", "mode")


def number(value: Any) -> str:
    """0.25 -> '0.25', 1.0 -> '1.0', 3 -> '3', 1e-4 -> '0.0001'."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return f"{value:.1f}" if value.is_integer() else f"{value:.4g}"
    return str(value)


def percent(fraction: float) -> str:
    return f"{round(fraction * 100, 1):g}%"


def token(argument: str, value: Any) -> str:
    """One varying argument: `w0.25`, `lr0.001`, `f25%`, `aug` / `no-aug`, `adamw`."""
    last = argument.split(".")[-1]
    if last in PERCENTAGES and isinstance(value, int | float) and not isinstance(value, bool):
        return f"{PERCENTAGES[last]}{percent(value)}"
    name = ABBREVIATIONS.get(last, last)
    if isinstance(value, bool):
        return name if value else f"no-{name}"
    if value is None:
        return f"no-{name}"
    if isinstance(value, dict) and any(k in value for k in NAMING_KEYS):
        return " ".join(_flat(value))
    if isinstance(value, dict | list):
        return name if value else f"no-{name}"
    return f"{name}{number(value)}"


def tokens(varying: Mapping[str, Any], skip: tuple[str, ...] = ()) -> list[str]:
    """A token for each varying argument not in `skip` (which the stage's own token says)."""
    return [token(k, v) for k, v in varying.items() if k.split(".")[0] not in skip]


def _flat(value: dict[str, Any]) -> list[str]:
    """A swept dict such as a model: its naming value, then a token per argument."""
    out: list[str] = []
    for key, item in value.items():
        if key in NAMING_KEYS:
            out.append(str(item))
        elif isinstance(item, dict) and key == "args":
            out.extend(token(k, v) for k, v in item.items())
        else:
            out.append(token(key, item))
    return out
