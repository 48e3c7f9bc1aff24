"""Progress events of a run: the CLI renders them; tests and worker processes drop them."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from effcli.plan import Node, Plan, Variant


class Reporter(Protocol):
    """Receives progress events, always in the process that started the run."""

    def started(self, plan: Plan, pending: list[Variant], skipped: int) -> None: ...
    def node_started(self, node: Node) -> None: ...
    def epoch(self, node: Node, epoch: int, epochs: int, logs: dict[str, float]) -> None: ...
    def node_finished(self, node: Node, cached: bool, seconds: float) -> None: ...
    def variant_finished(self, variant: Variant, status: str, error: str) -> None: ...
    def note(self, message: str, warning: bool = False) -> None: ...
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

    def note(self, message: str, warning: bool = False) -> None:
        pass

    def finished(self) -> None:
        pass


class ForwardingReporter(NullReporter):
    """A worker's reporter: sends each epoch to the scheduler (`events.put_nowait`) as
    `(node key, epoch, epochs, logs)`; the scheduler reports it in its own process. Other
    events are the scheduler's own (it starts and records every node)."""

    def __init__(self, events: EventSink) -> None:
        self.events = events

    def epoch(self, node: Node, epoch: int, epochs: int, logs: dict[str, float]) -> None:
        # Progress is best-effort: a full or closed queue never fails a node.
        with contextlib.suppress(Exception):
            self.events.put_nowait((node.key, epoch, epochs, dict(logs)))


class EventSink(Protocol):
    """Where a worker puts progress events: a multiprocessing or Ray queue."""

    def put_nowait(self, item: Any) -> None: ...
