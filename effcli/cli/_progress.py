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
    """Shows which variant/node runs, its epoch and validation accuracy, and elapsed time."""

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
        self._start = time.perf_counter()

    def _elapsed(self) -> str:
        return f"{time.perf_counter() - self._start:6.1f}s"

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

    def node_started(self, node: Node) -> None:
        if self.task is not None:
            self.progress.update(self.task, status=escape(f"{node.label} [{node.short}]"))

    def epoch(self, node: Node, epoch: int, epochs: int, logs: dict[str, float]) -> None:
        val = logs.get("val_accuracy")
        text = f"{node.label}: epoch {epoch}/{epochs}" + (
            f" val_acc {val:.3f}" if val is not None else ""
        )
        text = escape(text)
        if self.task is not None:
            self.progress.update(self.task, status=text)

    def node_finished(self, node: Node, cached: bool, seconds: float) -> None:
        if cached:
            return
        line = escape(f"{self._elapsed()}  ran    {node.label} [{node.short}] in {seconds:.1f}s")
        (self.progress.console if self.task is not None else self.console).print(line)

    def variant_finished(self, variant: Variant, status: str, error: str) -> None:
        mark = "[green]ok[/]    " if status == "ok" else "[red]failed[/]"
        replicate = f" (replicate {variant.replicate})" if variant.replicate else ""
        name = escape(variant.label or variant.pipeline)
        line = f"{self._elapsed()}  {mark} {name}{replicate} [dim]{variant.unit}[/]"
        if error:
            line += f"  [red]{escape(error)}[/]"
        (self.progress.console if self.task is not None else self.console).print(line)
        if self.task is not None:
            self.progress.advance(self.task)

    def finished(self) -> None:
        if self.task is not None:
            self.progress.update(self.task, status="done")
            self.progress.stop()
