"""Progress events of a run: the CLI renders them; tests and worker processes drop them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from effcli.plan import Node, Plan, Variant


class Reporter(Protocol):
    """Receives progress events, always in the process that started the run."""

    def started(self, plan: Plan, pending: list[Variant], skipped: int) -> None: ...
    def node_started(self, node: Node) -> None: ...
    def epoch(self, node: Node, epoch: int, epochs: int, logs: dict[str, float]) -> None: ...
    def node_finished(self, node: Node, cached: bool, seconds: float) -> None: ...
    def variant_finished(self, variant: Variant, status: str, error: str) -> None: ...
    def finished(self) -> None: ...


class NullReporter:
    """A reporter that drops every event."""

    def started(self, plan: Plan, pending: list[Variant], skipped: int) -> None:
        pass

    def node_started(self, node: Node) -> None:
        pass

    def epoch(self, node: Node, epoch: int, epochs: int, logs: dict[str, float]) -> None:
        pass

    def node_finished(self, node: Node, cached: bool, seconds: float) -> None:
        pass

    def variant_finished(self, variant: Variant, status: str, error: str) -> None:
        pass

    def finished(self) -> None:
        pass
