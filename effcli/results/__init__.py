"""The results CSV: one row per variant, rewritten atomically on every append."""

from effcli.results.store import FIXED_COLUMNS, METRIC_COLUMNS, ResultsStore

__all__ = ["FIXED_COLUMNS", "METRIC_COLUMNS", "ResultsStore"]
