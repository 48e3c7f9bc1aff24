"""The Executor interface and the executor registry."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

from effcli.errors import FatalError
from effcli.execute.workspace import Workspace
from effcli.plan import Plan, Variant
from effcli.registry import Registry


class Executor(ABC):
    """Decides where and in which order nodes run; the Workspace does the work of each.

    The contract: build every node the pending variants need (parents and dependencies first,
    each once), finish each pending variant whose leaf was built, and fail (`workspace.fail`)
    each one whose chain has a failed node; pass every outcome to `workspace.record` in this
    process. A node failure must become failed rows for its variants, not stop the sweep.
    """

    name: ClassVar[str]

    def __init__(self, jobs: int | None = None, address: str | None = None) -> None:
        self.jobs = jobs  # parallel workers, for executors that have them (None: the default)
        self.address = address  # a cluster to join, for executors that have one

    @abstractmethod
    def run(self, plan: Plan, pending: list[Variant], workspace: Workspace) -> None:
        """Do the pending variants' work (see the class docstring)."""


executors: Registry[Executor] = Registry("executor", "effcli.execute.backends", Executor)


class WorkersFailed(FatalError):
    """The worker processes stopped (could not start, or died): rows already written stay;
    `auto` goes on in this process, an explicitly chosen executor stops the run."""
