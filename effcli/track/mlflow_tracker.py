"""MLflow: one parent run per run directory, one child run per results.csv row.

Optional (`pip install 'effdl[mlflow]'`): mlflow is imported when a tracker is opened, never by
`import effcli.track`. The default store is `MLFLOW_TRACKING_URI`, else `sqlite:///mlflow.db` in
the current folder (a relative SQLite path is made absolute: the ledger names the file, not the
folder a command happened to run in).
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from effcli import __version__
from effcli.errors import UsageError, one_line
from effcli.results import RunDir
from effcli.track import _rows
from effcli.track._ledger import Ledger
from effcli.track.base import RowTracker, trackers

INSTALL = "pip install 'effdl[mlflow]'"
DEFAULT_URI = "sqlite:///mlflow.db"
# MLflow retries an HTTP request 7 times with exponential backoff and waits 120 s for each by
# default: minutes before a dead server is reported. Opening checks the store with one try and a
# short timeout; a write during a run (which waits for it) tries 3 times, 20 s each, so a store
# that dies mid-run costs about a minute per row at worst (users' own settings win there).
CHECK = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "5"}
WRITE = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "20",
}
_BATCH = 100  # MLflow takes at most 100 params (and 1000 metrics) per log_batch call


def _client_class() -> Any:
    """mlflow's client class, or the line that says how to install it."""
    # No usage reports from a command-line run (this machine may have no network at all).
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    try:
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise UsageError(f"tracking with mlflow needs the mlflow extra: {INSTALL}") from None
    return MlflowClient


def resolve_uri(uri: str | None) -> str:
    """The tracking URI to use: `uri`, else MLFLOW_TRACKING_URI, else ./mlflow.db (absolute)."""
    uri = uri or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_URI
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri.startswith(prefix + "/"):
        path = uri[len(prefix) :]
        if path and path != ":memory:":
            return prefix + str(Path(path).resolve())
    return uri


@contextmanager
def _environment(values: dict[str, str], *, override: bool) -> Iterator[None]:
    """Set MLflow's HTTP limits for a block (MLflow reads them at each request); keep what the
    user set unless `override`. Also: no "View run at" line on stdout after each run."""
    values = {**values, "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true"}
    saved = {name: os.environ.get(name) for name in values}
    for name, value in values.items():
        if override or saved[name] is None:
            os.environ[name] = value
    # MLflow logs at INFO on stderr (creating a SQLite store's tables): not our user's business.
    logger = logging.getLogger("mlflow")
    level = logger.level
    logger.setLevel(max(level, logging.WARNING))
    try:
        yield
    finally:
        logger.setLevel(level)
        for name, old in saved.items():
            if old is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = old


def reason(exc: BaseException) -> str:
    """A short cause: the OS error under MLflow's wrapping ("Connection refused"), a timeout, or
    the exception in one line."""
    text = str(exc)
    found = re.search(r"\[Errno -?\d+\] ([^'\"\)\]]+)", text)
    if found:
        return found.group(1).strip()
    if "timed out" in text.lower():
        return "no answer in time (timed out)"
    return one_line(exc, 300)


