"""What every command shares: consoles, --debug, and turning errors into one line."""

from __future__ import annotations

import functools
import os
import sys
import traceback
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from effcli.errors import EffdlError

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


def print_warnings(lines: list[str]) -> None:
    """Plan-time advice, one yellow line each on stderr (with plug-ins that failed to load)."""
    from effcli.registry import plugin_problems

    for line in [*plugin_problems(), *lines]:
        err_console.print(f"[yellow]warning:[/] {escape(line)}", markup=True)


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
