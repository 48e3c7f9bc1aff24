"""What every experiment tracker offers, the registry of trackers, and `open_tracker`.

A tracker copies a run directory into an experiment-tracking store: one tracked run per
results.csv row (each variant replicate, each alternative), nested under one parent run for the
run directory. It reads only the run directory, never TensorFlow or the executor, and keeps a
ledger (rundir.TRACKING) of what it logged, so nothing is logged twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Protocol

from effcli.errors import EffdlError, UsageError, one_line
from effcli.registry import Registry, UnknownName
from effcli.results import RunDir
from effcli.track import _rows


class TrackingError(EffdlError):
    """A row could not be logged (the store refused it or went away); the ledger does not hold
    it, so the next `log_pending` (`effdl export mlflow RUN_DIR`) logs it."""


@dataclass
class TrackSummary:
    """What one `log_pending` did. `failed` holds one `<unit>: <reason>` line per row not logged."""

    logged: int
    skipped: int  # already in the ledger, unchanged
    failed: list[str] = field(default_factory=list)
    uri: str = ""
    experiment: str = ""


class Tracker(Protocol):
    """An open connection to a tracking store for one run directory."""

    uri: str
    experiment: str
    run_dir: Path

    def log_pending(self) -> TrackSummary:
        """Log every row of results.csv that the ledger does not hold (or holds changed)."""
        ...

    def log_unit(self, unit: str) -> None:
        """Log one row by unit name (Variant.unit) and its alternatives' rows; raise on failure."""
        ...

    def close(self) -> None:
        """End the parent run."""
        ...


class RowTracker:
    """What every backend does the same way: walk results.csv and log each row (`log_pending`),
    or one variant replicate's rows as it lands (`log_unit`); a backend writes one row in
    `_log_row` (False when its ledger already holds it unchanged)."""

    dir: RunDir
    uri: str
    experiment: str
    give_up_after: ClassVar[int] = 3  # rows failing in a row before the store counts as gone

    def _log_row(self, row: _rows.Row) -> bool:
        raise NotImplementedError

    def _reason(self, exc: BaseException) -> str:
        """Why a row was not logged, in one short line."""
        return one_line(exc, 300)

    def _prepare(self) -> None:
        """Before `log_pending` walks the rows (e.g. open the experiment)."""

    def log_pending(self) -> TrackSummary:
        self._prepare()  # the summary names the experiment even when nothing is pending
        summary = TrackSummary(0, 0, [], self.uri, self.experiment)
        streak = 0
        for row in _rows.read_rows(self.dir):
            if streak >= self.give_up_after:
                summary.failed.append(f"{row.unit}: not tried ({streak} failed in a row)")
                continue
            try:
                logged = self._log_row(row)
            except Exception as exc:
                streak += 1
                summary.failed.append(f"{row.unit}: {self._reason(exc)}")
                continue
            streak = 0
            if logged:
                summary.logged += 1
            else:
                summary.skipped += 1
        return summary

    def log_unit(self, unit: str) -> None:
        rows = [row for row in _rows.read_rows(self.dir) if row.owner == unit]
        if not rows:
            raise TrackingError(f"results.csv in {self.dir.root} has no row {unit}")
        problems = []
        for row in rows:  # the row, then its alternatives: one failing does not stop the others
            try:
                self._log_row(row)
            except Exception as exc:
                why = self._reason(exc)
                problems.append(f"{row.unit}: {why}" if row.unit != unit else why)
        if problems:
            raise TrackingError("; ".join(problems))


# A backend registers a class whose constructor is (run_dir, *, uri, experiment) and that
# checks the store is reachable before returning (so a run fails before it trains anything).
trackers: Registry[Tracker] = Registry("tracker", "effcli.track")


def open_tracker(
    kind: str, run_dir: Path, *, uri: str | None = None, experiment: str | None = None
) -> Tracker:
    """Open the tracker `kind` ("mlflow") for `run_dir`.

    Raises UsageError when the kind is unknown, its package is not installed, or the store does
    not answer."""
    try:
        cls = trackers.get(kind)
    except UnknownName as exc:
        raise UsageError(str(exc)) from None
    return cls(Path(run_dir), uri=uri, experiment=experiment)  # type: ignore[call-arg]
