"""Scheduling for executors with workers: a node is submitted as soon as its parent and
dependencies are built, so independent branches train side by side; shared prefixes still run
once (each node is built by one worker and cached before its children start). This process only
schedules and records outcomes; the workers (effcli.execute._worker) do the work.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, wait
from contextlib import AbstractContextManager
from typing import Any

from effcli._tf import node_threads
from effcli.execute import _worker
from effcli.execute.base import Executor
from effcli.execute.workspace import NodeOutcome, VariantOutcome, Workspace
from effcli.plan import Node, Plan, Variant

Submit = Callable[..., Future[Any]]


class ParallelExecutor(Executor):
    """Runs nodes on `jobs` workers; subclasses say how a task reaches a worker (`pool`)."""

    @abstractmethod
    def pool(self, job: _worker.Job) -> AbstractContextManager[Submit]:
        """A context giving `submit(task, *args) -> Future`, where task is `_worker.build` or
        `_worker.finish` and every worker has `job` installed."""

    def run(self, plan: Plan, pending: list[Variant], workspace: Workspace) -> None:
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
        with self.pool(job) as submit:
            while True:
                busy = {item.key for item in running.values() if isinstance(item, Node)}
                for node in plan.nodes.values():
                    if node.key in needed and _ready(node, done, failed, busy):
                        workspace.started(node)
                        running[submit(_worker.build, node.key)] = node
                        busy.add(node.key)
                for variant in list(finishing.values()):
                    if variant.leaf in done:
                        del finishing[variant.unit]
                        running[submit(_worker.finish, variant.unit)] = variant
                        continue
                    broken = sorted(plan.closure(set(variant.nodes)) & set(failed))
                    if broken:  # a node it needs failed: the variant fails with its reason
                        del finishing[variant.unit]
                        workspace.record(workspace.fail(variant, failed[broken[0]]))
                if not running:
                    break
                finished, _ = wait(list(running), return_when=FIRST_COMPLETED)
                for future in finished:
                    item = running.pop(future)
                    outcome: NodeOutcome | VariantOutcome = future.result()
                    if isinstance(outcome, NodeOutcome) and isinstance(item, Node):
                        if outcome.ok:
                            done.add(outcome.key)
                        else:
                            failed[outcome.key] = f"{item.kind}: {outcome.error}"
                    workspace.record(outcome)


def _ready(node: Node, done: set[str], failed: dict[str, str], busy: set[str]) -> bool:
    if node.key in done or node.key in failed or node.key in busy:
        return False
    needs = ([node.parent] if node.parent else []) + list(node.deps)
    return all(key in done for key in needs)
