"""`effdl frontier PATH...`: the Pareto table over every results.csv under the paths.

`--where` filters rows before the front is computed, `--best` answers with the single best row,
`--plot` draws quality against the first footprint (matplotlib, imported only then).
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from effcli.cli._common import console, err_console, reports_errors

if TYPE_CHECKING:  # pandas and the frontier load lazily: `effdl --help` stays fast
    import pandas as pd

    from effcli.frontier.query import Frontier


class OutputFormat(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"


def _emit(rows: pd.DataFrame, output: OutputFormat, single: bool = False) -> None:
    """csv or json on stdout (json: a list of rows, or one object when `single`)."""
    if output is OutputFormat.csv:
        typer.echo(rows.to_csv(index=False), nl=False)
        return
    records = json.loads(rows.to_json(orient="records"))
    typer.echo(json.dumps(records[0] if single and records else records, indent=2))


@reports_errors
def frontier(
    paths: list[Path] = typer.Argument(..., help="Run directories or results.csv files."),
    quality: str = typer.Option("tflite_accuracy", "--quality", "-q", help="Column to maximise."),
    footprint: list[str] | None = typer.Option(
        None,
        "--footprint",
        "-f",
        help="Column to minimise; repeat for several (default tflite_bytes).",
    ),
    where: list[str] | None = typer.Option(
        None,
        "--where",
        "-w",
        help="Keep rows satisfying COLUMN OP VALUE before the front is computed, e.g. "
        "'tflite_bytes<100KB', 'latency_ms_p50<=2ms', 'tflite_accuracy>=95%', "
        "'pipeline==train>prune*'; repeat to combine (and).",
    ),
    best: bool = typer.Option(
        False, "--best", help="Only the best row under the constraints (highest quality)."
    ),
    all_rows: bool = typer.Option(False, "--all", help="List every ok row; ★ marks the frontier."),
    output: OutputFormat = typer.Option(OutputFormat.table, "--format", help="table, csv or json."),
    plot: Path | None = typer.Option(
        None, "--plot", help="Also draw quality vs the first footprint to FILE (.png/.svg/.pdf)."
    ),
    log_x: bool = typer.Option(False, "--log-x", help="Log scale for the plot's footprint axis."),
) -> None:
    """Best quality per footprint: the Pareto frontier of every ok variant."""
    from effcli.errors import UsageError
    from effcli.frontier import frontier_table, load_results
    from effcli.frontier.constraints import parse_constraints
    from effcli.frontier.query import compute_frontier

    if best and all_rows:
        raise UsageError("--best and --all cannot be combined: --best prints one row")
    if plot is not None and plot.suffix.lower() not in (".png", ".svg", ".pdf"):
        raise UsageError(f"--plot {plot}: the file must end in .png, .svg or .pdf")
    df = load_results(paths, warn=lambda msg: err_console.print(f"[yellow]warning:[/] {msg}"))
    constraints = parse_constraints(where or [], list(df.columns))
    result = compute_frontier(df, quality, list(footprint or []), constraints)
    if plot is not None:
        from effcli.frontier.plot import save_plot

        size = save_plot(result, plot, log_x=log_x)
        err_console.print(f"wrote {plot} ({size / 1000:.1f} KB)")

    if best:
        if result.rows.empty:
            from effcli.frontier import NoMatch

            raise NoMatch(
                f"no ok variant has both {result.quality} and {', '.join(result.footprints)} "
                f"({result.excluded} excluded for missing values)"
            )
        rows = result.best()
        columns = result.display_columns(all_rows=False)
        if output is not OutputFormat.table:
            _emit(rows.drop(columns=["on_frontier"]), output, single=True)
            return
        title = f"Best: max {result.quality}, then min {', '.join(result.footprints)}"
        title += _subtitle(result, best=True)
        numeric = {c for c in columns if c not in ("run", "variant", "pipeline", "branch")}
        console.print(frontier_table(rows, columns, title, numeric))
        return

    rows = result.rows if all_rows else result.front
    columns = result.display_columns(all_rows)
    if output is not OutputFormat.table:
        _emit(rows.drop(columns=[] if all_rows else ["on_frontier"]), output)
        return
    if all_rows:
        rows = rows.assign(frontier=rows["on_frontier"].map({True: "★", False: ""}))
        columns = ["frontier", *columns]
    goal = f"max {result.quality}, min {', '.join(result.footprints)}"
    numeric = {c for c in columns if c not in ("run", "variant", "pipeline", "branch", "frontier")}
    title = f"Pareto frontier: {goal}{_subtitle(result)}"
    console.print(frontier_table(rows, columns, title, numeric))


def _subtitle(result: Frontier, best: bool = False) -> str:
    """' (2 of 9 ok variants; 1 failed; ...; where a, b)' for the table title."""
    shown = "best" if best else str(len(result.front))
    counts = f"{shown} of {len(result.rows)} ok variants"
    if result.failed:
        counts += f"; {result.failed} failed"
    if result.filtered:
        counts += f"; {result.filtered} outside --where"
    if result.excluded:
        counts += f"; {result.excluded} excluded for missing values"
    if result.constraints:
        counts += "; where " + ", ".join(c.expression for c in result.constraints)
    return f" ({counts})"
