"""`effdl report RUN_DIR`: a self-contained HTML report of a run (no TensorFlow)."""

from __future__ import annotations

from pathlib import Path

import typer

from effcli.cli._common import console, reports_errors


@reports_errors
def report(
    run_dir: Path = typer.Argument(..., help="A run directory (holding results.csv)."),
    out: Path | None = typer.Option(
        None, "--out", "-o", help="HTML file to write (default: RUN_DIR/report.html)."
    ),
    quality: str = typer.Option(
        "tflite_accuracy", "--quality", "-q", help="Frontier column to maximise."
    ),
    footprint: list[str] | None = typer.Option(
        None, "--footprint", "-f", help="Frontier column to minimise; repeatable."
    ),
) -> None:
    """One self-contained HTML file: recipe, environment, plan, results, frontier and plot.

    Per variant: its layers and where time went. It opens from disk; nothing external.

    [bold]Examples:[/]

      effdl report results/quickstart
      effdl report results/quickstart --out quickstart.html --footprint gzip_bytes
    """
    from effcli.report import build_report, write_report

    html = build_report(run_dir, quality, list(footprint or []))
    target = out or run_dir / "report.html"
    size = write_report(html, target)
    console.print(f"wrote {target} ({size / 1000:.1f} KB)")
