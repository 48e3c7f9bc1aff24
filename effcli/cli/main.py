"""Registers the commands; each lives in its own module."""

from __future__ import annotations

import typer

from effcli import __version__
from effcli.cli import clean, data, export, frontier, measure, plan, report, run, runs, validate
from effcli.cli._common import set_debug

# Typer keeps the line breaks of help text: one item per line.
EPILOG = """[bold]Environment[/] (an option on the command line wins):

  EFFDL_DEBUG=1      tracebacks and TensorFlow's native logs, like --debug
  EFFDL_EXECUTOR     effdl run --executor (local, process, ray)
  EFFDL_JOBS         effdl run --jobs
  EFFDL_RESULTS      where run directories go instead of results/
  EFFDL_TF_THREADS   TensorFlow intra-op threads per node (default 1)

[bold]Examples:[/]

  effdl run recipes/quickstart.yaml
  effdl frontier results/
  effdl --install-completion    (TAB completion for commands and options; restart the shell)
"""

app = typer.Typer(
    name="effdl",
    help="Run Grow / Shrink / Improve recipes and print the measured quality-vs-footprint frontier.",
    epilog=EPILOG,
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"effdl {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    debug: bool = typer.Option(
        False,
        "--debug",
        envvar="EFFDL_DEBUG",
        show_envvar=True,
        help="Show tracebacks for errors (and TensorFlow's native logs).",
    ),
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
app.command("export")(export.export)
app.command("runs")(runs.runs)
app.command("clean")(clean.clean)


def main() -> None:
    app()
