"""Scheduling for executors with workers: a node is submitted as soon as its parent and
dependencies are built, so independent branches train side by side; shared prefixes still run
once (each node is built by one worker and cached before its children start). This process only
schedules and records outcomes; the workers (effcli.execute._worker) do the work.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, BrokenExecutor, Future, wait
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from effcli._tf import node_threads
from effcli.errors import one_line
from effcli.execute import _worker
from effcli.execute.base import Executor, WorkersFailed
from effcli.execute.resources import default_workers, jobs_warning, usable_cores, visible_gpus
from effcli.execute.workspace import NodeOutcome, VariantOutcome, Workspace
from effcli.plan import Node, Plan, Variant

Submit = Callable[..., Future[Any]]
Event = tuple[str, int, int, dict[str, float]]  # (node key, epoch, epochs, logs)
POLL_SECONDS = 0.25  # how often progress events from workers are shown while nodes run


@dataclass(frozen=True)
class WorkerPool:
    """What a backend gives the scheduler: `submit(task, *args) -> Future` (task is
    `_worker.build` or `_worker.finish`, on a worker with the job installed) and `events()`,
    the progress events workers sent since the last call."""

    submit: Submit
    events: Callable[[], list[Event]]


class ParallelExecutor(Executor):
    """Runs nodes on worker processes; subclasses say how a task reaches a worker (`pool`)."""

    @abstractmethod
    def pool(self, job: _worker.Job, workers: int) -> AbstractContextManager[WorkerPool]:
        """A context giving the WorkerPool of `workers` workers, each with `job` installed."""

    def workers(self) -> int:
        """`--jobs`, else one per usable core (one per GPU on a GPU machine)."""
        return self.jobs or default_workers(usable_cores(), visible_gpus())

    def run(self, plan: Plan, pending: list[Variant], workspace: Workspace) -> None:
        workers = max(1, self.workers())
        too_many = jobs_warning(workers, usable_cores()) if not self.address else ""
        if too_many:
            workspace.reporter.note(too_many, warning=True)
        needed = plan.closure({key for v in pending for key in v.nodes})
        done = {key for key in needed if workspace.node_done(key)}
        failed: dict[str, str] = {}
        finishing = {v.unit: v for v in pending}
        running: dict[Future[Any], Node | Variant] = {}
        for key in sorted(done):  # cached before this run
            workspace.record(NodeOutcome(key, ok=True, cached=True))
        # Every worker trains with the threads a node gets in this process (effcli._tf): a node's
        # numbers must not depend on the executor that ran it.
        job = _worker.Job.of(plan, workspace.dir.root, node_threads())
        height = _heights(plan, needed)
        with self.pool(job, workers) as pool:
            while True:
                # Finishing a variant first (short, and its row lands), then the node with the
                # longest chain still below it (the critical path), one task per free worker:
                # tasks queued inside the pool could not be reordered as results come in.
                for variant in list(finishing.values()):
                    broken = sorted(plan.closure(set(variant.nodes)) & set(failed))
                    if broken:  # a node it needs failed: the variant fails with its reason
                        del finishing[variant.unit]
                        workspace.record(workspace.fail(variant, failed[broken[0]]))
                busy = {item.key for item in running.values() if isinstance(item, Node)}
                ready: list[Node | Variant] = [
                    v for v in finishing.values() if v.leaf in done
                ] + sorted(
                    (
                        node
                        for node in plan.nodes.values()
                        if node.key in needed and _ready(node, done, failed, busy)
                    ),
                    key=lambda node: -height[node.key],
                )
                for item in ready[: max(0, workers - len(running))]:
                    if isinstance(item, Node):
                        workspace.started(item)
                        running[pool.submit(_worker.build, item.key)] = item
                    else:
                        del finishing[item.unit]
                        running[pool.submit(_worker.finish, item.unit)] = item
                if not running:
                    break
                finished: set[Future[Any]] = set()
                while not finished:
                    finished, _ = wait(list(running), POLL_SECONDS, FIRST_COMPLETED)
                    _show(pool.events(), plan, workspace)
                for future in finished:
                    item = running.pop(future)
                    outcome = self._outcome(future, item, workspace)
                    if isinstance(outcome, NodeOutcome) and isinstance(item, Node):
                        if outcome.ok:
                            done.add(outcome.key)
                        else:
                            failed[outcome.key] = f"{item.kind}: {outcome.error}"
                    workspace.record(outcome)

    def _outcome(
        self, future: Future[Any], item: Node | Variant, workspace: Workspace
    ) -> NodeOutcome | VariantOutcome:
        """The task's outcome; a task that raised instead of returning one (a worker killed
        mid-task, say) fails its node or variant with the reason. A dead pool stops the run."""
        try:
            result: NodeOutcome | VariantOutcome = future.result()
            return result
        except BrokenExecutor as exc:
            raise WorkersFailed(
                f"the {self.name} executor's workers stopped ({one_line(exc, 200)})"
            ) from None
        except Exception as exc:
            reason = f"worker: {one_line(exc, 300)}"
            if isinstance(item, Node):
                return NodeOutcome(item.key, ok=False, error=reason)
            return workspace.fail(item, f"export/measure: {reason}")


def _show(events: list[Event], plan: Plan, workspace: Workspace) -> None:
    for key, epoch, epochs, logs in events:
        if key in plan.nodes:
            workspace.reporter.epoch(plan.nodes[key], epoch, epochs, logs)


def _heights(plan: Plan, needed: set[str]) -> dict[str, int]:
    """For each needed node, the most nodes on a path from it to a leaf (a dependency, such as a
    teacher, comes before every node of the chain that needs it)."""
    after: dict[str, list[str]] = {key: [] for key in needed}
    for key in needed:
        node = plan.nodes[key]
        for before in node.needs:
            if before in after:
                after[before].append(key)
    height: dict[str, int] = {}

    def of(key: str) -> int:
        if key not in height:
            height[key] = 1 + max((of(k) for k in after[key]), default=0)
        return height[key]

    return {key: of(key) for key in needed}


def _ready(node: Node, done: set[str], failed: dict[str, str], busy: set[str]) -> bool:
    if node.key in done or node.key in failed or node.key in busy:
        return False
    needs = node.needs
    return all(key in done for key in needs)
