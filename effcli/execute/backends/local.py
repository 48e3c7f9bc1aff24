"""In-process executor: a depth-first walk, so a parent's model is in memory for its children.

A node with dependencies (a student's teacher) first builds them, and their chains, if the walk
has not reached them yet.
"""

from __future__ import annotations

from effcli.execute.base import Executor, executors
from effcli.execute.workspace import Workspace, one_line
from effcli.plan import Node, Plan, Variant


@executors.register("local")
class LocalExecutor(Executor):
    def run(self, plan: Plan, pending: list[Variant], workspace: Workspace) -> None:
        needed = {key for variant in pending for key in variant.nodes}
        finishing = {variant.id for variant in pending}

        def ensure(key: str) -> None:
            """Build a dependency and its ancestors (cached ones are skipped)."""
            node = plan.nodes[key]
            if workspace.dir.node_done(key):
                return
            if node.parent:
                ensure(node.parent)
            for dep in node.deps:
                ensure(dep)
            workspace.build(node)

        def visit(node: Node) -> None:
            try:
                for dep in node.deps:
                    try:
                        ensure(dep)
                    except Exception as exc:
                        raise RuntimeError(
                            f"dependency {plan.nodes[dep].label} failed: {one_line(exc)}"
                        ) from exc
                workspace.build(node)
            except Exception as exc:  # any failure is recorded; the sweep goes on
                reason = one_line(exc)
                for variant in pending:
                    if node.key in variant.nodes:
                        workspace.fail(variant, f"{node.kind}: {reason}")
                return
            for variant in plan.variants_ending_at(node.key):
                if variant.id in finishing:
                    workspace.finish(variant)
            for child in plan.children(node.key):
                if child.key in needed:
                    visit(child)
            workspace.release(node.key)

        for root in plan.children(None):
            if root.key in needed:
                visit(root)
