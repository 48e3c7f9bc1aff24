"""`effdl export`: take a model out of a run directory, or log a run directory to a tracker.

`effdl export RUN_DIR VARIANT --to DIR` copies one variant's model with its card and labels
(effcli.deploy.export); `effdl export mlflow RUN_DIR` logs every row of an existing run to an
MLflow experiment (effcli.track), e.g. a run made without `--track`, and `effdl export
tensorboard RUN_DIR` writes its TensorBoard event files.
"""

from __future__ import annotations

from pathlib import Path

import typer

from effcli.cli._common import console, err_console, print_tracked, reports_errors
from effcli.errors import UsageError

TRACKERS = ("mlflow", "tensorboard")  # the first argument naming a tracker, not a run directory


@reports_errors
def export(
    first: str = typer.Argument(
        ...,
        metavar="RUN_DIR|mlflow|tensorboard",
        help="A run directory, or the tracker to log one to (mlflow, tensorboard).",
    ),
    second: str | None = typer.Argument(
        None,
        metavar="VARIANT|RUN_DIR",
        help="The variant to export: its id, a unique prefix of it, or its label. After mlflow "
        "or tensorboard: the run directory to log.",
    ),
    to: Path | None = typer.Option(
        None, "--to", help="Folder to write the model, its card and labels into."
    ),
    replicate: int | None = typer.Option(
        None,
        "--replicate",
        min=0,
        help="Which replicate's model (default 0; its card gets the interval over all of them).",
    ),
    keras: bool = typer.Option(False, "--keras", help="Also copy model.keras (the Keras model)."),
    uri: str | None = typer.Option(
        None,
        "--uri",
        help="mlflow: the tracking URI (default: $MLFLOW_TRACKING_URI, else ./mlflow.db); "
        "tensorboard: the log directory (default: RUN_DIR/tensorboard).",
    ),
    experiment: str | None = typer.Option(
        None, "--experiment", help="mlflow: the experiment name (default: the recipe's name)."
    ),
) -> None:
    """Copy a chosen model (with its card and labels) out of a run, or log a run to a tracker.

    [bold]Examples:[/]

      effdl export results/quickstart eb398df32bfd --to deploy/
      effdl export mlflow results/quickstart
      effdl export mlflow results/quickstart --uri http://localhost:5000 --experiment digits
      effdl export tensorboard results/quickstart
    """
    if first in TRACKERS and to is None:
        if replicate is not None or keras:
            raise UsageError(
                f"--replicate and --keras apply to exporting a model, not to export {first}"
            )
        _to_tracker(first, second, uri, experiment)
        return
    if uri is not None or experiment is not None:
        raise UsageError(
            "--uri and --experiment apply to `effdl export mlflow|tensorboard RUN_DIR`; a model "
            "export takes RUN_DIR VARIANT --to DIR"
        )
    if second is None or to is None:
        raise UsageError(
            f"name the variant and the destination: effdl export {first} VARIANT --to DIR "
            "(the variant ids are in results.csv and `effdl frontier`)"
        )
    run_dir = Path(first)
    if not run_dir.is_dir():
        raise UsageError(
            f"{first}: no such run directory (or write `effdl export mlflow|tensorboard RUN_DIR`)"
        )
    from effcli.deploy.export import export_model

    destination = export_model(run_dir, second, to, replicate=replicate, include_keras=keras)
    console.print(f"exported {second} from {run_dir} to {destination}", markup=False)


def _to_tracker(kind: str, run_dir: str | None, uri: str | None, experiment: str | None) -> None:
    """Log every row of an existing run directory (rows logged before are skipped)."""
    if run_dir is None:
        raise UsageError(f"name the run directory to log: effdl export {kind} RUN_DIR")
    if not Path(run_dir).is_dir():
        raise UsageError(f"{run_dir}: no such run directory")
    from effcli.track import open_tracker

    tracker = open_tracker(kind, Path(run_dir), uri=uri, experiment=experiment)
    try:
        tracked = tracker.log_pending()
    finally:
        tracker.close()
    print_tracked(kind, tracked, console, new_only=True)
    if tracked.failed:
        for line in tracked.failed[:5]:
            err_console.print(f"not logged: {line}", markup=False)
        err_console.print(f"rerun `effdl export {kind} {run_dir}` to log them", markup=False)
        raise typer.Exit(1)
