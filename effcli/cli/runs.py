"""`effdl runs [PATH]`: every run directory under PATH, what it holds and what it weighs.

The work is in effcli.results.inventory; nothing here imports TensorFlow (or pandas).
"""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.table import Table

from effcli.cli._common import (
    Format,
    console,
    emit_json,
    format_option,
    reports_errors,
    results_root,
)
from effcli.errors import UsageError


def format_size(value: float) -> str:
    """Decimal units, as effdl's other tables (effcli.frontier.table, which imports pandas)."""
    for unit, factor in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if value >= factor:
            return f"{value / factor:.1f} {unit}"
    return f"{value:.0f} B"


def ago(stamp: float, now: float | None = None) -> str:
    """`12 s ago`, `5 min ago`, `3 h ago`, `4 d ago`."""
    seconds = max(0.0, (time.time() if now is None else now) - stamp)
    for unit, size, limit in (("s", 1, 60), ("min", 60, 3600), ("h", 3600, 48 * 3600)):
        if seconds < limit:
            return f"{int(seconds // size)} {unit} ago"
    return f"{int(seconds // 86400)} d ago"


@reports_errors
def runs(
    path: Path | None = typer.Argument(
        None, help="Folder to search (default: $EFFDL_RESULTS, else results/)."
    ),
    output: Format = format_option(),
) -> None:
    """List the run directories under PATH: rows, ok/failed, variants, replicates, disk size.

    Size counts each file once (artifacts hard-link the cache's models); cache is what
    `effdl clean RUN --cache-only` would free. Last change: results.csv or artifacts/.

    [bold]Examples:[/]

      effdl runs
      effdl runs results/ --format json
    """
    from effcli.results.inventory import describe, find_run_dirs, local_time

    path = path if path is not None else results_root()
    if not path.exists():
        raise UsageError(f"{path}: no such folder (runs are written to results/<name>/)")
    if not path.is_dir():
        raise UsageError(f"{path}: not a folder; give the folder holding run directories")
    infos = [describe(folder) for folder in find_run_dirs(path)]
    if output is Format.json:
        emit_json([info.to_json() for info in infos])
        return
    if not infos:
        console.print(f"no run directories under {path} (a run directory holds a results.csv)")
        return
    plural = "directory" if len(infos) == 1 else "directories"
    table = Table(title=f"{len(infos)} run {plural} under {path}")
    for column in ("run", "recipe"):
        table.add_column(column)
    from effcli.results.rundir import CACHE

    for column in ("rows", "ok", "failed", "variants", "replicates", "size", CACHE):  # cache/ size
        table.add_column(column, justify="right")
    table.add_column("last change")
    for info in infos:
        variants = str(info.variants)
        if info.planned is not None and info.planned != info.variants:
            variants = f"{info.variants} of {info.planned}"
        changed = (
            f"{local_time(info.last_change)[:16]} ({ago(info.last_change)})"
            if info.last_change
            else "-"
        )
        table.add_row(
            str(info.path),
            info.name if info.kind == "run" else f"{info.name} (effdl measure)",
            str(info.rows),
            str(info.ok),
            f"[red]{info.failed}[/]" if info.failed else "0",
            variants,
            str(info.replicates),
            format_size(info.total_bytes),
            format_size(info.cache_bytes) if info.kind == "run" else "-",
            changed,
        )
    console.print(table)
    console.print(
        "cache: what 'effdl clean RUN --cache-only' frees (files artifacts/ also links stay)"
    )
