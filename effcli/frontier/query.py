"""Choose the columns, group replicates into variants, drop what cannot be placed, mark the
frontier (on the means), sort for display, and give intervals to the rows shown."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pandas as pd

from effcli.errors import UsageError
from effcli.frontier.constraints import Constraint, apply_constraints
from effcli.frontier.pareto import pareto_mask
from effcli.frontier.replicates import Uncertainty, add_intervals, grouped, replicate_counts
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
NOT_METRICS = {
    "run",
    "variant",
    "label",
    "branch",
    "pipeline",
    "status",
    "error",
    "replicate",
    "replicate_seed",
    "baseline",
    "n_replicates",
    "replicates_ok",
    "replicates_total",
}


@dataclass(frozen=True)
class Frontier:
    """One row per variant (its replicates' means; sorted by footprint) with an `on_frontier`
    column, what was left out, and the intervals of its quality.

    `rejected` holds the ok variants that `--where` filtered out (the plot shows them greyed).
    """

    rows: pd.DataFrame
    quality: str
    footprints: list[str]
    failed: int  # variants with no ok replicate
    excluded: int
    constraints: tuple[Constraint, ...] = ()
    rejected: pd.DataFrame = field(default_factory=pd.DataFrame)
    uncertainty: Uncertainty | None = None
    failed_replicates: int = 0  # failed rows of variants that have ok replicates too
    # Variants with no ok replicate: run, variant, replicates (failed), error (the last one).
    failures: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=["run", "variant", "replicates", "error"])
    )

    @property
    def front(self) -> pd.DataFrame:
        return self.rows[self.rows["on_frontier"]]

    @property
    def filtered(self) -> int:
        """Ok variants that did not satisfy every --where."""
        return len(self.rejected)

    @property
    def replicated(self) -> bool:
        """Whether any variant has more than one ok replicate."""
        return bool(len(self.rows)) and bool((self.rows["n_replicates"] > 1).any())

    def best(self) -> pd.DataFrame:
        """The single best variant: highest mean quality, then the smaller footprints in the
        order given, then variant id and run; so it is always on the front, always the same."""
        order = [self.quality, *self.footprints, "variant", "run"]
        ascending = [False, *[True] * len(self.footprints), True, True]
        return _sorted(self.rows, order, ascending).head(1)

    def with_intervals(self, rows: pd.DataFrame) -> pd.DataFrame:
        """`rows` with the quality's `_ci_low` / `_ci_high` (loaded for these rows only)."""
        if self.uncertainty is None or rows.empty:
            q = self.quality
            return rows.assign(**{f"{q}_ci_low": float("nan"), f"{q}_ci_high": float("nan")})
        return add_intervals(rows, self.uncertainty)

    def label_of(self, key: tuple[str, str]) -> str:
        """What a person calls the variant (run, id): its label, `RUN: label` with several runs."""
        rows = self.rows
        match = rows[(rows["run"] == key[0]) & (rows["variant"] == key[1])]
        label = str(match.iloc[0]["label"]) if len(match) and "label" in match.columns else key[1]
        return f"{key[0]}: {label}" if rows["run"].nunique() > 1 else label

    def display_columns(self, all_rows: bool, step: str | None = None) -> list[str]:
        """The table's columns, most important first: who (run, label), the quality with its
        interval, the footprints (and `step`, e.g. vs_smaller), then what else tells variants
        apart; the tables drop
        columns from the end to fit the terminal (see table.fit_columns)."""
        shown = self.rows if all_rows else self.front
        knobs = [c for c in shown.columns if "." in c and shown[c].notna().any()]
        lead = ["run"] if self.rows["run"].nunique() > 1 else []
        main = [self.quality, *self.footprints]
        extra = [c for c in EXTRA_COLUMNS if c in shown.columns and c not in main]
        branch = ["branch"] if "branch" in shown.columns and shown["branch"].notna().any() else []
        if "baseline" in shown.columns and shown["baseline"].notna().any():
            branch.append("baseline")
        if self.replicated:
            main = [f"{self.quality}_mean", f"{self.quality}_ci", *self.footprints, "n_replicates"]
        elif self.uncertainty is not None:
            main = [self.quality, f"{self.quality}_ci", *self.footprints]
        steps = [step] if step else []
        return [*lead, "label", *main, *steps, *extra, "variant", *branch, "pipeline", *knobs]


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


def check_confidence(confidence: float) -> float:
    """A confidence level strictly between 0 and 1, or a one-line UsageError."""
    if not 0.0 < confidence < 1.0:
        raise UsageError(
            f"--confidence {confidence:g}: must be between 0 and 1 (exclusive), e.g. 0.95"
        )
    return confidence


def compute_frontier(
    df: pd.DataFrame,
    quality: str = DEFAULT_QUALITY,
    footprints: list[str] | None = None,
    where: Sequence[Constraint] = (),
    *,
    confidence: float = 0.95,
) -> Frontier:
    """Keep status == ok, group replicates into variants (means), keep variants satisfying
    every `where`, exclude those missing a chosen value, mark the Pareto-optimal ones."""
    footprints = footprints or [DEFAULT_FOOTPRINT]
    check_confidence(confidence)
    if len(set(footprints)) != len(footprints) or quality in footprints:
        raise UsageError(
            f"--quality {quality} --footprint {' '.join(footprints)}: each column may be "
            "chosen once (a column cannot be both maximised and minimised)"
        )
    status = df["status"].fillna("")
    ok = df[status == "ok"].reset_index(drop=True)
    counts = replicate_counts(df)
    no_ok = int((counts["replicates_ok"] == 0).sum())
    failed_replicates = int(
        (counts["replicates_total"] - counts["replicates_ok"])[counts["replicates_ok"] > 0].sum()
    )
    if ok.empty:
        raise UsageError(
            f"no ok rows to compare ({no_ok} failed); read their error column, e.g. "
            "effdl frontier PATH --all --format csv, fix the recipe and rerun with --retry-failed"
            if no_ok
            else "the results files have no rows yet"
        )
    for column, option in [(quality, "--quality"), *[(f, "--footprint") for f in footprints]]:
        ok[column] = _numeric_column(ok, column, option)
    variants = grouped(ok, quality)
    if not counts.empty and failed_replicates:
        totals = counts.reset_index()
        variants = variants.merge(totals, on=["run", "variant"], how="left")
    kept = apply_constraints(variants, where)
    rejected = variants.drop(index=kept.index)
    chosen = [quality, *footprints]
    placeable = kept[chosen].notna().all(axis=1)
    excluded = int((~placeable).sum())
    kept = kept[placeable].copy()
    kept["on_frontier"] = pareto_mask(
        kept[chosen].to_numpy(dtype=float), [True, *[False] * len(footprints)]
    )
    # Deterministic order, whatever order the files listed the rows in: first footprint
    # ascending, quality descending, the other footprints ascending, then variant and run.
    order = [footprints[0], quality, *footprints[1:], "variant", "run"]
    ascending = [True, False, *[True] * (len(footprints) - 1), True, True]
    kept = _sorted(kept, order, ascending)
    bad = counts[counts["replicates_ok"] == 0].reset_index()
    error = df["error"] if "error" in df.columns else pd.Series("", index=df.index)
    errors = error.groupby([df["run"], df["variant"]], sort=False).last()
    failures = pd.DataFrame(
        {
            "run": bad["run"],
            "variant": bad["variant"],
            "replicates": bad["replicates_total"],
            "error": [
                errors.get((r, v), "") for r, v in zip(bad["run"], bad["variant"], strict=True)
            ],
        }
    )
    run_dirs = dict(df.attrs.get("run_dirs", {}))
    uncertainty = Uncertainty(ok, quality, run_dirs, confidence) if run_dirs else None
    return Frontier(
        rows=kept.reset_index(drop=True),
        quality=quality,
        footprints=footprints,
        failed=no_ok,
        excluded=excluded,
        constraints=tuple(where),
        rejected=rejected.reset_index(drop=True),
        uncertainty=uncertainty,
        failed_replicates=failed_replicates,
        failures=failures,
    )
