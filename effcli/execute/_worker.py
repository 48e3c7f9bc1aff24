"""The worker side of the parallel executors: a process (or a Ray task) that builds nodes and
finishes variants of the plan it was sent, in a Workspace of its own, and returns the outcomes.

The scheduler sends the built plan itself (pickled once per run, `Job`): a worker never reads the
recipe again, so what it builds is exactly what the scheduler planned, even if the recipe file
changed since.
"""

from __future__ import annotations

import hashlib
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from effcli.execute.workspace import NodeOutcome, VariantOutcome, Workspace
from effcli.plan import Plan


@dataclass(frozen=True)
class Job:
    """What every task of one run needs: the plan, the run directory, TensorFlow's threads."""

    plan: bytes
    digest: str
    root: str
    threads: int

    @classmethod
    def of(cls, plan: Plan, root: Path, threads: int) -> Job:
        blob = pickle.dumps(plan)
        return cls(blob, hashlib.sha256(blob).hexdigest(), str(root), threads)


_current: dict[str, Any] = {}


def install(job: Job) -> None:
    """Prepare this worker for `job` (once per job): quiet native logs, its share of the cores,
    the plan and its workspace."""
    if _current.get("digest") == job.digest:
        return
    if "quiet" not in _current:
        from effcli._native import native_quiet
        from effcli._tf import configure

        _current["quiet"] = native_quiet()
        _current["quiet"].__enter__()  # for the worker's lifetime
        configure(job.threads)
    plan: Plan = pickle.loads(job.plan)
    _current.update(digest=job.digest, workspace=Workspace(plan, Path(job.root)))


def _workspace(job: Job | None) -> Workspace:
    if job is not None:
        install(job)
    workspace: Workspace = _current["workspace"]
    return workspace


def build(key: str, job: Job | None = None) -> NodeOutcome:
    """Build one node (its parent and dependencies are cached already)."""
    workspace = _workspace(job)
    try:
        return workspace.build(workspace.plan.nodes[key])
    finally:
        workspace.forget()


def finish(unit: str, job: Job | None = None) -> VariantOutcome:
    """Export, measure and record one variant's replicate (Variant.unit) whose leaf is cached."""
    workspace = _workspace(job)
    try:
        return workspace.finish(workspace.plan.variant(unit))
    finally:
        workspace.forget()
