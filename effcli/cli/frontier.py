"""`effdl frontier PATH...`: the Pareto table over every results.csv under the paths."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path

import typer

from effcli.cli._common import console, err_console, reports_errors


class OutputFormat(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"


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
    all_rows: bool = typer.Option(False, "--all", help="List every ok row; ★ marks the frontier."),
    output: OutputFormat = typer.Option(OutputFormat.table, "--format", help="table, csv or json."),
) -> None:
    """Best quality per footprint: the Pareto frontier of every ok variant."""
    from effcli.frontier import frontier_table, load_results
    from effcli.frontier.query import compute_frontier

    df = load_results(paths, warn=lambda msg: err_console.print(f"[yellow]warning:[/] {msg}"))
    result = compute_frontier(df, quality, list(footprint or []))
    rows = result.rows if all_rows else result.front
    columns = result.display_columns(all_rows)
    if output is not OutputFormat.table:
        data = rows.drop(columns=[] if all_rows else ["on_frontier"])
        if output is OutputFormat.csv:
            typer.echo(data.to_csv(index=False), nl=False)
        else:
            records = json.loads(data.to_json(orient="records"))
            typer.echo(json.dumps(records, indent=2))
        return
    if all_rows:
        rows = rows.assign(frontier=rows["on_frontier"].map({True: "★", False: ""}))
        columns = ["frontier", *columns]
    goal = f"max {result.quality}, min {', '.join(result.footprints)}"
    counts = f"{len(result.front)} of {len(result.rows)} ok variants"
    if result.failed:
        counts += f"; {result.failed} failed"
    if result.excluded:
        counts += f"; {result.excluded} excluded for missing values"
    numeric = {c for c in columns if c not in ("run", "variant", "pipeline", "frontier")}
    console.print(frontier_table(rows, columns, f"Pareto frontier: {goal} ({counts})", numeric))
