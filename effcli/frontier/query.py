"""Choose the columns, drop what cannot be placed, mark the frontier, sort for display."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pandas as pd

from effcli.errors import UsageError
from effcli.frontier.constraints import Constraint, apply_constraints
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
    """Ok rows (sorted by footprint) with an `on_frontier` column, and what was left out.

    `rejected` holds the ok rows that `--where` filtered out (the plot shows them greyed).
    """

    rows: pd.DataFrame
    quality: str
    footprints: list[str]
    failed: int
    excluded: int
    constraints: tuple[Constraint, ...] = ()
    rejected: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def front(self) -> pd.DataFrame:
        return self.rows[self.rows["on_frontier"]]

    @property
    def filtered(self) -> int:
        """Ok rows that did not satisfy every --where."""
        return len(self.rejected)

    def best(self) -> pd.DataFrame:
        """The single best row: highest quality, then the smaller footprints in the order given,
        then variant id and run; so it is always on the front and always the same row."""
        order = [self.quality, *self.footprints, "variant", "run"]
        ascending = [False, *[True] * len(self.footprints), True, True]
        return _sorted(self.rows, order, ascending).head(1)

    def display_columns(self, all_rows: bool) -> list[str]:
        shown = self.rows if all_rows else self.front
        knobs = [c for c in shown.columns if "." in c and shown[c].notna().any()]
        lead = ["run"] if self.rows["run"].nunique() > 1 else []
        main = [self.quality, *self.footprints]
        extra = [c for c in EXTRA_COLUMNS if c in shown.columns and c not in main]
        branch = ["branch"] if "branch" in shown.columns and shown["branch"].notna().any() else []
        return [*lead, "variant", *branch, "pipeline", *knobs, *main, *extra]


def _sorted(df: pd.DataFrame, order: list[str], ascending: list[bool]) -> pd.DataFrame:
    """A stable sort on the keys present (missing values last)."""
    keys = [(c, a) for c, a in zip(order, ascending, strict=True) if c in df.columns]
    return df.sort_values(
        [c for c, _ in keys], ascending=[a for _, a in keys], kind="mergesort", na_position="last"
    )


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
    df: pd.DataFrame,
    quality: str = DEFAULT_QUALITY,
    footprints: list[str] | None = None,
    where: Sequence[Constraint] = (),
) -> Frontier:
    """Keep status == ok, keep rows satisfying every `where`, exclude rows missing a chosen
    value, mark the Pareto-optimal ones."""
    footprints = footprints or [DEFAULT_FOOTPRINT]
    if len(set(footprints)) != len(footprints) or quality in footprints:
        raise UsageError(
            f"--quality {quality} --footprint {' '.join(footprints)}: each column may be "
            "chosen once (a column cannot be both maximised and minimised)"
        )
    status = df["status"].fillna("")
    ok = df[status == "ok"].reset_index(drop=True)
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
    kept = apply_constraints(ok, where)
    rejected = ok.drop(index=kept.index)
    ok = kept
    chosen = [quality, *footprints]
    placeable = ok[chosen].notna().all(axis=1)
    excluded = int((~placeable).sum())
    ok = ok[placeable].copy()
    ok["on_frontier"] = pareto_mask(
        ok[chosen].to_numpy(dtype=float), [True, *[False] * len(footprints)]
    )
    # Deterministic order, whatever order the files listed the rows in: first footprint
    # ascending, quality descending, the other footprints ascending, then variant and run.
    order = [footprints[0], quality, *footprints[1:], "variant", "run"]
    ascending = [True, False, *[True] * (len(footprints) - 1), True, True]
    ok = _sorted(ok, order, ascending)
    return Frontier(
        rows=ok.reset_index(drop=True),
        quality=quality,
        footprints=footprints,
        failed=failed,
        excluded=excluded,
        constraints=tuple(where),
        rejected=rejected.reset_index(drop=True),
    )
