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
from typing import TYPE_CHECKING

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

if TYPE_CHECKING:
    import pandas as pd

    from effcli.recipe.schema import MeasureSpec

TABLE_COLUMNS = (
    "variant",
    "tflite_accuracy",
    "accuracy",
    "tflite_bytes",
    "gzip_bytes",
    "latency_ms_p50",
    "latency_ms_p95",
    "latency_ms_cv",
    "latency_near_floor",
    "throughput_per_s",
    "params",
    "nonzero_params",
    "kernel_sparsity",
    "unique_weights",
    "macs",
    "peak_memory_bytes",
)


def measure_settings(latency_threads: str | None, throughput_batch: int | None) -> MeasureSpec:
    """--latency-threads 1,4 and --throughput-batch N as the recipe's `measure:` settings."""
    from pydantic import ValidationError

    from effcli.recipe.schema import MeasureSpec

    spec: dict[str, object] = {"throughput_batch": throughput_batch}
    if latency_threads is not None:
        try:
            spec["latency_threads"] = [int(t) for t in latency_threads.split(",")]
        except ValueError:
            raise UsageError(
                f"--latency-threads {latency_threads}: give thread counts separated by commas, "
                "e.g. 1,4"
            ) from None
    try:
        return MeasureSpec.model_validate(spec)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        option = "--latency-threads" if err["loc"][0] == "latency_threads" else "--throughput-batch"
        given = latency_threads if option == "--latency-threads" else throughput_batch
        message = err["msg"].removeprefix("Value error, ")
        raise UsageError(f"{option} {given}: {message[:1].lower()}{message[1:]}") from None


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
    latency_threads: str | None = typer.Option(
        None,
        "--latency-threads",
        metavar="T,T",
        help="Also time latency at these thread counts, e.g. 1,4 (adds latency_ms_p50_t4 and "
        "_p95_t4; the count --threads gives is the plain columns).",
    ),
    throughput_batch: int | None = typer.Option(
        None,
        "--throughput-batch",
        metavar="N",
        help="Add throughput_per_s: samples per second invoking batches of N (--threads threads; "
        "empty for a model with a fixed batch).",
    ),
    output: Format = format_option(),
) -> None:
    """Footprint of existing models (bytes, params, MACs, memory, latency; accuracy with --data).

    Also gzip bytes, sparsity and unique weights: the columns of a run's results.csv.

    --format json: the measured rows, a list on stdout.

    [bold]Examples:[/]

      effdl measure model.tflite
      effdl measure results/quickstart/artifacts/*/model.tflite --data recipes/quickstart.yaml
      effdl measure model.keras --data source=digits --out measured/ --format json
      effdl measure model.tflite --latency-threads 1,4 --throughput-batch 32
    """
    from effcli.cli._data_arg import load_test_split
    from effcli.deploy import write_deploy_files
    from effcli.frontier.table import frontier_table
    from effcli.measure import files as measured_files
    from effcli.measure.latency import thread_columns
    from effcli.results import RunDir

    settings = measure_settings(latency_threads, throughput_batch)
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
            measured = measured_files.measure_candidate(candidate, test, label, threads, settings)
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
    extra = [c for t in settings.latency_threads if t != threads for c in thread_columns(t)]
    at = TABLE_COLUMNS.index("latency_ms_cv")
    listed = [*TABLE_COLUMNS[:at], *extra, *TABLE_COLUMNS[at:]]
    columns = [c for c in listed if c in rows.columns]
    on = f" on {label}" if test is not None else " (no --data: no accuracy)"
    title = f"measured {len(rows)} model(s){on}; latency: {threads} thread(s)"
    title += floor_note(rows)
    table, _ = frontier_table(rows, columns, title, set(columns) - {"variant"})
    console.print(table)
    if target is not None:
        console.print(f"wrote {target.results} (compare: effdl frontier {out} results/)")


def floor_note(rows: pd.DataFrame) -> str:
    """'; timing floor 0.00072 ms' (each input's floor when they differ), for the title."""
    if "latency_floor_ms" not in rows.columns:
        return ""
    floors = sorted({f"{value:.2g}" for value in rows["latency_floor_ms"].dropna()})
    return f"; timing floor {' / '.join(floors)} ms" if floors else ""
