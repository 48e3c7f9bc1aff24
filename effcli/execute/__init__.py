"""Run a plan: executors walk the DAG; the workspace builds, caches and measures nodes."""

from effcli.execute.base import Executor, executors
from effcli.execute.reporter import NullReporter, Reporter
from effcli.execute.runner import RunSummary, run_plan
from effcli.execute.workspace import NodeOutcome, VariantOutcome, Workspace

__all__ = [
    "Executor",
    "NodeOutcome",
    "NullReporter",
    "Reporter",
    "RunSummary",
    "VariantOutcome",
    "Workspace",
    "executors",
    "run_plan",
]
