"""Run a plan in a run directory with an executor: skip finished variants, report a summary."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from effcli._native import native_quiet
from effcli.execute.base import executors
from effcli.execute.reporter import Reporter
from effcli.execute.workspace import Workspace
from effcli.plan import Plan


@dataclass(frozen=True)
class RunSummary:
    out: Path
    results: Path
    variants: int
    skipped: int  # already in results.csv before this run
    ok: int
    failed: int
    nodes_ran: int
    nodes_cached: int
    seconds: float
    failed_total: int  # failed rows of this plan in results.csv after the run


def run_plan(
    plan: Plan,
    out: Path,
    reporter: Reporter,
    executor: str = "local",
    retry_failed: bool = False,
    jobs: int | None = None,
    address: str | None = None,
) -> RunSummary:
    """Run every variant not already recorded (failed ones too, with `retry_failed`)."""
    start = time.perf_counter()
    workspace = Workspace(plan, out, reporter)
    with workspace.session():
        recorded = workspace.store.statuses()
        pending = [
            v
            for v in plan.variants
            if (v.id, v.replicate) not in recorded
            or (retry_failed and recorded[(v.id, v.replicate)] != "ok")
        ]
        reporter.started(plan, pending, len(plan.variants) - len(pending))
        try:
            if pending:
                with native_quiet():
                    executors.get(executor)(jobs=jobs, address=address).run(
                        plan, pending, workspace
                    )
        finally:  # also on Ctrl-C: finished rows are already on disk
            reporter.finished()
        after = workspace.store.statuses()
    return RunSummary(
        out=Path(out),
        results=workspace.dir.results,
        variants=len(plan.variants),
        skipped=len(plan.variants) - len(pending),
        ok=workspace.ok,
        failed=workspace.failed,
        nodes_ran=workspace.ran,
        nodes_cached=workspace.cached,
        seconds=time.perf_counter() - start,
        failed_total=sum(1 for v in plan.variants if after.get((v.id, v.replicate)) == "failed"),
    )
