"""In-process executor: a depth-first walk, so a parent's model is in memory for its children.

A node with dependencies (a student's teacher) first builds them, and their chains, if the walk
has not reached them yet.
"""

from __future__ import annotations

from effcli.execute.base import Executor, executors
from effcli.execute.workspace import Workspace
from effcli.plan import Node, Plan, Variant


@executors.register("local")
class LocalExecutor(Executor):
    def run(self, plan: Plan, pending: list[Variant], workspace: Workspace) -> None:
        needed = {key for variant in pending for key in variant.nodes}
        finishing = {variant.unit for variant in pending}

        def build(node: Node) -> str:
            """Build one node here; its error, or '' when it is built."""
            workspace.started(node)
            outcome = workspace.build(node)
            workspace.record(outcome)
            return outcome.error

        def ensure(key: str) -> str:
            """Build a dependency and its ancestors (cached ones are skipped)."""
            if workspace.node_done(key):
                return ""
            node = plan.nodes[key]
            for need in node.needs:
                error = ensure(need)
                if error:
                    return error
            return build(node)

        def visit(node: Node) -> None:
            error = ""
            for dep in node.deps:
                failed = ensure(dep)
                if failed:
                    error = f"dependency {plan.nodes[dep].label} failed: {failed}"
                    break
            error = error or build(node)
            if error:  # recorded for every variant that needs the node; the sweep goes on
                for variant in pending:
                    if node.key in variant.nodes:
                        workspace.record(workspace.fail(variant, f"{node.kind}: {error}"))
                return
            for variant in plan.variants_ending_at(node.key):
                if variant.unit in finishing:
                    workspace.record(workspace.finish(variant))
            for child in plan.children(node.key):
                if child.key in needed:
                    visit(child)
            workspace.release(node.key)

        for root in plan.children(None):
            if root.key in needed:
                visit(root)
