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


STATISTICS = ("_mean", "_std", "_ci_low", "_ci_high")


def format_value(column: str, value: Any) -> str:
    """A cell in human units, chosen by the column's name (`x_mean`, `x_std`: as `x`)."""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    number = _number(value)
    if number is None:
        return (
            "" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)
        )
    for suffix in STATISTICS:
        if column.endswith(suffix) and len(column) > len(suffix):
            return format_value(column[: -len(suffix)], number)
    if column.endswith("_bytes"):
        return format_bytes(number)
    if column.endswith("_cv"):  # a spread relative to the mean (latency_ms_cv)
        return f"{number * 100:.1f} %"
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


def format_interval(column: str, low: Any, high: Any) -> str:
    """`[97.22, 98.89] %` for a fraction column (else in the column's own units); '' for NaN."""
    low_n, high_n = _number(low), _number(high)
    if low_n is None or high_n is None:
        return ""
    if column.endswith("accuracy") or column.endswith("sparsity"):
        return f"[{low_n * 100:.2f}, {high_n * 100:.2f}] %"
    return f"[{format_value(column, low_n)}, {format_value(column, high_n)}]"


def format_difference(column: str, mean: Any, low: Any, high: Any, significant: Any) -> str:
    """`+1.39 pt [0.28, 2.50]` and whether it is significant (`*`) or within noise (`≈`)."""
    numbers = [_number(v) for v in (mean, low, high)]
    if any(n is None for n in numbers):
        return ""
    m, lo, hi = (float(n) for n in numbers if n is not None)
    scale, unit = (100.0, " pt") if column.endswith("accuracy") else (1.0, "")
    mark = "*" if significant is True else "≈"
    return f"{mark} {m * scale:+.2f}{unit} [{lo * scale:+.2f}, {hi * scale:+.2f}]"


def decorate(rows: pd.DataFrame, quality: str) -> pd.DataFrame:
    """Display columns for a frontier table: `<quality>_ci` as `[low, high] %`, `vs_smaller` /
    `vs_best` as signed differences with their interval and mark, `n_replicates` as `2 of 3`
    when some replicates failed."""
    out = rows.copy()
    low, high = f"{quality}_ci_low", f"{quality}_ci_high"
    if low in out.columns:
        out[f"{quality}_ci"] = [
            format_interval(quality, lo, hi) for lo, hi in zip(out[low], out[high], strict=True)
        ]
    for prefix in ("vs_smaller", "vs_best"):
        if f"{prefix}_mean" in out.columns:
            out[prefix] = [
                format_difference(quality, m, lo, hi, sig)
                for m, lo, hi, sig in zip(
                    out[f"{prefix}_mean"],
                    out[f"{prefix}_low"],
                    out[f"{prefix}_high"],
                    out[f"{prefix}_significant"],
                    strict=True,
                )
            ]
    if "replicates_total" in out.columns:
        out["n_replicates"] = [
            f"{int(n)} of {int(t)}" if _number(t) and int(t) != int(n) else str(int(n))
            for n, t in zip(out["n_replicates"], out["replicates_total"], strict=True)
        ]
    return out


def header(column: str) -> str:
    """A column's header: its name, a statistic's suffix on a second line
    (`tflite_accuracy` / `mean`), so the column is as narrow as its longest line."""
    for suffix in (*STATISTICS, "_ci"):
        if column.endswith(suffix) and len(column) > len(suffix):
            return f"{column[: -len(suffix)]}\n{suffix[1:]}"
    return column


def _width(column: str, cells: list[str]) -> int:
    """What a column takes: its header's longest line or its widest value (headers never
    wrap, values never fold)."""
    return max([*(len(line) for line in header(column).splitlines()), *(len(c) for c in cells)])


def fit_columns(
    df: pd.DataFrame, columns: list[str], width: int | None
) -> tuple[list[str], list[str]]:
    """(kept, dropped): the columns, most important first, that fit `width` characters as a
    rich table; the least important (last) go first. None keeps them all."""
    if width is None:
        return columns, []
    need = {
        c: _width(c, [format_value(c, v) for v in df[c]]) + 3 for c in columns
    }  # + padding, border
    kept = list(columns)
    while len(kept) > 1 and sum(need[c] for c in kept) + 1 > width:
        kept.pop()
    return kept, [c for c in columns if c not in kept]


def frontier_table(
    df: pd.DataFrame,
    columns: list[str],
    title: str,
    numeric: set[str],
    width: int | None = None,
) -> tuple[Table, list[str]]:
    """A rich table of `df[columns]` that fits `width` (numeric columns right-aligned), and the
    columns it left out to fit."""
    columns, dropped = fit_columns(df, columns, width)
    table = Table(title=title, title_justify="left")
    cells = [[format_value(c, row[c]) for c in columns] for _, row in df.iterrows()]
    for i, column in enumerate(columns):
        table.add_column(
            header(column),
            justify="right" if column in numeric else "left",
            overflow="fold",
            min_width=_width(column, [r[i] for r in cells]),
        )
    for row_cells in cells:
        table.add_row(*row_cells)
    return table, dropped
