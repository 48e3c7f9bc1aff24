"""`effdl frontier PATH...`: the Pareto table over every results.csv under the paths.

Replicates of a variant are one row (means, the quality's interval and `n_replicates`); each
frontier point says whether it is significantly better than the next smaller one. `--where`
filters variants before the front is computed, `--best` answers with the single best variant and
the runners-up within noise, `--robust` with the candidates no variant beats significantly at no
larger footprint, `--compare A B` with a paired difference, `--plot` draws it all with error bars
(matplotlib, imported only then).
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from effcli.cli._common import console, err_console, reports_errors

if TYPE_CHECKING:  # pandas and the frontier load lazily: `effdl --help` stays fast
    import pandas as pd

    from effcli.frontier.query import Frontier


class OutputFormat(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"


HIDDEN = ["on_frontier"]


def _emit(
    rows: pd.DataFrame, output: OutputFormat, single: bool = False, marked: bool = False
) -> None:
    """csv or json on stdout (json: a list of rows, or one object when `single`); `marked`
    keeps the `on_frontier` column (a listing of every variant)."""
    if not marked:
        rows = rows.drop(columns=[c for c in HIDDEN if c in rows.columns])
    if output is OutputFormat.csv:
        typer.echo(rows.to_csv(index=False), nl=False)
        return
    records = json.loads(rows.to_json(orient="records"))
    typer.echo(json.dumps(records[0] if single and records else records, indent=2))


def _numeric(columns: list[str]) -> set[str]:
    text = {"run", "variant", "label", "pipeline", "branch", "baseline", "frontier"}
    return {c for c in columns if c not in text}


@reports_errors
def frontier(
    paths: list[Path] = typer.Argument(..., help="Run directories or results.csv files."),
    quality: str = typer.Option("tflite_accuracy", "--quality", "-q", help="Column to maximise."),
    footprint: list[str] | None = typer.Option(
        None,
        "--footprint",
        "-f",
        help="Column to minimise; repeat for several (default tflite_bytes).",
    ),
    where: list[str] | None = typer.Option(
        None,
        "--where",
        "-w",
        help="Keep variants satisfying COLUMN OP VALUE (on their means) before the front is "
        "computed, e.g. 'tflite_bytes<100KB', 'latency_ms_p50<=2ms', 'tflite_accuracy>=95%', "
        "'pipeline==train>prune*'; repeat to combine (and).",
    ),
    best: bool = typer.Option(
        False,
        "--best",
        help="Only the best variant under the constraints (highest mean quality), its interval "
        "and the runners-up within noise.",
    ),
    robust: bool = typer.Option(
        False,
        "--robust",
        help="The candidates: variants no other variant beats significantly in quality at no "
        "larger footprint; and the smallest within noise of the best.",
    ),
    compare: tuple[str, str] | None = typer.Option(
        None,
        "--compare",
        metavar="A B",
        help="The paired difference A - B of two variants (ids, unique prefixes or RUN:ID), "
        "with its interval and p-value.",
    ),
    confidence: float = typer.Option(
        0.95, "--confidence", help="Confidence level of intervals and tests, e.g. 0.9."
    ),
    all_rows: bool = typer.Option(False, "--all", help="List every ok variant; ★ marks the front."),
    output: OutputFormat = typer.Option(OutputFormat.table, "--format", help="table, csv or json."),
    columns: str | None = typer.Option(
        None,
        "--columns",
        "-c",
        help="Table columns to show, comma-separated (e.g. 'label,tflite_accuracy_mean,"
        "tflite_accuracy_ci,tflite_bytes'); default: as many as fit the terminal, most "
        "important first.",
    ),
    plot: Path | None = typer.Option(
        None, "--plot", help="Also draw quality vs the first footprint to FILE (.png/.svg/.pdf)."
    ),
    log_x: bool = typer.Option(False, "--log-x", help="Log scale for the plot's footprint axis."),
) -> None:
    """Best quality per footprint: the Pareto frontier of every ok variant, with intervals.

    [bold]Examples:[/]

      effdl frontier results/
      effdl frontier results/quickstart --robust --footprint gzip_bytes
      effdl frontier results/ --where 'tflite_bytes<100KB' --best --format json
    """
    from effcli.errors import UsageError
    from effcli.frontier import load_results
    from effcli.frontier.constraints import parse_constraints
    from effcli.frontier.query import check_confidence, compute_frontier

    answers = (
        ("--best", best),
        ("--robust", robust),
        ("--all", all_rows),
        ("--compare", compare is not None),
    )
    picked = [name for name, on in answers if on]
    if len(picked) > 1:
        raise UsageError(f"{' and '.join(picked)} cannot be combined: each prints another answer")
    if plot is not None and plot.suffix.lower() not in (".png", ".svg", ".pdf"):
        raise UsageError(f"--plot {plot}: the file must end in .png, .svg or .pdf")
    check_confidence(confidence)
    df = load_results(paths, warn=lambda msg: err_console.print(f"[yellow]warning:[/] {msg}"))
    constraints = parse_constraints(where or [], list(df.columns))
    result = compute_frontier(
        df, quality, list(footprint or []), constraints, confidence=confidence
    )
    if plot is not None:
        from effcli.frontier.plot import save_plot

        size = save_plot(result, plot, log_x=log_x)
        err_console.print(f"wrote {plot} ({size / 1000:.1f} KB)")
    chosen = [c.strip() for c in columns.split(",") if c.strip()] if columns else None
    if compare is not None:
        _compare(result, compare, output)
    elif robust:
        _robust(result, output, chosen)
    elif best:
        _best(result, output, chosen)
    else:
        _front(result, all_rows, output, chosen)


def _say(*objects: object, soft_wrap: bool = False) -> None:
    """Print wrapped to the terminal (tables and notes alike)."""
    console.print(*objects, soft_wrap=soft_wrap)


def _print_table(
    shown: pd.DataFrame, columns: list[str], title: str, chosen: list[str] | None
) -> None:
    """The table, fitted to the terminal (columns dropped from the least important) unless
    --columns chose them; says what it left out."""
    from effcli.frontier.table import frontier_table

    if chosen is not None:
        unknown = [c for c in chosen if c not in shown.columns]
        if unknown:
            from effcli.errors import UsageError
            from effcli.registry import did_you_mean

            internal = ("_low", "_high", "_p", "_significant", "_std")
            names = [c for c in shown.columns if not c.startswith("_") and not c.endswith(internal)]
            raise UsageError(
                f"--columns: no column '{unknown[0]}'{did_you_mean(unknown[0], names)}; "
                f"columns: {', '.join(names)}"
            )
        columns = chosen
    width = None if chosen is not None else console.width
    table, dropped = frontier_table(shown, columns, title, _numeric(columns), width)
    _say(table)
    if dropped:
        _say(
            f"[dim]not shown (terminal width {console.width}): {', '.join(dropped)}; "
            "choose with --columns or --format csv[/]"
        )


def _front(
    result: Frontier, all_rows: bool, output: OutputFormat, chosen: list[str] | None = None
) -> None:
    from effcli.frontier.significance import front_steps
    from effcli.frontier.table import decorate

    rows = front_steps(result, result.with_intervals(result.front))
    if all_rows:  # every variant, with the front's steps where it has them
        steps = rows[["run", "variant", *[c for c in rows.columns if c.startswith("vs_")]]]
        everything = result.with_intervals(result.rows)
        rows = everything.merge(steps, on=["run", "variant"], how="left")
    if output is not OutputFormat.table:
        _emit(rows, output, marked=all_rows)
        return
    step = "vs_smaller" if result.uncertainty is not None else None
    columns = result.display_columns(all_rows, step)
    shown = decorate(rows, result.quality)
    if all_rows:
        shown = shown.assign(frontier=shown["on_frontier"].map({True: "★", False: ""}))
        columns = ["frontier", *columns]
    goal = f"max {result.quality}, min {', '.join(result.footprints)}"
    title = f"Pareto frontier: {goal}{_subtitle(result)}"
    _print_table(shown, columns, title, chosen)
    _floor_note(result, shown)
    _method_note(result)


def _floor_note(result: Frontier, shown: pd.DataFrame) -> None:
    """One dim line when a latency axis holds rows timed near the timing floor."""
    from effcli.measure.latency import NEAR_FLOOR_FACTOR

    if "latency_near_floor" not in shown.columns or not any(
        f.startswith("latency_ms") for f in result.footprints
    ):
        return
    import pandas as pd

    flags = shown["latency_near_floor"]
    if pd.api.types.is_numeric_dtype(flags):  # bools, or their mean over replicates (majority)
        near = flags.astype(float).fillna(0) >= 0.5
    else:  # with empty cells (rows measured before the column existed) pandas keeps objects
        near = flags.astype(str).str.lower().eq("true")
    if not near.any():
        return
    floor = shown.loc[near, "latency_floor_ms"].median() if "latency_floor_ms" in shown else None
    at = f" ({floor:.2g} ms)" if floor is not None and floor == floor else ""
    _say(
        f"[dim]{int(near.sum())} rows time under {NEAR_FLOOR_FACTOR:g}x the timing floor{at}: "
        "their latency differences are mostly interpreter overhead[/]"
    )


def _method_note(result: Frontier) -> None:
    """How the intervals and tests were made, and what `*` and `≈` mean."""
    if result.uncertainty is None:
        return
    _say(
        f"intervals: {result.uncertainty.method}; vs_smaller: quality minus the next smaller "
        "frontier point, paired on the same test samples: * significant, ≈ within noise"
    )


def _best(result: Frontier, output: OutputFormat, chosen: list[str] | None = None) -> None:
    from effcli.frontier import NoMatch
    from effcli.frontier.significance import runners_up
    from effcli.frontier.table import decorate

    if result.rows.empty:
        raise NoMatch(
            f"no ok variant has both {result.quality} and {', '.join(result.footprints)} "
            f"({result.excluded} excluded for missing values)"
        )
    best = result.with_intervals(result.best())
    close = runners_up(result, best)
    if output is not OutputFormat.table:
        if output is OutputFormat.json:
            record = json.loads(best.drop(columns=HIDDEN).to_json(orient="records"))[0]
            record["runners_up"] = json.loads(close.drop(columns=HIDDEN).to_json(orient="records"))
            typer.echo(json.dumps(record, indent=2))
        else:
            _emit(best, output, single=True)
        return
    columns = result.display_columns(all_rows=False)
    title = f"Best: max {result.quality}, then min {', '.join(result.footprints)}"
    title += _subtitle(result, best=True)
    _print_table(decorate(best, result.quality), columns, title, chosen)
    if result.uncertainty is None:
        return
    if close.empty:
        _say("no other variant is within noise of it: it is significantly the best")
        return
    close = result.with_intervals(close)
    title = (
        f"Runners-up within noise of {best.iloc[0]['label']} (vs_best: their quality minus "
        f"its, not significant at {result.uncertainty.confidence:.0%})"
    )
    columns = result.display_columns(all_rows=False, step="vs_best")
    _print_table(decorate(close, result.quality), columns, title, chosen)


def _robust(result: Frontier, output: OutputFormat, chosen: list[str] | None = None) -> None:
    from effcli.frontier.significance import robust_set
    from effcli.frontier.table import decorate, format_value

    found = robust_set(result)
    rows = result.with_intervals(found.candidates)
    if output is not OutputFormat.table:
        _emit(rows, output)
        return
    columns = result.display_columns(all_rows=True, step="vs_best")
    shown = decorate(rows, result.quality)
    n = len(rows)
    title = (
        f"Robust candidates: {n} of {len(result.rows)} ok variants that no variant beats "
        f"significantly in {result.quality} at no larger {', '.join(result.footprints)}"
    )
    _print_table(shown, columns, title, chosen)
    assert result.uncertainty is not None
    is_best = (shown["run"] == found.best[0]) & (shown["variant"] == found.best[1])
    within = shown[is_best | shown["vs_best_significant"].eq(False)]
    take = rows[(rows["run"] == found.take[0]) & (rows["variant"] == found.take[1])].iloc[0]
    size = ", ".join(format_value(f, take[f]) for f in result.footprints)
    if len(within) == n and n > 1:
        _say(
            f"these {n} are indistinguishable from the best ({result.label_of(found.best)}); take "
            f"the smallest: [bold]{result.label_of(found.take)}[/] ({size})"
        )
    else:
        _say(
            f"{len(within)} of the {n} are within noise of the best ({result.label_of(found.best)}); "
            f"the smallest of them: [bold]{result.label_of(found.take)}[/] ({size})"
        )
    if found.untested:
        _say(
            f"{found.untested} variant(s) have no per-sample predictions (runs of an earlier "
            "effdl): kept as candidates, never tested"
        )
    if found.baseline is not None:
        if found.beats_baseline:
            _say(
                f"baseline {result.label_of(found.baseline)}: {found.beats_baseline} variant(s) beat it "
                "significantly"
            )
        else:
            _say(
                f"[bold]baseline {result.label_of(found.baseline)}: no variant beats it "
                "significantly[/] "
                "(the simplest model does as well here)"
            )
    _say(f"tests: paired bootstrap on the same test samples; {result.uncertainty.method}")


def _compare(result: Frontier, names: tuple[str, str], output: OutputFormat) -> None:
    from effcli.frontier.significance import compare, find_variant
    from effcli.frontier.table import format_difference, format_interval, format_value

    a, b = (find_variant(result, name) for name in names)
    found = compare(result, a, b)
    d = found.difference
    record = {
        "a": {"run": a[0], "variant": a[1]},
        "b": {"run": b[0], "variant": b[1]},
        "difference": d.mean,
        "ci_low": d.low,
        "ci_high": d.high,
        "p_value": d.p_value,
        "significant": d.significant,
        "confidence": result.uncertainty.confidence if result.uncertainty else None,
        "test_samples": found.n_samples,
        "replicates": list(found.replicates),
    }
    if output is OutputFormat.json:
        typer.echo(json.dumps(record, indent=2))
        return
    if output is OutputFormat.csv:
        flat = {"a": a[1], "b": b[1], **{k: v for k, v in record.items() if k not in ("a", "b")}}
        flat.pop("replicates")
        typer.echo(",".join(flat) + "\n" + ",".join(str(v) for v in flat.values()))
        return
    assert result.uncertainty is not None
    q = result.quality
    for key in (a, b):
        estimate = result.uncertainty.estimate(key)
        assert estimate is not None
        _say(
            f"{result.label_of(key)}: {q} {format_value(q, estimate.mean)} "
            f"{format_interval(q, estimate.low, estimate.high)} over {estimate.n_replicates} "
            f"replicate(s)"
        )
    verdict = "significant" if d.significant else "not significant: within noise"
    _say(
        f"{result.label_of(a)} - {result.label_of(b)}: {format_difference(q, d.mean, d.low, d.high, d.significant)[2:]}, "
        f"p = {d.p_value:.3g} ({verdict}); paired on {found.n_samples} test samples"
    )
    _say(f"tests: {result.uncertainty.method}")


def _subtitle(result: Frontier, best: bool = False) -> str:
    """' (2 of 9 ok variants; 1 failed; ...; where a, b)' for the table title."""
    shown = "best" if best else str(len(result.front))
    counts = f"{shown} of {len(result.rows)} ok variants"
    if result.replicated:
        most = int(result.rows["n_replicates"].max())
        counts += f", {most} replicates each" if result.rows["n_replicates"].min() == most else ""
    if result.failed:
        counts += f"; {result.failed} failed"
    if result.failed_replicates:
        counts += f"; {result.failed_replicates} failed replicate(s) left out"
    if result.filtered:
        counts += f"; {result.filtered} outside --where"
    if result.excluded:
        counts += f"; {result.excluded} excluded for missing values"
    if result.constraints:
        counts += "; where " + ", ".join(c.expression for c in result.constraints)
    return f" ({counts})"
