"""TensorBoard: every results row as a TensorBoard run (event files written with TensorFlow's core
summary writer: no extra package to write them): the per-epoch curves of its training nodes (`train/val_loss`,
`prune/accuracy`, ... by epoch), its measured columns as `row/<column>` at step 0, and its knobs
as text. Default log directory: `RUN_DIR/tensorboard/`; view with `pip install tensorboard` and
`tensorboard --logdir RUN_DIR/tensorboard`.

Nodes run in worker processes (`--executor process/ray`) and cached nodes are all covered: the
events are written from the run directory (nodes.json), not from inside training.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from effcli._native import native_quiet
from effcli.errors import UsageError
from effcli.results import RunDir
from effcli.results.rundir import TENSORBOARD
from effcli.track import _rows
from effcli.track._ledger import Ledger
from effcli.track.base import RowTracker, trackers

STORE_ID = "tensorboard"  # the ledger's experiment id for a log directory


@trackers.register("tensorboard")
class TensorBoardTracker(RowTracker):
    """Writes one run directory's rows as TensorBoard runs under one log directory."""

    name = "tensorboard"

    def __init__(
        self, run_dir: Path, *, uri: str | None = None, experiment: str | None = None
    ) -> None:
        self.run_dir = Path(run_dir)
        self.dir = RunDir(self.run_dir)
        logdir = Path(uri) if uri else self.dir.root / TENSORBOARD
        self.logdir = logdir.resolve()
        self.uri = str(self.logdir)
        self._named = experiment
        self._settled = False  # the experiment name is final (given, or read from run.json)
        self.experiment = ""
        self.ledger: Ledger
        try:  # before anything trains: can the events be written there?
            self.logdir.mkdir(parents=True, exist_ok=True)
            probe = self.logdir / ".effdl-write-check"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise UsageError(
                f"tensorboard: cannot write the log directory {self.logdir} ({exc.strerror}); "
                "pass a writable one"
            ) from None
        self._prepare()

    def _prepare(self) -> None:
        # The recipe's name: run.json holds it once the run has begun (opened before it), so
        # it is read again only until then, not for every row.
        if self._settled:
            return
        self._settled = bool(self._named) or self.dir.run_json.is_file()
        self.experiment = self._named or _rows.experiment_name(self.dir)
        self.ledger = Ledger(self.dir.root, self.uri, STORE_ID, self.experiment)

    def close(self) -> None:
        """Nothing stays open: each row's writer is flushed and closed."""

    def folder(self, row: _rows.Row) -> Path:
        """The row's TensorBoard run: `<unit> <label>` (what the run selector lists)."""
        name = f"{row.unit} {row.name}".replace("/", "_").replace("\\", "_")
        return self.logdir / name

    def _log_row(self, row: _rows.Row) -> bool:
        self._prepare()
        with self.ledger.locked():
            done = self.ledger.units().get(row.unit)
            if done is not None and done.get("digest") == row.digest:
                return False
            target = self.folder(row)
            if done is not None:  # a retried row: its old events go
                shutil.rmtree(self.logdir / str(done.get("run_id", "")), ignore_errors=True)
            shutil.rmtree(target, ignore_errors=True)
            self._write(row, target)
            self.ledger.record(row.unit, target.name, row.digest)
        return True

    def _write(self, row: _rows.Row, target: Path) -> None:
        with native_quiet():  # TensorFlow probes CUDA on fd 2 when its first op runs
            self._write_events(row, target)

    def _write_events(self, row: _rows.Row, target: Path) -> None:
        from effcli._tf import tf

        # tf.summary.scalar/text live in the tensorboard package; the core writer with the
        # plugin's metadata writes the same events without it.
        def plugin(name: str) -> object:
            metadata = tf.compat.v1.SummaryMetadata()
            metadata.plugin_data.plugin_name = name
            return metadata

        scalar, text = plugin("scalars"), plugin("text")
        curves = _rows.histories(_rows.chain(self.dir, row))
        writer = tf.summary.create_file_writer(str(target))
        try:
            with writer.as_default():
                for tag, points in curves.items():
                    for step, value in points:
                        tf.summary.write(tag, tf.constant(value, tf.float32), step, scalar)
                for column, value in _rows.metrics(row).items():
                    tf.summary.write(f"row/{column}", tf.constant(value, tf.float32), 0, scalar)
                knobs = _rows.params(row)
                table = "\n".join(f"| {k} | {v} |" for k, v in sorted(knobs.items()))
                markdown = f"| knob | value |\n|---|---|\n{table}"
                tf.summary.write("knobs", tf.constant(markdown), 0, text)
                if row.status != "ok":
                    tf.summary.write("error", tf.constant(f"{row.status}: {row.error}"), 0, text)
            writer.flush()
        finally:
            writer.close()
