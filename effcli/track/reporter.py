"""TrackingReporter: a run's progress events, and each finished row logged as it lands.

Tracking never stops a run: a row that cannot be logged is one warning, the run goes on, and the
ledger does not hold the row, so the next `log_pending` (`effdl export mlflow RUN_DIR`, or the
catch-up `effdl run` does after the run) logs it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from effcli.track.base import Tracker

if TYPE_CHECKING:
    from effcli.execute.reporter import Reporter
    from effcli.plan import Node, Plan, Variant


class TrackingReporter:
    """Forwards every event to `inner`; logs each finished variant replicate to `tracker`."""

    def __init__(self, inner: Reporter, tracker: Tracker, warn: Callable[[str], None]) -> None:
        self.inner = inner
        self.tracker = tracker
        self.warn = warn
        self.kind = str(getattr(tracker, "name", "tracking"))  # the registered name: "mlflow"

    def _later(self) -> str:
        return f"`effdl export {self.kind} {self.tracker.run_dir}` logs it later"

    def started(self, plan: Plan, pending: list[Variant], skipped: int) -> None:
        self.inner.started(plan, pending, skipped)

    def node_started(self, node: Node) -> None:
        self.inner.node_started(node)

    def epoch(self, node: Node, epoch: int, epochs: int, logs: dict[str, float]) -> None:
        self.inner.epoch(node, epoch, epochs, logs)

    def node_finished(self, node: Node, cached: bool, seconds: float) -> None:
        self.inner.node_finished(node, cached, seconds)

    def variant_finished(self, variant: Variant, status: str, error: str) -> None:
        self.inner.variant_finished(variant, status, error)
        try:
            self.tracker.log_unit(variant.unit)
        except Exception as exc:  # tracking must never cost the run anything
            self.warn(f"{self.kind}: {variant.unit} not logged: {_line(exc)}; {self._later()}")

    def finished(self) -> None:
        """End the parent run, then pass the event on. (Rows this run did not log, e.g. those of
        an earlier run without tracking, are the caller's `log_pending` after the run.)"""
        try:
            self.tracker.close()
        except Exception as exc:
            self.warn(f"{self.kind}: could not end the parent run: {_line(exc)}")
        finally:
            self.inner.finished()

    def __getattr__(self, name: str) -> Any:
        # Events added to the Reporter protocol later still reach the wrapped reporter.
        return getattr(self.inner, name)


def _line(exc: BaseException) -> str:
    from effcli.errors import one_line

    return one_line(exc, 300)
