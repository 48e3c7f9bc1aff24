"""Human units and the rich table of frontier rows."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from rich.table import Table


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def format_bytes(value: float) -> str:
    """Decimal units (1 KB = 1000 B), the same units `--where` will accept."""
    if value < 1000:
        return f"{value:.0f} B"
    if value < 1_000_000:
        return f"{value / 1000:.1f} KB"
    return f"{value / 1_000_000:.2f} MB"


def format_value(column: str, value: Any) -> str:
    """A cell in human units, chosen by the column's name."""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    number = _number(value)
    if number is None:
        return (
            "" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)
        )
    if column.endswith("_bytes"):
        return format_bytes(number)
    if column.startswith("latency_ms"):
        return f"{number:.3f} ms"
    if column.endswith("_seconds"):
        return f"{number:.1f} s"
    if column.endswith("accuracy"):
        return f"{number * 100:.2f} %"
    if column.endswith("sparsity"):
        return f"{number * 100:.1f} %"
    if column in ("params", "nonzero_params", "macs", "unique_weights") or column.endswith(
        "_params"
    ):
        return f"{number:,.0f}"
    return f"{number:g}"


def frontier_table(df: pd.DataFrame, columns: list[str], title: str, numeric: set[str]) -> Table:
    """A rich table of `df[columns]`; numeric columns right-aligned."""
    table = Table(title=title, title_justify="left")
    cells = [[format_value(c, row[c]) for c in columns] for _, row in df.iterrows()]
    for i, column in enumerate(columns):
        # Values never fold; long header names wrap over two lines instead.
        widest = max((len(r[i]) for r in cells), default=0)
        table.add_column(
            column,
            justify="right" if column in numeric else "left",
            overflow="fold",
            min_width=max(widest, min(len(column), 9)),
        )
    for row_cells in cells:
        table.add_row(*row_cells)
    return table
