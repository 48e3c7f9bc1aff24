"""Progress display for `effdl run`: a live rich view on a terminal, plain lines otherwise."""

from __future__ import annotations

import time

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from effcli.plan import Node, Plan, Variant


class RichReporter:
    """Shows the variants done so far and, on a terminal, one line per running node with its
    epoch and validation accuracy (every executor: workers send their epochs back), and a
    plain line per finished node and variant everywhere."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.live = console.is_terminal
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[status]}"),
            console=console,
            transient=False,
        )
        self.task: TaskID | None = None
        self.nodes: dict[str, TaskID] = {}  # running node -> its line in the live view
        self._start = time.perf_counter()

    def _elapsed(self) -> str:
        return f"{time.perf_counter() - self._start:6.1f}s"

    def _print(self, line: str) -> None:
        (self.progress.console if self.task is not None else self.console).print(line)

    def started(self, plan: Plan, pending: list[Variant], skipped: int) -> None:
        what = f"{len(plan.first_replicates())} variants"
        if plan.replicates > 1:
            what += f" x {plan.replicates} replicates"
        self.console.print(
            f"[bold]{plan.name}[/]: {what}, {len(plan.nodes)} nodes; "
            f"{len(pending)} to run, {skipped} already in results.csv"
        )
        if self.live and pending:
            self.progress.start()
            self.task = self.progress.add_task("variants", total=len(pending), status="")

    def note(self, message: str, warning: bool = False) -> None:
        self._print(f"[yellow]warning:[/] {escape(message)}" if warning else escape(message))

    def node_started(self, node: Node) -> None:
        if self.task is not None and node.key not in self.nodes:
            self.nodes[node.key] = self.progress.add_task(
                escape(f"  {node.label} [{node.short}]"), total=None, status="starting"
            )

    def epoch(self, node: Node, epoch: int, epochs: int, logs: dict[str, float]) -> None:
        task = self.nodes.get(node.key)
        if task is None:
            return
        val = logs.get("val_accuracy")
        status = f"epoch {epoch}/{epochs}" + (f" val_acc {val:.3f}" if val is not None else "")
        self.progress.update(task, completed=epoch, total=epochs, status=escape(status))

    def node_finished(self, node: Node, cached: bool, seconds: float) -> None:
        task = self.nodes.pop(node.key, None)
        if task is not None:
            self.progress.remove_task(task)
        if cached:
            return
        self._print(
            escape(f"{self._elapsed()}  ran    {node.label} [{node.short}] in {seconds:.1f}s")
        )

    def variant_finished(self, variant: Variant, status: str, error: str) -> None:
        mark = "[green]ok[/]    " if status == "ok" else "[red]failed[/]"
        replicate = f" (replicate {variant.replicate})" if variant.replicate else ""
        name = escape(variant.label or variant.pipeline)
        line = f"{self._elapsed()}  {mark} {name}{replicate} [dim]{variant.unit}[/]"
        if error:
            line += f"  [red]{escape(error)}[/]"
        self._print(line)
        if self.task is not None:
            self.progress.advance(self.task)
        if status != "ok":  # a failed node reports no finish of its own: drop its line here
            for key in variant.nodes:
                task = self.nodes.pop(key, None)
                if task is not None:
                    self.progress.remove_task(task)

    def finished(self) -> None:
        if self.task is not None:
            for task in self.nodes.values():
                self.progress.remove_task(task)
            self.nodes.clear()
            self.progress.update(self.task, status="done")
            self.progress.stop()
