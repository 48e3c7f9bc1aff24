"""What every command shares: consoles, --debug, turning errors into one line, `--format json`,
`--set` and the results root."""

from __future__ import annotations

import functools
import json
import os
import sys
import traceback
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from effcli.errors import EffdlError, RecipeError

F = TypeVar("F", bound=Callable[..., Any])

# Piped output (CI logs, `| less`) gets a wide fixed width so tables are not truncated.
_WIDTH = None if sys.stdout.isatty() else int(os.environ.get("COLUMNS", "160"))
console = Console(highlight=False, soft_wrap=True, width=_WIDTH)
err_console = Console(stderr=True, highlight=False, soft_wrap=True, width=_WIDTH)

_state = {"debug": os.environ.get("EFFDL_DEBUG", "") not in ("", "0")}


def set_debug(value: bool) -> None:
    _state["debug"] = _state["debug"] or value
    if value:  # also keeps TensorFlow's native logs visible (see effcli._native)
        os.environ["EFFDL_DEBUG"] = "1"


def print_warnings(lines: list[str]) -> list[str]:
    """Plan-time advice, one yellow line each on stderr (with plug-ins that failed to load);
    returns the lines printed."""
    from effcli.registry import plugin_problems

    shown = [*plugin_problems(), *lines]
    for line in shown:
        err_console.print(f"[yellow]warning:[/] {escape(line)}", markup=True)
    return shown


class Format(StrEnum):
    """`--format` of plan, validate, measure and run: a rich table (and lines), or one JSON
    document on stdout (warnings and progress go to stderr, so stdout always parses)."""

    table = "table"
    json = "json"


def format_option() -> Any:
    return typer.Option(Format.table, "--format", help="table, or json on stdout.")


def emit_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, default=str))


def set_option() -> Any:
    return typer.Option(
        None,
        "--set",
        metavar="KEY=VALUE",
        help="Change a recipe key for this run, VALUE in YAML: train.epochs=2, "
        "pipeline.1.sparsity=0.5, 'model.args.width_multiplier={sweep: [0.5, 1]}'. "
        "+KEY=VALUE adds a key the recipe lacks. Repeatable.",
    )


RESULTS_ENV = "EFFDL_RESULTS"


def results_root() -> Path:
    """Where run directories go by default: $EFFDL_RESULTS, else results/ (relative to here)."""
    return Path(os.environ.get(RESULTS_ENV) or "results")


def _split_fix(message: str) -> tuple[str, str | None]:
    """'what is wrong; how to fix it' -> both parts: the first '; ' outside brackets separates
    them (recipe errors are phrased that way); None when there is no fix part."""
    depth = 0
    for i, char in enumerate(message):
        depth += char in "([{"
        depth -= depth > 0 and char in ")]}"
        if depth == 0 and message.startswith("; ", i):
            return message[:i], message[i + 2 :]
    return message, None


def problem(exc: EffdlError) -> dict[str, Any]:
    """An error as a JSON object: where (file and line, or the `--set` that caused it; the
    recipe path such as `pipeline[1].sparsity`), what is wrong, the fix, and the one line."""
    from effcli.recipe.source import OVERRIDE

    file: str | None = None
    line: int | None = None
    path: str | None = None
    override: str | None = None
    text = str(exc)
    if isinstance(exc, RecipeError):
        file, line, path, text = exc.file, exc.line, exc.path, exc.message
        if file is not None and file.startswith(f"{OVERRIDE} "):
            override = file[len(OVERRIDE) + 1 :]
            file = None
    message, fix = _split_fix(text)
    return {
        "file": file,
        "set": override,
        "line": line,
        "path": path,
        "message": message,
        "fix": fix,
        "error": str(exc),
    }


def reports_errors(func: F) -> F:
    """Wrap a command so effdl errors print as one red line with their exit code, never a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (typer.Exit, typer.Abort, SystemExit):
            raise
        except EffdlError as exc:
            if _state["debug"]:
                traceback.print_exc(file=sys.stderr)
            # Messages quote user text ("[bold]" in a YAML key): never read them as markup.
            err_console.print(f"[bold red]error:[/] {escape(str(exc))}", markup=True)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            err_console.print("[yellow]interrupted[/]: finished results are saved; rerun to resume")
            raise typer.Exit(130) from None
        except Exception as exc:  # a bug in effdl: still one line unless --debug
            if _state["debug"]:
                traceback.print_exc(file=sys.stderr)
            err_console.print(
                f"[bold red]internal error:[/] {type(exc).__name__}: {escape(str(exc))} "
                "(rerun with --debug for the traceback)"
            )
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


def print_tracked(kind: str, tracked: Any, where: Console, *, new_only: bool = False) -> None:
    """One line for a tracker's TrackSummary: how many of the run's rows the store holds (or,
    `new_only`, how many were logged now), where, and for a local SQLite store how to browse it.
    Rows that could not be logged are counted; the tracker's warnings say why."""
    runs = tracked.logged if new_only else tracked.logged + tracked.skipped
    extra = f", {tracked.skipped} logged before" if new_only and tracked.skipped else ""
    if tracked.failed:
        extra += f", {len(tracked.failed)} not logged"
    where.print(
        f"{kind}: {runs} runs logged to {tracked.uri} (experiment {tracked.experiment}){extra}",
        markup=False,
    )
    if kind == "mlflow" and str(tracked.uri).startswith("sqlite:"):
        where.print(
            f"  a local store: browse it with mlflow ui --backend-store-uri {tracked.uri}",
            markup=False,
        )
    if kind == "tensorboard":
        where.print(
            f"  view with: tensorboard --logdir {tracked.uri} (pip install tensorboard)",
            markup=False,
        )
