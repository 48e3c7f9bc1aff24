"""Render a RunReport as one self-contained HTML page: inline CSS, the plot as a data: URI,
no scripts and no external links, so the file opens from disk anywhere and can be mailed.

Every piece of text from the run directory goes through `html.escape`.
"""

from __future__ import annotations

import base64
import json
import math
import time
from collections.abc import Iterable, Sequence
from html import escape
from typing import Any

import pandas as pd

from effcli.errors import EffdlError
from effcli.frontier.query import Frontier
from effcli.frontier.significance import front_steps, robust_set
from effcli.frontier.table import decorate, format_interval, format_value
from effcli.report._collect import RunReport, VariantDetail
from effcli.results.rundir import unit_name

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#1d2330;background:#fafbfc}
main{max-width:1200px;margin:0 auto;padding:24px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:32px 0 8px;border-bottom:1px solid #dde1e6;padding-bottom:4px}
h3{font-size:15px;margin:16px 0 6px}
.muted{color:#677084}.note{color:#8a5a00;background:#fff7e0;padding:6px 10px;border-radius:4px}
nav a{margin-right:14px;color:#2457a6;text-decoration:none}
.scroll{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;margin:6px 0 12px;background:#fff;font-size:13px}
th,td{border:1px solid #e1e4e8;padding:3px 8px;white-space:nowrap}
th{background:#f1f3f5;text-align:left;position:sticky;top:0}
td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.front td{background:#eef6ee}tr.failed td{color:#a33}
pre{background:#fff;border:1px solid #e1e4e8;padding:10px;overflow-x:auto;font-size:12.5px}
details{background:#fff;border:1px solid #e1e4e8;border-radius:4px;margin:8px 0;padding:6px 10px}
summary{cursor:pointer;font-weight:600}
.bar{display:inline-block;height:10px;background:#5b8def;vertical-align:middle}
img{max-width:100%;border:1px solid #e1e4e8;background:#fff}
.kv td:first-child{color:#677084}
"""
TEXT_COLUMNS = {"run", "variant", "branch", "pipeline", "status", "error", "frontier", "file"}


def _cell(column: str, value: Any) -> str:
    """A formatted, escaped <td>; numbers right-aligned. Column "percent" shows a fraction as %,
    "exact_bytes" a byte count in full and in KB/MB."""
    if column == "percent" and isinstance(value, (int, float)):
        text = f"{value * 100:.1f} %"
    elif column.endswith("_bytes") and isinstance(value, (int, float)) and not math.isnan(value):
        text = f"{value:,.0f} ({format_value(column, value)})"
    else:
        text = format_value(column, value)
    numeric = column not in TEXT_COLUMNS and isinstance(value, (int, float)) and text != ""
    return f'<td class="num">{escape(text)}</td>' if numeric else f"<td>{escape(text)}</td>"


def table(
    rows: Iterable[Sequence[Any]],
    columns: Sequence[str],
    formats: Sequence[str] | None = None,
    row_classes: Sequence[str] | None = None,
    css: str = "",
) -> str:
    """An HTML table; `formats` names the column each cell is formatted as (default: header)."""
    formats = formats or columns
    head = "".join(f"<th>{escape(str(c))}</th>" for c in columns)
    body = []
    for i, row in enumerate(rows):
        klass = f' class="{escape(row_classes[i])}"' if row_classes and row_classes[i] else ""
        cells = "".join(_cell(f, v) for f, v in zip(formats, row, strict=True))
        body.append(f"<tr{klass}>{cells}</tr>")
    klass = f' class="{css}"' if css else ""
    return (
        f'<div class="scroll"><table{klass}><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def _frame_table(df: pd.DataFrame, columns: list[str], front: pd.Series | None = None) -> str:
    classes = None
    if front is not None or "status" in df.columns:
        classes = []
        for i, (_, row) in enumerate(df.iterrows()):
            if front is not None and bool(front.iloc[i]):
                classes.append("front")
            elif str(row.get("status", "ok")) not in ("ok", "nan"):
                classes.append("failed")
            else:
                classes.append("")
    rows = [[row[c] for c in columns] for _, row in df.iterrows()]
    return table(rows, columns, row_classes=classes)


def _kv(pairs: Iterable[tuple[str, Any]]) -> str:
    return table([[k, v] for k, v in pairs], ["", ""], formats=["key", "value"], css="kv")


def _note(text: str) -> str:
    return f'<p class="note">{escape(text)}</p>'


def _section(anchor: str, title: str, body: str) -> str:
    return f'<section id="{anchor}"><h2>{escape(title)}</h2>{body}</section>'


def _summary(report: RunReport) -> str:
    results = report.results
    status = results["status"].fillna("")
    pairs: list[tuple[str, Any]] = [("run directory", str(report.run_dir))]
    plan = report.plan or {}
    planned = [v for v in plan.get("variants", []) if isinstance(v, dict)] if plan else None
    pairs.append(("rows in results.csv", str(len(results))))
    if planned is not None:
        replicates = int(plan.get("replicates", 1) or 1)
        firsts = sum(1 for v in planned if not v.get("replicate"))
        shown = f"{firsts} x {replicates} replicates" if replicates > 1 else str(firsts)
        pairs.append(("variants planned", shown))
    pairs.append(("ok", str(int((status == "ok").sum()))))
    pairs.append(("failed", str(int((status != "ok").sum()))))
    nodes = [n.get("key") for n in plan.get("nodes", []) if isinstance(n, dict)]
    if nodes:
        cached = sum(1 for key in nodes if key in report.cached_nodes)
        stages: dict[str, int] = {}
        for node in plan["nodes"]:
            stages[str(node.get("stage"))] = stages.get(str(node.get("stage")), 0) + 1
        listing = ", ".join(f"{k} {v}" for k, v in stages.items())
        pairs.append(("nodes in plan.json", f"{len(nodes)} ({listing})"))
        pairs.append(("nodes cached", f"{cached} of {len(nodes)}"))
    else:
        pairs.append(("nodes cached", str(len(report.cached_nodes))))
    run = report.run or plan
    if run:
        if "data" in run:
            pairs.append(("data", json.dumps(run["data"], sort_keys=True, default=str)))
        if "seed" in run:
            pairs.append(("seed", str(run["seed"])))
    if report.node_times:
        built = sum(_seconds(t.get("seconds")) for t in report.node_times.values())
        trained = sum(_seconds(t.get("train_seconds")) for t in report.node_times.values())
        pairs.append(
            (
                "time building the cached nodes (each once)",
                f"{built:.1f} s, of which training {trained:.1f} s",
            )
        )
    body = _kv(pairs)
    failed_rows = results[status != "ok"]
    if len(failed_rows):
        columns = [c for c in ("label", "variant", "pipeline", "error") if c in failed_rows.columns]
        body += "<h3>Failed variants</h3>" + _frame_table(failed_rows, columns)
    for note in report.notes:
        body += _note(note)
    return body


def _frontier(report: RunReport) -> str:
    result = report.frontier
    if result is None:
        return _note(report.frontier_note or "no frontier")
    goal = f"max {result.quality}, min {', '.join(result.footprints)}"
    parts = [f"<p>{escape(goal)}: {len(result.front)} of {len(result.rows)} ok variants.</p>"]
    if not result.rows.empty:
        best = result.with_intervals(result.best()).iloc[0]
        q = result.quality
        interval = format_interval(q, best[f"{q}_ci_low"], best[f"{q}_ci_high"])
        values = ", ".join(
            [f"{q} {format_value(q, best[q])} {interval}".strip()]
            + [f"{c} {format_value(c, best[c])}" for c in result.footprints]
        )
        parts.append(
            f"<p>Best quality: <b>{escape(str(best.get('label', best['variant'])))}</b> "
            f"({escape(values)})</p>"
        )
    if report.plot_png:
        data = base64.b64encode(report.plot_png).decode("ascii")
        parts.append(f'<img alt="{escape(goal)}" src="data:image/png;base64,{data}">')
    elif report.plot_note:
        parts.append(_note(report.plot_note))
    front = decorate(front_steps(result, result.with_intervals(result.front)), result.quality)
    columns = result.display_columns(False, "vs_smaller" if result.uncertainty else None)
    parts.append(_frame_table(front, [c for c in columns if c in front.columns]))
    if result.uncertainty is not None:
        parts.append(
            _note(
                f"Intervals: {result.uncertainty.method}. vs_smaller: quality minus the next "
                "smaller frontier point, paired on the same test samples; * significant, "
                "≈ within noise."
            )
        )
        parts.append(_robust(result))
    return "".join(parts)


def _robust(result: Frontier) -> str:
    """The candidates no variant beats significantly at no larger footprint."""
    try:
        found = robust_set(result)
    except EffdlError as exc:
        return _note(f"no candidates: {exc}")
    rows = decorate(result.with_intervals(found.candidates), result.quality)
    columns = result.display_columns(True, "vs_best")
    take = result.label_of(found.take)
    text = (
        f"<h3>Candidates</h3><p>{len(rows)} of {len(result.rows)} ok variants that no variant "
        "beats significantly in quality at no larger footprint. The one to take: the smallest "
        f"within noise of the best ({escape(result.label_of(found.best))}): "
        f"<b>{escape(take)}</b>.</p>"
    )
    if found.baseline is not None:
        verdict = (
            f"{found.beats_baseline} variant(s) beat it significantly"
            if found.beats_baseline
            else "no variant beats it significantly"
        )
        text += f"<p>Baseline {escape(found.baseline[1])}: {verdict}.</p>"
    return text + _frame_table(rows, [c for c in columns if c in rows.columns])


def _results(report: RunReport) -> str:
    df = report.results
    columns = [c for c in df.columns if df[c].notna().any() and not (df[c].astype(str) == "").all()]
    if len(df) and df["run"].nunique() == 1:
        columns = [c for c in columns if c != "run"]
    front = None
    if report.frontier is not None and not report.frontier.front.empty:
        on = set(report.frontier.front["variant"].astype(str))
        front = df["variant"].astype(str).isin(on) & (df["status"] == "ok")
        df = df.assign(frontier=front.map({True: "★", False: ""}))
        columns = ["frontier", *columns]
    return '<p class="muted">★: on the frontier.</p>' * (front is not None) + _frame_table(
        df, columns, front
    )


def _layers(detail: VariantDetail) -> str:
    if not detail.layers:
        return _note("no layers.json")
    total_macs = sum(int(layer.get("macs") or 0) for layer in detail.layers) or 1
    rows = []
    for layer in detail.layers:
        shape = "x".join(str(d) for d in layer.get("kernel_shape") or [])
        macs = int(layer.get("macs") or 0)
        rows.append(
            [
                layer.get("index"),
                layer.get("op"),
                str(layer.get("name") or "").split(";")[0],  # TFLite joins fused op names
                shape,
                layer.get("dtype"),
                layer.get("params"),
                layer.get("kernel_params"),
                layer.get("sparsity"),
                layer.get("unique_values"),
                macs,
                macs / total_macs,
            ]
        )
    columns = [
        "#",
        "op",
        "name",
        "kernel shape",
        "dtype",
        "params",
        "kernel params",
        "kernel sparsity",
        "unique values",
        "MACs",
        "share of MACs",
    ]
    formats = [
        "index",
        "op",
        "name",
        "shape",
        "dtype",
        "params",
        "kernel_params",
        "sparsity",
        "unique_weights",
        "macs",
        "percent",
    ]
    dtypes = ", ".join(f"{k}: {v:,}" for k, v in detail.weight_dtypes.items())
    extra = f'<p class="muted">weights by dtype: {escape(dtypes)}</p>' if dtypes else ""
    return table(rows, columns, formats=formats) + extra


def _time(detail: VariantDetail) -> str:
    if not detail.nodes:
        return _note("no nodes.json")
    seconds = [_seconds(n.get("seconds")) for n in detail.nodes]
    longest = max(seconds) or 1.0
    columns = ["stage", "label", "node", "seconds", "train_seconds", ""]
    body = []
    for node, secs in zip(detail.nodes, seconds, strict=True):
        bar = f'<span class="bar" style="width:{max(1, round(160 * secs / longest))}px"></span>'
        cells = [
            _cell("stage", node.get("stage")),
            _cell("label", node.get("label")),
            _cell("node", str(node.get("key", ""))[:12]),
            _cell("node_seconds", secs),
            _cell("train_seconds", _seconds(node.get("train_seconds"))),
            f"<td>{bar}</td>",
        ]
        body.append(f"<tr>{''.join(cells)}</tr>")
    total = [
        "<td>total</td><td></td><td></td>",
        _cell("node_seconds", sum(seconds)),
        _cell("train_seconds", sum(_seconds(n.get("train_seconds")) for n in detail.nodes)),
        "<td></td>",
    ]
    body.append(f"<tr>{''.join(total)}</tr>")
    head = "".join(f"<th>{escape(c)}</th>" for c in columns)
    note = (
        '<p class="muted">seconds: wall time of building the node (a cached node keeps the '
        "time of the run that built it); train_seconds: the part spent training.</p>"
    )
    return (
        f'<div class="scroll"><table><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>{note}"
    )


def _seconds(value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return 0.0
    return 0.0 if math.isnan(number) else number


def _curves(detail: VariantDetail) -> str:
    """The variant's learning curves (every training node's epochs), or why there are none."""
    from effcli.report._curves import has_curves, render_curves

    if not has_curves(detail.nodes):
        return _note("no per-epoch history (nothing trained, or a run of an earlier effdl)")
    data = base64.b64encode(render_curves(detail.nodes)).decode("ascii")
    return f'<img alt="learning curves of {escape(detail.variant)}" src="data:image/png;base64,{data}">'


def _variant(detail: VariantDetail, row: pd.Series | None) -> str:
    headline = detail.variant
    if row is not None and pd.notna(row.get("label")) and row.get("label") != row.get("variant"):
        headline = f"{row['label']} ({detail.variant})"
    if row is not None:
        bits = [str(row.get("pipeline", "")) if pd.notna(row.get("pipeline")) else ""]
        for column in ("tflite_accuracy", "tflite_bytes", "gzip_bytes", "latency_ms_p50"):
            if column in row.index and pd.notna(row[column]):
                bits.append(f"{column} {format_value(column, row[column])}")
        headline += " · " + " · ".join(b for b in bits if b)
    parts = [f"<details><summary>{escape(headline)}</summary>"]
    for note in detail.notes:
        parts.append(_note(note))
    parts.append("<h3>Learning curves</h3>" + _curves(detail))
    parts.append("<h3>Where time went</h3>" + _time(detail))
    parts.append("<h3>Layers</h3>" + _layers(detail))
    if detail.metrics:
        pairs = [(k, v) for k, v in detail.metrics.items() if not isinstance(v, (dict, list))]
        rows = [[k, v] for k, v in pairs]
        parts.append("<h3>metrics.json</h3>")
        body = "".join(f"<tr><td>{escape(str(k))}</td>{_cell(str(k), v)}</tr>" for k, v in rows)
        parts.append(f'<div class="scroll"><table class="kv"><tbody>{body}</tbody></table></div>')
    parts.append("</details>")
    return "".join(parts)


def _variants(report: RunReport) -> str:
    if not report.variants:
        return _note("no artifacts/ folder: nothing per variant to show")
    by_id = {}
    for _, row in report.results.iterrows():  # artifact folders are named by unit_name
        replicate = pd.to_numeric(row.get("replicate"), errors="coerce")
        k = 0 if pd.isna(replicate) else int(replicate)
        by_id[unit_name(str(row["variant"]), k)] = row
    return "".join(_variant(d, by_id.get(d.variant)) for d in report.variants)


def render(report: RunReport) -> str:
    """The whole page."""
    sections = [
        ("summary", "Plan summary", _summary(report)),
        ("frontier", "Frontier", _frontier(report)),
        ("results", "All results", _results(report)),
        ("variants", "Variants", _variants(report)),
        (
            "recipe",
            "Recipe",
            f"<pre>{escape(report.recipe)}</pre>" if report.recipe else _note("no recipe.yaml"),
        ),
        ("environment", "Environment", _environment(report)),
    ]
    nav = "".join(f'<a href="#{a}">{escape(t)}</a>' for a, t, _ in sections)
    body = "".join(_section(a, t, b) for a, t, b in sections)
    stamp = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    title = f"effdl report: {report.name}"
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<style>{_CSS}</style></head><body><main>"
        f"<h1>{escape(title)}</h1>"
        f'<p class="muted">{escape(str(report.run_dir))} · generated {escape(stamp)}</p>'
        f"<nav>{nav}</nav>{body}</main></body></html>\n"
    )


def _environment(report: RunReport) -> str:
    note = (
        '<p class="muted">The machine and packages that produced this report (versions from '
        "package metadata; nothing was imported).</p>"
    )
    return note + _kv(report.environment)
