"""results.csv: append a row atomically (write a temp file, fsync, rename) under a file lock.

Column order: the fixed columns, the identity columns (the named pipeline, the replicate and its
seed, the baseline), the sweep knobs (names with a dot), the standard metrics, then
stage-reported metrics. A row is identified by (variant, replicate): a row for one that is
already present replaces it (a retry).
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

from effcli._atomic import locked, replacing
from effcli.results.rundir import RESULTS_LOCK

FIXED_COLUMNS = ["variant", "label", "pipeline", "status", "error"]
METRIC_COLUMNS = [
    "accuracy",
    "tflite_accuracy",
    "params",
    "nonzero_params",
    "sparsity",
    "kernel_sparsity",
    "unique_weights",
    "macs",
    "peak_memory_bytes",
    "tflite_bytes",
    "gzip_bytes",
    "metadata_bytes",
    "latency_ms_p50",
    "latency_ms_p95",
    "train_seconds",
    "train_steps",
    "train_samples_seen",
    "train_peak_rss_bytes",
]


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return repr(value)
    return str(value)


# What a row is besides its knobs: the named pipeline, the replicate, the reference variant.
IDENTITY_COLUMNS = ["branch", "replicate", "replicate_seed", "baseline"]


def order_columns(columns: list[str]) -> list[str]:
    """Fixed, identity, then knobs (in first-seen order), then standard metrics, then the rest."""
    knobs = [c for c in columns if "." in c and c not in FIXED_COLUMNS]
    identity = [c for c in IDENTITY_COLUMNS if c in columns]
    placed = {*FIXED_COLUMNS, *METRIC_COLUMNS, *knobs, *identity}
    rest = [c for c in columns if c not in placed]
    return [*FIXED_COLUMNS, *identity, *knobs, *METRIC_COLUMNS, *rest]


def row_key(row: dict[str, Any]) -> tuple[str, int]:
    """(variant, replicate) identifies a row; rows without a replicate are replicate 0."""
    replicate = row.get("replicate")
    return str(row["variant"]), int(float(replicate)) if replicate not in (None, "") else 0


class ResultsStore:
    """The results CSV of one run directory."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock_path = self.path.with_name(RESULTS_LOCK)

    def rows(self) -> list[dict[str, str]]:
        if not self.path.exists():
            return []
        with open(self.path, newline="", encoding="utf-8") as handle:
            return list(csv.DictReader(handle))

    def statuses(self) -> dict[tuple[str, int], str]:
        """(variant, replicate) -> status of every recorded row."""
        return {row_key(row): row.get("status", "") for row in self.rows()}

    def append(self, row: dict[str, Any]) -> None:
        """Add or replace one row (a variant's replicate); the file is never seen half-written."""
        key = row_key(row)
        with locked(self._lock_path):
            rows = [r for r in self.rows() if row_key(r) != key]
            rows.append({k: _cell(v) for k, v in row.items()})
            seen: dict[str, None] = {}
            for r in rows:
                seen.update(dict.fromkeys(r))
            columns = order_columns(list(seen))
            with (
                replacing(self.path, durable=True) as tmp,
                open(tmp, "w", newline="", encoding="utf-8") as handle,
            ):
                writer = csv.DictWriter(handle, fieldnames=columns, restval="")
                writer.writeheader()
                writer.writerows(rows)
