"""In-process executor: a depth-first walk, so a parent's model is in memory for its children."""

from __future__ import annotations

from effcli.execute.base import Executor, executors
from effcli.execute.workspace import Workspace, one_line
from effcli.plan import Node, Plan, Variant


@executors.register("local")
class LocalExecutor(Executor):
    def run(self, plan: Plan, pending: list[Variant], workspace: Workspace) -> None:
        needed = {key for variant in pending for key in variant.nodes}
        finishing = {variant.id for variant in pending}

        def visit(node: Node) -> None:
            try:
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
