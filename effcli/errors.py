"""One exception root for effdl; the CLI turns these into one-line messages.

Exit codes: 2 for bad input (recipe, arguments), 1 for a run in which something failed.
"""

from __future__ import annotations

from pathlib import Path


class EffdlError(Exception):
    """Root of every error effdl raises on purpose."""

    exit_code = 1


class UsageError(EffdlError):
    """A command-line argument is wrong (missing path, bad option value)."""

    exit_code = 2


class RecipeError(EffdlError):
    """A recipe is invalid; the message names file, line, recipe path, what is wrong and the fix."""

    exit_code = 2

    def __init__(
        self,
        message: str,
        *,
        file: str | Path | None = None,
        line: int | None = None,
        path: str | None = None,
    ) -> None:
        self.message = message
        self.file = str(file) if file is not None else None
        self.line = line
        self.path = path
        super().__init__(str(self))

    def __str__(self) -> str:
        where = ""
        if self.file:
            where = self.file + (f":{self.line}" if self.line else "") + ": "
        elif self.line:
            where = f"line {self.line}: "
        return f"{where}{self.path + ': ' if self.path else ''}{self.message}"


class StageFailed(EffdlError):
    """A stage could not produce a valid result; its variants are recorded as failed."""


class FatalError(EffdlError):
    """Stop the whole run (e.g. the run directory cannot be written)."""


def one_line(exc: BaseException, limit: int = 500) -> str:
    """An exception as one short line (for a results row's error column): effdl's own errors
    as phrased, anything else prefixed with its type."""
    text = " ".join(str(exc).split())
    if not isinstance(exc, EffdlError):
        text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return text[:limit]
