"""Choose the columns, drop what cannot be placed, mark the frontier, sort for display."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from effcli.errors import UsageError
from effcli.frontier.pareto import pareto_mask
from effcli.registry import did_you_mean

DEFAULT_QUALITY = "tflite_accuracy"
DEFAULT_FOOTPRINT = "tflite_bytes"
EXTRA_COLUMNS = [
    "accuracy",
    "tflite_accuracy",
    "tflite_bytes",
    "gzip_bytes",
    "latency_ms_p50",
    "params",
    "sparsity",
]
NOT_METRICS = {"run", "variant", "branch", "pipeline", "status", "error"}


@dataclass(frozen=True)
class Frontier:
    """Ok rows (sorted by footprint) with an `on_frontier` column, and what was left out."""

    rows: pd.DataFrame
    quality: str
    footprints: list[str]
    failed: int
    excluded: int

    @property
    def front(self) -> pd.DataFrame:
        return self.rows[self.rows["on_frontier"]]

    def display_columns(self, all_rows: bool) -> list[str]:
        shown = self.rows if all_rows else self.front
        knobs = [c for c in shown.columns if "." in c and shown[c].notna().any()]
        lead = ["run"] if self.rows["run"].nunique() > 1 else []
        main = [self.quality, *self.footprints]
        extra = [c for c in EXTRA_COLUMNS if c in shown.columns and c not in main]
        branch = ["branch"] if "branch" in shown.columns and shown["branch"].notna().any() else []
        return [*lead, "variant", *branch, "pipeline", *knobs, *main, *extra]


def _numeric_column(df: pd.DataFrame, column: str, option: str) -> pd.Series:
    metrics = [
        c
        for c in df.columns
        if c not in NOT_METRICS and "." not in c and pd.api.types.is_numeric_dtype(df[c])
    ]
    if column not in df.columns:
        raise UsageError(
            f"{option} {column}: no such column{did_you_mean(column, metrics)}; numeric columns: "
            f"{', '.join(sorted(metrics))}"
        )
    values = pd.to_numeric(df[column], errors="coerce")
    if values.isna().all() and df[column].notna().any():
        raise UsageError(f"{option} {column}: the column is not numeric")
    return values


def compute_frontier(
    df: pd.DataFrame, quality: str = DEFAULT_QUALITY, footprints: list[str] | None = None
) -> Frontier:
    """Keep status == ok, exclude rows missing a chosen value, mark the Pareto-optimal ones."""
    footprints = footprints or [DEFAULT_FOOTPRINT]
    status = df["status"].fillna("")
    ok = df[status == "ok"].copy()
    failed = int((status != "ok").sum())
    if ok.empty:
        raise UsageError(
            f"no ok rows to compare ({failed} failed); read their error column, e.g. "
            "effdl frontier PATH --all --format csv, fix the recipe and rerun with --retry-failed"
            if failed
            else "the results files have no rows yet"
        )
    for column, option in [(quality, "--quality"), *[(f, "--footprint") for f in footprints]]:
        ok[column] = _numeric_column(ok, column, option)
    chosen = [quality, *footprints]
    placeable = ok[chosen].notna().all(axis=1)
    excluded = int((~placeable).sum())
    ok = ok[placeable].copy()
    ok["on_frontier"] = pareto_mask(
        ok[chosen].to_numpy(dtype=float), [True, *[False] * len(footprints)]
    )
    # Stable order: footprint ascending, then quality descending, then variant.
    ok = ok.sort_values(
        [footprints[0], quality, "variant"], ascending=[True, False, True], kind="mergesort"
    )
    return Frontier(
        rows=ok.reset_index(drop=True),
        quality=quality,
        footprints=footprints,
        failed=failed,
        excluded=excluded,
    )
