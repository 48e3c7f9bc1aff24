"""The Executor interface, the progress Reporter protocol, and the executor registry."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, ClassVar, Protocol

from effcli.registry import Registry

if TYPE_CHECKING:
    from effcli.execute.workspace import Workspace
    from effcli.plan import Node, Plan, Variant


class Reporter(Protocol):
    """Receives progress events; the CLI renders them, tests may ignore them."""

    def started(self, plan: Plan, pending: list[Variant], skipped: int) -> None: ...
    def node_started(self, node: Node) -> None: ...
    def epoch(self, node: Node, epoch: int, epochs: int, logs: dict[str, float]) -> None: ...
    def node_finished(self, node: Node, cached: bool, seconds: float) -> None: ...
    def variant_finished(self, variant: Variant, status: str, error: str) -> None: ...
    def finished(self) -> None: ...


class Executor(ABC):
    """Decides where and in which order nodes run; the Workspace does the work of each."""

    name: ClassVar[str]

    def __init__(self, jobs: int = 1, address: str | None = None) -> None:
        self.jobs = jobs  # parallel workers, for executors that have them
        self.address = address  # a cluster to join, for executors that have one

    @abstractmethod
    def run(self, plan: Plan, pending: list[Variant], workspace: Workspace) -> None:
        """Build every node the pending variants need, then finish each variant (row + artifact).

        A node failure must become failed rows for its variants, not stop the sweep.
        """


executors: Registry[Executor] = Registry("executor", "effcli.execute.backends", Executor)
