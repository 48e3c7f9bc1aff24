"""Worker processes on this machine (`--executor process --jobs N`).

A node is submitted as soon as its parent and dependencies are built, so independent branches
train side by side; shared prefixes still run once (each node is built by one worker and cached
before its children start). Each worker limits TensorFlow to its share of the cores, so N jobs
do not oversubscribe the machine. Workers write the same cache, artifacts and results.csv (under
its file lock) as the local executor; this process only schedules and reports.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from contextlib import contextmanager
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from effcli.execute.base import Executor, executors
from effcli.execute.workspace import Workspace, one_line
from effcli.plan import Node, Plan, Variant

_WORKER: dict[str, Any] = {}


class _Silent:
    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: None


def _init_worker(threads: int) -> None:
    """Runs once per worker: quiet native logs, and this worker's share of the cores."""
    if "threads" in _WORKER:
        return
    _WORKER["threads"] = threads
    from effcli._native import native_quiet

    _WORKER["quiet"] = native_quiet()
    _WORKER["quiet"].__enter__()
    from effcli._tf import tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)


def _workspace(recipe: str, root: str) -> Workspace:
    """One plan and workspace per worker, loaded on its first task."""
    from effcli.plan import load_plan

    key = (recipe, root)
    if _WORKER.get("key") != key:
        _WORKER["key"] = key
        _WORKER["workspace"] = Workspace(load_plan(recipe), Path(root), _Silent())
    return _WORKER["workspace"]


def _build(recipe: str, root: str, node_key: str, threads: int = 0) -> dict[str, Any]:
    if threads:
        _init_worker(threads)
    workspace = _workspace(recipe, root)
    start = time.perf_counter()
    try:
        workspace.build(workspace.plan.nodes[node_key])
        return {"ok": True, "seconds": time.perf_counter() - start}
    except Exception as exc:  # recorded by the scheduler as failed rows
        return {"ok": False, "error": one_line(exc)}
    finally:
        workspace.forget()


def _finish(recipe: str, root: str, variant_id: str, threads: int = 0) -> dict[str, Any]:
    if threads:
        _init_worker(threads)
    workspace = _workspace(recipe, root)
    variant = next(v for v in workspace.plan.variants if v.id == variant_id)
    ok, failed = workspace.ok, workspace.failed
    try:
        workspace.finish(variant)
    finally:
        workspace.forget()
    return {"ok": workspace.ok - ok, "failed": workspace.failed - failed}


@executors.register("process")
class ProcessExecutor(Executor):
    def run(self, plan: Plan, pending: list[Variant], workspace: Workspace) -> None:
        jobs = max(1, self.jobs)
        threads = max(1, (os.cpu_count() or 1) // jobs)
        recipe, root = str(plan.source.path), str(workspace.dir.root)
        needed = _closure(plan, {key for v in pending for key in v.nodes})
        done = {key for key in needed if workspace.dir.node_done(key)}
        failed: dict[str, str] = {}
        finishing = {v.id: v for v in pending}
        running: dict[Future[dict[str, Any]], tuple[str, Any]] = {}
        with self.pool(jobs, threads) as submit:
            reported: set[str] = set()
            while True:
                for key in sorted(done - reported):  # cached before this run
                    if key in needed:
                        workspace.cached += 1
                        workspace.reporter.node_finished(plan.nodes[key], cached=True, seconds=0.0)
                    reported.add(key)
                busy = {item.key for what, item in running.values() if what == "build"}
                for node in plan.nodes.values():
                    if node.key in needed and self._ready(node, done, failed, busy):
                        workspace.reporter.node_started(node)
                        running[submit(_build, recipe, root, node.key)] = ("build", node)
                        busy.add(node.key)
                for variant in list(finishing.values()):
                    if variant.leaf in done:
                        del finishing[variant.id]
                        running[submit(_finish, recipe, root, variant.id)] = (
                            "finish",
                            variant,
                        )
                    else:
                        broken = sorted(_closure(plan, set(variant.nodes)) & set(failed))
                        if broken:  # a node it needs failed: the variant fails with its reason
                            del finishing[variant.id]
                            workspace.fail(variant, failed[broken[0]])
                if not running:
                    break
                finished, _ = wait(list(running), return_when=FIRST_COMPLETED)
                for future in finished:
                    what, item = running.pop(future)
                    result = future.result()
                    if what == "build":
                        if result["ok"]:
                            done.add(item.key)
                            reported.add(item.key)
                            workspace.ran += 1
                            workspace.reporter.node_finished(
                                item, cached=False, seconds=result["seconds"]
                            )
                        else:
                            failed[item.key] = f"{item.kind}: {result['error']}"
                    else:
                        workspace.ok += result["ok"]
                        workspace.failed += result["failed"]
                        status = "ok" if result["ok"] else "failed"
                        workspace.reporter.variant_finished(item, status, "")

    @contextmanager
    def pool(self, jobs: int, threads: int) -> Iterator[Callable[..., Future[dict[str, Any]]]]:
        """A function submitting a task to the workers, returning a Future."""
        context = get_context("spawn")  # TensorFlow does not survive fork
        with ProcessPoolExecutor(jobs, context, _init_worker, (threads,)) as pool:
            yield pool.submit

    @staticmethod
    def _ready(node: Node, done: set[str], failed: dict[str, str], busy: set[str]) -> bool:
        if node.key in done or node.key in failed or node.key in busy:
            return False
        needs = ([node.parent] if node.parent else []) + list(node.deps)
        return all(key in done for key in needs)


def _closure(plan: Plan, keys: set[str]) -> set[str]:
    """The nodes, their ancestors, and (recursively) the nodes they depend on."""
    out: set[str] = set()
    stack = list(keys)
    while stack:
        key = stack.pop()
        if key in out:
            continue
        out.add(key)
        node = plan.nodes[key]
        if node.parent:
            stack.append(node.parent)
        stack.extend(node.deps)
    return out
