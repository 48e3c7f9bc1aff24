"""`effdl run RECIPE`: run every variant not yet in results.csv, then print a summary."""

from __future__ import annotations

from pathlib import Path

import typer

from effcli.cli._common import console, print_warnings, reports_errors


@reports_errors
def run(
    recipe: Path = typer.Argument(..., help="The recipe YAML file."),
    out: Path | None = typer.Option(
        None, "--out", "-o", help="Run directory (default: results/<recipe name>)."
    ),
    executor: str = typer.Option(
        "local", "--executor", help="Where nodes run: local (this process), process or ray."
    ),
    address: str | None = typer.Option(
        None, "--address", help="--executor ray: a cluster to join (auto or HOST:PORT)."
    ),
    jobs: int = typer.Option(
        2, "--jobs", "-j", min=1, help="Parallel workers for --executor process or ray."
    ),
    retry_failed: bool = typer.Option(False, "--retry-failed", help="Rerun failed variants."),
) -> None:
    """Run a recipe: train, shrink and export every variant; append measured rows to results.csv."""
    from effcli.cli._progress import RichReporter
    from effcli.execute import executors, run_plan
    from effcli.plan import load_plan

    plan = load_plan(recipe)
    print_warnings(plan.warnings)
    if executor not in executors:
        from effcli.errors import UsageError
        from effcli.registry import UnknownName

        raise UsageError(str(UnknownName("executor", executor, executors.names())))
    summary = run_plan(
        plan,
        out or Path("results") / plan.name,
        RichReporter(console),
        executor=executor,
        retry_failed=retry_failed,
        jobs=jobs,
        address=address,
    )
    console.print(
        f"[bold]done[/] in {summary.seconds:.1f}s: {summary.ok} ok, {summary.failed} failed, "
        f"{summary.skipped} already done; nodes: {summary.nodes_ran} ran, "
        f"{summary.nodes_cached} cached"
    )
    console.print(f"results: {summary.results}")
    if summary.failed_total:
        what = "variant replicate(s)" if plan.replicates > 1 else "variant(s)"
        console.print(
            f"[red]{summary.failed_total} {what} failed[/]; see the error column, "
            "fix, then rerun with --retry-failed"
        )
        raise typer.Exit(1)
