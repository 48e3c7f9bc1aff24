"""`effdl measure FILE...`: the footprint (and, with --data, the accuracy) of existing models.

A `.tflite` file is measured as `effdl run` measures its exports (the same row builder), without
TensorFlow; `.keras`/`.h5` files and SavedModel folders are converted to float32 TFLite first.
`--out DIR` writes DIR/results.csv in the runs' schema (pipeline `measure`) plus
artifacts/<name>/, so `effdl frontier DIR results/` places them on one frontier and
`effdl report DIR` describes them. The work is in effcli.measure.files.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import typer

from effcli.cli._common import (
    Format,
    console,
    emit_json,
    err_console,
    format_option,
    reports_errors,
)
from effcli.errors import UsageError

TABLE_COLUMNS = (
    "variant",
    "tflite_accuracy",
    "accuracy",
    "tflite_bytes",
    "gzip_bytes",
    "latency_ms_p50",
    "latency_ms_p95",
    "params",
    "nonzero_params",
    "kernel_sparsity",
    "unique_weights",
    "macs",
    "peak_memory_bytes",
)


def parse_data_spec(text: str) -> tuple[dict[str, object], int]:
    """`source=npz,path=x.npz,seed=1` -> (data spec, seed); see effcli.cli._data_arg."""
    from effcli.cli._data_arg import parse_data_spec as parse

    return parse(text)


@reports_errors
def measure(
    files: list[Path] = typer.Argument(
        ..., help=".tflite files (or .keras/.h5 files, SavedModel folders: converted first)."
    ),
    data: str | None = typer.Option(
        None,
        "--data",
        "-d",
        help="Also measure accuracy on a test split: a recipe .yaml (its data block and seed), a "
        ".npz with x and y (e.g. a run's test.npz), or source=digits / source=npz,path=x.npz.",
    ),
    out: Path | None = typer.Option(
        None, "--out", "-o", help="Write DIR/results.csv (same schema as runs) and artifacts/."
    ),
    threads: int = typer.Option(1, "--threads", min=1, help="LiteRT threads for latency."),
    output: Format = format_option(),
) -> None:
    """Footprint of existing models (bytes, params, MACs, memory, latency; accuracy with --data).

    Also gzip bytes, sparsity and unique weights: the columns of a run's results.csv.

    --format json: the measured rows, a list on stdout.

    [bold]Examples:[/]

      effdl measure model.tflite
      effdl measure results/quickstart/artifacts/*/model.tflite --data recipes/quickstart.yaml
      effdl measure model.keras --data source=digits --out measured/ --format json
    """
    from effcli.cli._data_arg import load_test_split
    from effcli.deploy import write_deploy_files
    from effcli.frontier.table import frontier_table
    from effcli.measure import files as measured_files
    from effcli.results import RunDir

    target = RunDir(out) if out is not None else None
    if target is not None and target.is_run():
        raise UsageError(
            f"--out {out}: that is the run directory of 'effdl run'; write measurements to a "
            "folder of their own (effdl frontier compares several folders)"
        )
    candidates = measured_files.candidates(files)
    # Every .tflite is checked before any slow step, so a bad file fails in a second.
    for candidate in candidates:
        if candidate.kind == "tflite":
            candidate.tflite = candidate.source
            measured_files.check_tflite(candidate, threads)
    test, label = load_test_split(data) if data else (None, "")
    with tempfile.TemporaryDirectory(prefix="effdl-measure-") as scratch:
        for candidate in candidates:
            if candidate.tflite is None:
                base = target.artifacts if target is not None else Path(scratch)
                measured_files.convert(candidate, base / candidate.name)
                measured_files.check_tflite(candidate, threads)
        if test is not None:
            for candidate in candidates:
                measured_files.check_shape(candidate, test)
        for candidate in candidates:
            err_console.print(f"measuring {candidate.source}")
            measured = measured_files.measure_candidate(candidate, test, label, threads)
            if target is not None:
                measured_files.write_candidate(target, candidate, measured, test)
                write_deploy_files(  # labels.txt and model_card.md next to the copied model
                    target.artifact(candidate.name),
                    split=None,
                    test_labels=test.y if test is not None else None,
                    data_note=label,
                    note="effdl measure does not rewrite the models it measures",
                )

    import pandas as pd

    rows = pd.DataFrame([c.row for c in candidates])
    if output is Format.json:  # every measured column; NaN becomes null
        emit_json(json.loads(rows.to_json(orient="records")))
        if target is not None:
            err_console.print(f"wrote {target.results}")
        return
    columns = [c for c in TABLE_COLUMNS if c in rows.columns]
    on = f" on {label}" if test is not None else " (no --data: no accuracy)"
    title = f"measured {len(rows)} model(s){on}; latency: {threads} thread(s)"
    table, _ = frontier_table(rows, columns, title, set(columns) - {"variant"})
    console.print(table)
    if target is not None:
        console.print(f"wrote {target.results} (compare: effdl frontier {out} results/)")