@trackers.register("mlflow")
class MlflowTracker(RowTracker):
    """Logs one run directory into one MLflow experiment."""

    def __init__(
        self, run_dir: Path, *, uri: str | None = None, experiment: str | None = None
    ) -> None:
        client_class = _client_class()
        from mlflow.entities import Metric, Param

        self._entities = Metric, Param
        self.run_dir = Path(run_dir)
        self.dir = RunDir(self.run_dir)
        self.uri = resolve_uri(uri)
        self._named = experiment
        self.experiment = experiment or _rows.experiment_name(self.dir)
        self.experiment_id = ""
        self._ledger: Ledger | None = None
        self._parent: str | None = None
        self._running = False
        # Before anything trains: does the store answer? (one try, a few seconds at most)
        with _environment(CHECK, override=True):
            try:
                self._client = client_class(tracking_uri=self.uri)
                if self._named is None and not self.dir.run_json.is_file():
                    # A run that has not started: the experiment is the recipe's name, which
                    # run.json holds once the run begins (the folder may be any --out).
                    self._client.search_experiments(max_results=1)
                else:
                    self._open()
            except UsageError:
                raise
            except Exception as exc:
                raise UsageError(
                    f"mlflow: the tracking store {self.uri} does not answer ({reason(exc)}); "
                    "start it, or set MLFLOW_TRACKING_URI to one that does"
                ) from None

    @property
    def ledger(self) -> Ledger:
        """This store's entry in the run directory's ledger (opening the experiment if needed)."""
        if self._ledger is None:
            self._open()
        assert self._ledger is not None
        return self._ledger

    # -- opening -------------------------------------------------------------------------------
    def _open(self) -> None:
        """Find (or make) the experiment, read the ledger, check its parent run still exists."""
        if self._named is None:
            self.experiment = _rows.experiment_name(self.dir)
        self.experiment_id = self._experiment_id()
        self._ledger = Ledger(self.dir.root, self.uri, self.experiment_id, self.experiment)
        self._parent = self._live_parent()

    def _experiment_id(self) -> str:
        found = self._client.get_experiment_by_name(self.experiment)
        if found is None:
            try:
                return str(self._client.create_experiment(self.experiment))
            except Exception:
                found = self._client.get_experiment_by_name(self.experiment)  # another process won
                if found is None:
                    raise
        if found.lifecycle_stage == "deleted":
            raise UsageError(
                f"mlflow: experiment '{self.experiment}' is deleted in {self.uri}; restore it "
                f"(mlflow experiments restore --experiment-id {found.experiment_id}) or delete "
                "it for good (mlflow gc)"
            )
        return str(found.experiment_id)

    def _live_parent(self) -> str | None:
        """The ledger's parent run, if the store still has it; else forget what it logged."""
        ledger = self._ledger
        assert ledger is not None
        parent = ledger.parent()
        if parent is None:
            return None
        try:
            alive = self._client.get_run(parent).info.lifecycle_stage != "deleted"
        except Exception as exc:
            if "RESOURCE_DOES_NOT_EXIST" not in str(getattr(exc, "error_code", "")) + str(exc):
                raise
            alive = False
        if not alive:
            with ledger.locked():
                ledger.set_parent(None)
            return None
        return parent

    # -- Tracker (log_pending, log_unit: RowTracker) ------------------------------------------
    def _reason(self, exc: BaseException) -> str:
        return reason(exc)

    def _prepare(self) -> None:
        self._try_open()

    def _try_open(self) -> None:
        """Open the experiment if not yet; a store that does not answer is left to each row's
        failure to report."""
        if self._ledger is None:
            with suppress(Exception), _environment(WRITE, override=False):
                self._open()

    def close(self) -> None:
        if self._parent is not None and self._running:
            with _environment(WRITE, override=False):
                self._client.set_terminated(self._parent, "FINISHED")
            self._running = False

    # -- writing -------------------------------------------------------------------------------
    def _log_row(self, row: _rows.Row) -> bool:
        """Log one row unless the ledger has it unchanged; True when it was logged."""
        with _environment(WRITE, override=False):
            ledger = self.ledger
            with ledger.locked():
                done = ledger.units().get(row.unit)
                if done is not None and done.get("digest") == row.digest:
                    return False
                run_id = self._write(row, self._parent_run())
                ledger.record(row.unit, run_id, row.digest)
                if done is not None:  # the row changed (a retried variant): its old run goes
                    self._forget(str(done.get("run_id", "")))
        return True

    def _parent_run(self) -> str:
        """The parent run (created on first need; call under the ledger lock), running."""
        if self._parent is None:
            self._parent = self.ledger.parent() or self._create_parent()
        if not self._running:
            self._client.update_run(self._parent, status="RUNNING")
            self._running = True
        return self._parent

    def _create_parent(self) -> str:
        record = _rows.run_record(self.dir)
        tags = {
            "effdl.run_dir": str(self.dir.root.resolve()),
            "effdl.kind": "run" if self.dir.is_run() else "measure",
            "effdl.version": __version__,
        }
        run = self._client.create_run(self.experiment_id, tags=tags, run_name=self.dir.root.name)
        run_id = str(run.info.run_id)
        params: dict[str, str] = {}
        for name in ("name", "seed", "replicates", "data"):
            params.update(_rows.flatten(name, record.get(name)))
        self._batch(run_id, params, [])
        for path in (self.dir.recipe, self.dir.plan, self.dir.run_json):
            if path.is_file():
                self._client.log_artifact(run_id, str(path))
        self.ledger.set_parent(run_id)
        return run_id

    def _write(self, row: _rows.Row, parent: str) -> str:
        """One complete child run for `row`; a half-written one is deleted, then re-raised."""
        metas = _rows.chain(self.dir, row)
        tags = {
            "mlflow.parentRunId": parent,
            "effdl.status": row.status,
            "effdl.variant": row.variant,
            "effdl.unit": row.unit,
            "effdl.replicate": str(row.replicate),
            "effdl.nodes": " ".join(_rows.node_keys(self.dir, row, metas)),
            "effdl.stages": " > ".join(str(m.get("label") or m.get("stage")) for m in metas),
            "effdl.version": __version__,
        }
        if row.error:
            tags["effdl.error"] = row.error
        if row.values.get("replicate_seed"):
            tags["effdl.replicate_seed"] = row.values["replicate_seed"]
        if row.alternative:
            tags["effdl.alternative_of"] = row.owner
        run = self._client.create_run(self.experiment_id, tags=tags, run_name=row.name)
        run_id = str(run.info.run_id)
        try:
            now = int(time.time() * 1000)
            points = [(name, value, 0) for name, value in _rows.metrics(row).items()]
            for name, curve in _rows.histories(metas).items():
                points.extend((name, value, step) for step, value in curve)
            self._batch(run_id, _rows.params(row), [(n, v, s, now) for n, v, s in points])
            for path in _rows.artifact_files(self.dir, row):
                self._client.log_artifact(run_id, str(path))
            self._client.set_terminated(run_id, "FINISHED" if row.status == "ok" else "FAILED")
        except BaseException:
            self._forget(run_id)
            raise
        return run_id

    def _batch(
        self, run_id: str, params: dict[str, str], points: list[tuple[str, float, int, int]]
    ) -> None:
        metric, param = self._entities
        items = [param(k, v[:6000]) for k, v in params.items()]
        for start in range(0, len(items), _BATCH):
            self._client.log_batch(run_id, params=items[start : start + _BATCH], synchronous=True)
        values = [metric(name, value, ts, step) for name, value, step, ts in points]
        for start in range(0, len(values), 10 * _BATCH):
            self._client.log_batch(
                run_id, metrics=values[start : start + 10 * _BATCH], synchronous=True
            )

    def _forget(self, run_id: str) -> None:
        """Delete a run that is not (or no longer) the row's; best effort (the store may be
        what failed)."""
        if not run_id:
            return
        with suppress(Exception):
            self._client.delete_run(run_id)
