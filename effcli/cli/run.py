"""`effdl run RECIPE`: run every variant not yet in results.csv, then print a summary."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.markup import escape

from effcli.cli._common import (
    Format,
    console,
    emit_json,
    err_console,
    format_option,
    print_tracked,
    print_warnings,
    reports_errors,
    results_root,
    set_option,
)

if TYPE_CHECKING:
    from effcli.execute import RunSummary
    from effcli.plan import Plan
    from effcli.track import TrackSummary


class ExecutorName(StrEnum):
    """`--executor`: the built-in executors. Written out, not read from the registry: that
    would import every backend (and the workspace) on each `--help` and TAB completion; a test
    keeps the two equal."""

    auto = "auto"
    local = "local"
    process = "process"
    ray = "ray"


class Track(StrEnum):
    """`--track`: an experiment tracker to log every row to, or none (the recipe's `tracking:`
    key is the default); a test keeps these equal to effcli.track's registry."""

    mlflow = "mlflow"
    tensorboard = "tensorboard"
    none = "none"


@reports_errors
def run(
    recipe: Path = typer.Argument(..., help="The recipe YAML file."),
    out: Path | None = typer.Option(
        None,
        "--out",
        "-o",
        help="Run directory (default: results/<recipe name>; $EFFDL_RESULTS replaces results/).",
    ),
    executor: ExecutorName = typer.Option(
        ExecutorName("auto"),
        "--executor",
        envvar="EFFDL_EXECUTOR",
        show_envvar=True,
        help="Where nodes run: auto (worker processes when nodes can run side by side, else "
        "this process), local (this process), process (worker processes) or ray.",
    ),
    address: str | None = typer.Option(
        None, "--address", help="--executor ray: a cluster to join (auto or HOST:PORT)."
    ),
    jobs: int | None = typer.Option(
        None,
        "--jobs",
        "-j",
        min=1,
        envvar="EFFDL_JOBS",
        show_envvar=True,
        help="Parallel workers for --executor auto, process or ray (default: one per usable "
        "core, or one per GPU; more than the cores is allowed, with a warning).",
    ),
    retry_failed: bool = typer.Option(False, "--retry-failed", help="Rerun failed variants."),
    overrides: list[str] | None = set_option(),
    track: Track | None = typer.Option(
        None,
        "--track",
        help="Log every row to MLflow (mlflow) or as TensorBoard event files in "
        "RUN_DIR/tensorboard (tensorboard) too, or not (none); default: the recipe's tracking: "
        "key. Checked before anything trains.",
    ),
    output: Format = format_option(),
) -> None:
    """Run a recipe: train, shrink and export every variant; append measured rows to results.csv.

    --format json: the summary as one JSON object on stdout (progress goes to stderr).

    [bold]Examples:[/]

      effdl run recipes/quickstart.yaml
      effdl run recipes/quickstart.yaml --set train.epochs=2 --out /tmp/smoke
      effdl run recipes/quickstart.yaml --executor local --track mlflow
      EFFDL_JOBS=1 effdl run recipes/quickstart.yaml --format json
    """
    from effcli.cli._progress import RichReporter
    from effcli.execute import Reporter, run_plan
    from effcli.plan import load_plan

    plan = load_plan(recipe, overrides=overrides or [])
    print_warnings(plan.warnings)
    run_dir = out or results_root() / plan.name
    json_mode = output is Format.json
    progress = RichReporter(err_console if json_mode else console)
    reporter: Reporter = progress
    kind = track.value if track is not None else (plan.source.doc.get("tracking") or "none")
    tracker = None
    if kind != "none":  # opened first: a missing extra or a bad URI fails before any training
        from effcli.track import open_tracker
        from effcli.track.reporter import TrackingReporter

        tracker = open_tracker(kind, run_dir)
        reporter = TrackingReporter(progress, tracker, warn=_warn)
    try:
        summary = run_plan(
            plan,
            run_dir,
            reporter,
            executor=executor.value,
            retry_failed=retry_failed,
            jobs=jobs,
            address=address,
        )
        # TrackingReporter logged each row as it landed; this catches any it missed and counts.
        tracked = tracker.log_pending() if tracker is not None else None
    finally:
        if tracker is not None:
            tracker.close()
    if json_mode:
        emit_json(_as_json(recipe, plan, summary, kind, tracked))
    else:
        console.print(
            f"[bold]done[/] in {summary.seconds:.1f}s: {summary.ok} ok, {summary.failed} failed, "
            f"{summary.skipped} already done; nodes: {summary.nodes_ran} ran, "
            f"{summary.nodes_cached} cached"
        )
        console.print(f"results: {summary.results}")
    if tracked is not None:
        print_tracked(kind, tracked, err_console if json_mode else console)
    if summary.failed_total:
        what = "variant replicate(s)" if plan.replicates > 1 else "variant(s)"
        (err_console if json_mode else console).print(
            f"[red]{summary.failed_total} {what} failed[/]; see the error column, "
            "fix, then rerun with --retry-failed"
        )
        raise typer.Exit(1)


def _warn(message: str) -> None:
    err_console.print(f"[yellow]warning:[/] {escape(message)}")


def _as_json(
    recipe: Path, plan: Plan, summary: RunSummary, kind: str, tracked: TrackSummary | None
) -> dict[str, Any]:
    """The run's summary for tools, with the units (variant replicates) that failed."""
    from effcli.results import ResultsStore
    from effcli.results.store import row_key

    ours = {(v.id, v.replicate): v for v in plan.variants}
    failed = [
        {
            "unit": ours[row_key(row)].unit,
            "variant": row["variant"],
            "replicate": row_key(row)[1],
            "label": ours[row_key(row)].label,
            "error": row.get("error", ""),
        }
        for row in ResultsStore(summary.results).rows()
        if row.get("status") == "failed" and row_key(row) in ours
    ]
    return {
        "recipe": str(recipe),
        "name": plan.name,
        "run_dir": str(summary.out),
        "results": str(summary.results),
        "seconds": round(summary.seconds, 3),
        "counts": {
            "variants": summary.variants,
            "ok": summary.ok,
            "failed": summary.failed,
            "skipped": summary.skipped,
            "failed_total": summary.failed_total,
            "nodes_ran": summary.nodes_ran,
            "nodes_cached": summary.nodes_cached,
        },
        "failed_units": failed,
        "tracking": None
        if tracked is None
        else {
            "kind": kind,
            "uri": tracked.uri,
            "experiment": tracked.experiment,
            "runs": tracked.logged + tracked.skipped,  # rows of this run dir in the store
            "not_logged": list(tracked.failed),
        },
    }
