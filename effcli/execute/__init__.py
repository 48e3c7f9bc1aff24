"""Run a plan: executors walk the DAG; the workspace builds, caches and measures nodes."""

from effcli.execute.base import Executor, Reporter, executors
from effcli.execute.runner import RunSummary, run_plan
from effcli.execute.workspace import RunDir, Workspace

__all__ = ["Executor", "Reporter", "RunDir", "RunSummary", "Workspace", "executors", "run_plan"]
