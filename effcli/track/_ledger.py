"""tracking.json: what a tracker already logged from this run directory, per store.

```
{"version": 1, "stores": [{"uri": ..., "experiment": ..., "experiment_id": ...,
                           "parent_run_id": ..., "units": {<unit>: {"run_id": ..., "digest": ...}}}]}
```
One entry per (tracking URI, experiment id): pointing the tracker at another store logs
everything again there, and a unit is added only once its run is completely logged, so a row
that failed to log is logged by the next `log_pending`. Readers and writers hold TRACKING_LOCK
around check-log-record, so `effdl export mlflow` during a run does not log a row twice.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from effcli import _atomic
from effcli.results.rundir import TRACKING, TRACKING_LOCK

VERSION = 1


class Ledger:
    """The ledger entry of one store (URI + experiment) inside one run directory."""

    def __init__(self, root: Path, uri: str, experiment_id: str, experiment: str) -> None:
        self.path = Path(root) / TRACKING
        self._lock_path = Path(root) / TRACKING_LOCK
        self.uri = uri
        self.experiment_id = experiment_id
        self.experiment = experiment

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the ledger lock (re-read the entry inside: another process may have written).
        Not re-entrant: flock on a second descriptor would wait for the first."""
        with _atomic.locked(self._lock_path):
            yield

    def _read(self) -> dict[str, Any]:
        if not self.path.is_file():
            return {"version": VERSION, "stores": []}
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            # A ledger that cannot be read costs duplicates, not results: start over.
            return {"version": VERSION, "stores": []}
        if not isinstance(data, dict) or not isinstance(data.get("stores"), list):
            return {"version": VERSION, "stores": []}
        return data

    def _mine(self, data: dict[str, Any]) -> dict[str, Any] | None:
        for entry in data["stores"]:
            if entry.get("uri") == self.uri and entry.get("experiment_id") == self.experiment_id:
                return entry
        return None

    def entry(self) -> dict[str, Any]:
        """This store's entry (a fresh one when the ledger has none)."""
        found = self._mine(self._read())
        fresh: dict[str, Any] = {
            "uri": self.uri,
            "experiment": self.experiment,
            "experiment_id": self.experiment_id,
            "parent_run_id": None,
            "units": {},
        }
        return found if found is not None else fresh

    def write(self, entry: dict[str, Any]) -> None:
        """Replace this store's entry (call under `locked`)."""
        data = self._read()
        old = self._mine(data)
        data["stores"] = [e for e in data["stores"] if e is not old]
        data["stores"].append(entry)
        data["version"] = VERSION
        _atomic.write_json(self.path, data)

    def units(self) -> dict[str, dict[str, Any]]:
        return dict(self.entry().get("units", {}))

    def parent(self) -> str | None:
        parent = self.entry().get("parent_run_id")
        return str(parent) if parent else None

    def set_parent(self, run_id: str | None) -> None:
        """Record the parent run; a new parent (the old one is gone) forgets every unit (call
        under `locked`)."""
        entry = self.entry()
        if entry.get("parent_run_id") != run_id:
            entry["units"] = {}
        entry["parent_run_id"] = run_id
        self.write(entry)

    def record(self, unit: str, run_id: str, digest: str) -> None:
        """Add a completely logged unit (call under `locked`)."""
        entry = self.entry()
        entry.setdefault("units", {})[unit] = {"run_id": run_id, "digest": digest}
        self.write(entry)
