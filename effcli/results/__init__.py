"""What a run keeps: the run-directory layout (rundir.py) and the results CSV (store.py)."""

from effcli.results.rundir import ArtifactDir, RunDir
from effcli.results.store import FIXED_COLUMNS, METRIC_COLUMNS, ResultsStore

__all__ = ["FIXED_COLUMNS", "METRIC_COLUMNS", "ArtifactDir", "ResultsStore", "RunDir"]
