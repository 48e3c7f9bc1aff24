"""`--executor auto` (the default): worker processes when two or more nodes of the plan can run
at once and there is more than one usable core (or GPU), else this process.

Measured (docs/benchmarks.md): independent trainings on 2 workers ran 1.78x faster than one at a
time, while a plan that is one chain gains nothing from workers and pays their start-up (each
imports TensorFlow). If the workers cannot start or die, the rest of the run goes on in this
process; rows already written are kept.
"""

from __future__ import annotations

from effcli.execute.backends.local import LocalExecutor
from effcli.execute.backends.process import ProcessExecutor
from effcli.execute.base import Executor, WorkersFailed, executors
from effcli.execute.resources import default_workers, usable_cores, visible_gpus
from effcli.execute.workspace import Workspace
from effcli.plan import Plan, Variant


@executors.register("auto")
class AutoExecutor(Executor):
    def run(self, plan: Plan, pending: list[Variant], workspace: Workspace) -> None:
        cores = usable_cores()
        workers = self.jobs or default_workers(cores, visible_gpus())
        width = side_by_side(plan, pending, workspace)
        if workers > 1 and width > 1:
            workers = min(workers, width)
            workspace.reporter.note(
                f"executor: process, {workers} workers ({cores} usable cores; up to {width} "
                "nodes can run at once)"
            )
            try:
                ProcessExecutor(jobs=workers).run(plan, pending, workspace)
                return
            except WorkersFailed as exc:
                workspace.reporter.note(f"{exc}; going on in this process", warning=True)
                recorded = workspace.store.statuses()
                pending = [v for v in pending if (v.id, v.replicate) not in recorded]
        else:
            why = "one usable core" if workers <= 1 else "no two nodes can run at once"
            workspace.reporter.note(f"executor: local ({why})")
        LocalExecutor().run(plan, pending, workspace)


def side_by_side(plan: Plan, pending: list[Variant], workspace: Workspace) -> int:
    """How many nodes still to build can run at the same time, at least: the most nodes at one
    depth of the DAG they form (a node's parent and dependencies come first). Nodes at the same
    longest-path depth never need each other, so they can run side by side."""
    todo = {
        key
        for key in plan.closure({k for v in pending for k in v.nodes})
        if not workspace.node_done(key)
    }
    depth: dict[str, int] = {}

    def level(key: str) -> int:
        if key not in depth:
            node = plan.nodes[key]
            needs = node.needs
            depth[key] = 1 + max((level(k) for k in needs if k in todo), default=-1)
        return depth[key]

    counts: dict[int, int] = {}
    for key in todo:
        counts[level(key)] = counts.get(level(key), 0) + 1
    return max(counts.values(), default=0)
