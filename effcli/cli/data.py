"""`effdl data RECIPE`: load the recipe's data as a run would and show what training would see.

Nothing trains and TensorFlow is not imported (except by the optional `tfds` source), so it is
the quick way to check a new data source: shapes, classes, split sizes and value ranges.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import typer
from rich.table import Table

from effcli.cli._common import console, print_warnings, reports_errors, set_option

_MAX_LISTED = 20  # classes listed one by one; more are summarized


def _class_counts(counts: list[int]) -> str:
    if len(counts) <= _MAX_LISTED:
        return " ".join(str(c) for c in counts)
    empty = sum(1 for c in counts if c == 0)
    return f"{min(counts)}..{max(counts)} per class" + (f", {empty} empty" if empty else "")


def _values(values: list[float]) -> str:
    shown = " ".join(f"{v:.4g}" for v in values[:8])
    return f"[{shown}{' ...' if len(values) > 8 else ''}]"


def _stats(x: np.ndarray) -> list[str]:
    if x.size == 0:
        return ["-"] * 4
    values = x.astype(np.float64, copy=False)
    return [f"{v:.4g}" for v in (values.min(), values.max(), values.mean(), values.std())]


@reports_errors
def data(
    recipe: Path = typer.Argument(..., help="The recipe YAML file."),
    overrides: list[str] | None = set_option(),
) -> None:
    """Load the recipe's data (no training) and print source, shapes, classes and splits.

    [bold]Examples:[/]

      effdl data recipes/quickstart.yaml
      effdl data recipes/quickstart.yaml --set +data.max_samples=100
    """
    from effcli.data.base import DataSplits, load_splits
    from effcli.plan import load_plan

    plan = load_plan(recipe, overrides=overrides or [])
    print_warnings(plan.warnings)
    source = plan.data_spec["source"]
    # Relative data paths are relative to the recipe's folder, as in `effdl run`.
    splits: DataSplits = load_splits(plan.data_spec, recipe.resolve().parent, plan.seed)
    record: dict[str, Any] = splits.split

    console.print(f"[bold]{plan.name}[/]: data source [bold]{source}[/], seed {plan.seed}")
    console.print(f"kind: {splits.kind}; input shape: {splits.input_shape} {splits.x_train.dtype}")
    names = record.get("class_names")
    listed = ""
    if names:
        shown = ", ".join(str(n) for n in names[:_MAX_LISTED])
        listed = f": {shown}" + (", ..." if len(names) > _MAX_LISTED else "")
    console.print(f"classes: {splits.num_classes}{listed}")
    drawn = record.get("source_split") or {}
    fractions = record.get("fractions") or {}
    shares = "/".join(
        f"{fractions[k]:g}" for k in ("train", "val", "test") if isinstance(fractions.get(k), float)
    )
    if drawn and drawn["test"] != drawn["train"]:
        share = f"{fractions['train']:g}/{fractions['val']:g}" if fractions else ""
        console.print(
            f"splits: test is the source's own '{drawn['test']}'; train/val {share} of "
            f"'{drawn['train']}' (stratified)"
        )
    elif drawn:
        origin = "the whole source" if drawn["train"] == "all" else f"'{drawn['train']}'"
        console.print(f"splits: train/val/test {shares} of {origin} (stratified)")
    if record.get("max_samples"):
        console.print(f"max_samples: {record['max_samples']} per split")
    norm = record.get("normalize")
    if norm:
        stats = ("mean", "std") if norm["mode"] == "standardize" else ("min", "max")
        spread = ", ".join(f"{s} {_values(norm[s])}" for s in stats)
        target = (
            f" to [{norm['range'][0]:g}, {norm['range'][1]:g}]" if norm["mode"] == "scale" else ""
        )
        console.print(
            f"normalize: {norm['mode']}{target} per {norm['per']}, from the train split "
            f"({spread}); the table shows normalized values"
        )
    if not plan.save_test:
        console.print("test.npz: not saved by runs (data.save_test: false)")

    table = Table(title="splits")
    for column in ("split", "samples", "x min", "x max", "x mean", "x std"):
        table.add_column(column, justify="left" if column == "split" else "right")
    table.add_column("class counts (0..n-1)")
    parts = (
        ("train", splits.x_train, splits.y_train),
        ("val", splits.x_val, splits.y_val),
        ("test", splits.x_test, splits.y_test),
    )
    for name, x, y in parts:
        counts = np.bincount(y, minlength=splits.num_classes).tolist()
        table.add_row(name, str(len(y)), *_stats(x), _class_counts(counts))
    console.print(table)
