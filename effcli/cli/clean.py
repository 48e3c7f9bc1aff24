"""`effdl clean RUN_DIR --cache-only [--dry-run]`: free a run's cache, keep its results.

The work is in effcli.results.inventory.clean_cache; nothing here imports TensorFlow.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from effcli.cli._common import console, reports_errors
from effcli.cli.runs import format_size
from effcli.errors import UsageError

if TYPE_CHECKING:  # the run-directory code loads when the command runs, not on every --help
    from effcli.results.inventory import CleanResult


@reports_errors
def clean(
    run_dir: Path = typer.Argument(..., help="A run directory written by 'effdl run'."),
    cache_only: bool = typer.Option(
        False,
        "--cache-only",
        help="Delete cache/ (the finished nodes); keep results.csv, artifacts/, the recipe, "
        "plan, split, test set and studies/.",
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Only say what would go and stay."),
) -> None:
    """Free the disk a run's cache takes; results, frontier and artifacts stay.

    Deletes cache/ (every finished node) and what killed runs left; refused while a run uses
    the directory. A rerun of the recipe still trains nothing, but variants added later
    retrain the shared nodes the cache held.

    [bold]Examples:[/]

      effdl clean results/quickstart --cache-only --dry-run
      effdl clean results/quickstart --cache-only
    """
    if not cache_only:
        raise UsageError(
            "effdl clean: only --cache-only is supported (deletes cache/, keeps results and "
            f"artifacts); to delete the whole run, remove {run_dir} yourself"
        )
    from effcli.results.inventory import clean_cache

    result = clean_cache(run_dir, dry_run=dry_run)
    would = "would " if dry_run else ""
    cache = result.cache
    if cache.bytes == 0 and not result.leftovers:
        console.print(f"nothing to free in {run_dir}: no cache/ (kept {_kept(result)})")
        return
    parts = []
    if cache.bytes or cache.entries:
        shared = (
            f"; {format_size(cache.shared)} of it stays, linked from artifacts/"
            if cache.shared
            else ""
        )
        parts.append(f"cache/ ({cache.entries} nodes, {format_size(cache.bytes)}{shared})")
    if result.leftovers:
        parts.append(f"{len(result.leftovers)} leftovers of killed runs")
    console.print(f"{would}remove {' and '.join(parts)}")
    console.print(f"{would}free {format_size(result.freed)}, {would}keep {_kept(result)}")
    console.print(
        f"{'after it, ' if dry_run else ''}a rerun of this recipe trains nothing: its {result.recorded} recorded variants are "
        "skipped; variants you add later (or --retry-failed) retrain the shared nodes they would "
        "have found in the cache"
    )


def _kept(result: CleanResult) -> str:
    """`1.2 MB: results.csv, artifacts/ (4), recipe.yaml, ...`"""
    from effcli.results.rundir import ARTIFACTS, STUDIES

    shown = [f"{name}/" if name in (ARTIFACTS, STUDIES) else name for name in result.kept]
    if result.artifacts and "artifacts/" in shown:
        shown[shown.index("artifacts/")] = f"artifacts/ ({result.artifacts})"
    return f"{format_size(result.kept_bytes)}: {', '.join(shown)}"
