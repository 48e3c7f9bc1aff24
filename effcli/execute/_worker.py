"""The worker side of the parallel executors: a process (or a Ray task) that builds nodes and
finishes variants of the plan it was sent, in a Workspace of its own, and returns the outcomes.

The scheduler sends the built plan itself (pickled once per run, `Job`): a worker never reads the
recipe again, so what it builds is exactly what the scheduler planned, even if the recipe file
changed since.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pickle
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from effcli.execute.reporter import EventSink, ForwardingReporter
from effcli.execute.resources import WorkerSlot
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


def start(job: Job, events: EventSink | None, slots: Any) -> None:
    """A worker process's initializer: take this worker's slot (its environment: a GPU of its
    own, see effcli.execute.resources) before TensorFlow is imported, then `install` the job."""
    _die_with_parent()
    slot: WorkerSlot = slots.get()
    os.environ.update(slot.env)
    install(job, events)


def _die_with_parent() -> None:
    """Linux: end this worker when the scheduler dies, even by SIGKILL (its pool could not tell
    it): an orphan would hold its memory and keep writing into a run directory a rerun owns."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    pr_set_pdeathsig = 1
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, int(signal.SIGTERM), 0, 0, 0)
    if os.getppid() == 1:  # the parent was already gone before the call
        os._exit(1)


def install(job: Job, events: EventSink | None = None) -> None:
    """Prepare this worker for `job` (once per job): quiet native logs, its share of the cores,
    the plan and its workspace, whose epochs go to `events` (the scheduler's progress)."""
    if _current.get("digest") == job.digest:
        return
    if "quiet" not in _current:
        from effcli._native import native_quiet
        from effcli._tf import configure

        _current["quiet"] = native_quiet()
        _current["quiet"].__enter__()  # for the worker's lifetime
        configure(job.threads)
    plan: Plan = pickle.loads(job.plan)
    reporter = ForwardingReporter(events) if events is not None else None
    _current.update(digest=job.digest, workspace=Workspace(plan, Path(job.root), reporter))


def _workspace(job: Job | None, events: EventSink | None) -> Workspace:
    if job is not None:
        install(job, events)
    workspace: Workspace = _current["workspace"]
    return workspace


def build(key: str, job: Job | None = None, events: EventSink | None = None) -> NodeOutcome:
    """Build one node (its parent and dependencies are cached already)."""
    workspace = _workspace(job, events)
    try:
        return workspace.build(workspace.plan.nodes[key])
    finally:
        workspace.forget()


def finish(unit: str, job: Job | None = None, events: EventSink | None = None) -> VariantOutcome:
    """Export, measure and record one variant's replicate (Variant.unit) whose leaf is cached."""
    workspace = _workspace(job, events)
    try:
        return workspace.finish(workspace.plan.variant(unit))
    finally:
        workspace.forget()
