"""Registers the commands; each lives in its own module."""

from __future__ import annotations

import typer

from effcli import __version__
from effcli.cli import data, frontier, measure, plan, report, run, validate
from effcli.cli._common import set_debug

app = typer.Typer(
    name="effdl",
    help="Run Grow / Shrink / Improve recipes and print the measured quality-vs-footprint frontier.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"effdl {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors."),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """effdl: which model gives the best quality for the footprint you can afford?"""
    set_debug(debug)


app.command("run")(run.run)
app.command("plan")(plan.plan)
app.command("validate")(validate.validate)
app.command("frontier")(frontier.frontier)
app.command("data")(data.data)
app.command("measure")(measure.measure)
app.command("report")(report.report)


def main() -> None:
    app()
