"""The frontier as a picture: quality against the first footprint, one colour per pipeline.

matplotlib is imported here only, inside the functions, and drawn on an Agg canvas attached to
the figure (never pyplot), so plotting works headless and touches no global backend state; the
commands that do not plot never import it.
"""

from __future__ import annotations

import ast
import io
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from effcli.errors import UsageError
from effcli.frontier.constraints import column_kind
from effcli.frontier.pareto import pareto_mask
from effcli.frontier.query import Frontier
from effcli.frontier.significance import front_steps

FORMATS = ("png", "svg", "pdf")
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">")
_MAX_LABELS = 20  # frontier points labelled; more would only overlap
_LABEL_CHARS = 60


def axis_scale(column: str, values: pd.Series) -> tuple[float, str]:
    """(factor, axis label with unit): bytes in B/KB/MB/GB by magnitude, fractions in %."""
    kind = column_kind(column).name
    if kind == "bytes":
        largest = float(np.nanmax(values.to_numpy(dtype=float))) if len(values) else 0.0
        for unit, factor in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
            if largest >= factor:
                return 1 / factor, f"{column} ({unit}, 1 {unit} = {factor:,.0f} B)"
        return 1.0, f"{column} (bytes)"
    if kind == "milliseconds":
        return 1.0, f"{column} (ms)"
    if kind == "seconds":
        return 1.0, f"{column} (s)"
    if kind == "fraction":
        return 100.0, f"{column} (%)"
    return 1.0, column


def point_labels(rows: pd.DataFrame) -> list[str]:
    """A short name per row: its label (`w0.25 prune80% int8`, with the run when there are
    several); for rows of runs made before labels, one from the knobs that differ between rows
    (`width=0.25, prune, sparsity=0.8`; `no prune` for a disabled stage), with the branch, or
    the variant id when no knob differs. Knobs of the same name in different pipelines
    (train.width_multiplier, distill.width_multiplier) share one name."""
    several_runs = "run" in rows.columns and rows["run"].nunique() > 1
    if "label" in rows.columns and (rows["label"] != rows["variant"]).all():
        return [
            _fit(f"{r}: {t}" if several_runs else str(t))
            for r, t in zip(rows["run"], rows["label"], strict=True)
        ]
    knobs = [c for c in rows.columns if "." in c and rows[c].nunique(dropna=False) > 1]
    last = [c.rsplit(".", 1)[-1] for c in knobs]
    exclusive = {
        short: not (
            rows[[k for k, s in zip(knobs, last, strict=True) if s == short]].notna().sum(axis=1)
            > 1
        ).any()
        for short in set(last)
    }
    names = [
        short.removesuffix("_multiplier") if last.count(short) == 1 or exclusive[short] else full
        for full, short in zip(knobs, last, strict=True)
    ]
    several_branches = "branch" in rows.columns and rows["branch"].nunique() > 1
    labels = []
    for _, row in rows.iterrows():
        parts = []
        for column, name in zip(knobs, names, strict=True):
            value = row[column]
            if not _set(value):
                continue
            if column.endswith(".enabled"):
                stage = column.rsplit(".", 1)[0].rsplit(".", 1)[-1]
                parts.append(stage if _truthy(value) else f"no {stage}")
            else:
                parts.append(f"{name}={_short(value)}")
        if several_branches and _set(row["branch"]):
            parts.insert(0, str(row["branch"]))
        text = ", ".join(parts) or str(row["variant"])
        if "baseline" in rows.columns and _set(row["baseline"]):
            text = f"baseline ({row['baseline']})"
        if "label" in rows.columns and _set(row["label"]) and row["label"] != row["variant"]:
            text = str(row["label"])  # a labelled row among rows of runs made before labels
        if several_runs:
            text = f"{row['run']}: {text}"
        labels.append(_fit(text))
    return labels


def _fit(text: str) -> str:
    """A point label cut to _LABEL_CHARS."""
    return text if len(text) <= _LABEL_CHARS else text[: _LABEL_CHARS - 1] + "…"


def _truthy(value: Any) -> bool:
    return str(value).strip().lower() in ("true", "1", "1.0", "yes")


def _set(value: Any) -> bool:
    return not (value is None or (isinstance(value, float) and math.isnan(value)))


def _short(value: Any) -> str:
    """A number in %g; a swept mapping ({'translate': 0.1, 'noise': 0.05}, as the CSV writes
    it) as `translate 0.1+noise 0.05`, an empty one as `none`."""
    if isinstance(value, float):
        return f"{value:g}"
    text = str(value)
    if text.startswith("{") and text.endswith("}"):
        try:
            mapping = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            return text
        if isinstance(mapping, dict):
            return "+".join(f"{k} {_short(v)}" for k, v in mapping.items()) or "none"
    return text


def render_plot(result: Frontier, log_x: bool = False, fmt: str = "png") -> bytes:
    """The plot as PNG (or SVG/PDF) bytes."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    quality, footprint = result.quality, result.footprints[0]
    rows, rejected = result.rows, result.rejected
    everything = pd.concat([rows, rejected], ignore_index=True) if len(rejected) else rows
    x_factor, x_label = axis_scale(footprint, everything[footprint] if len(everything) else rows)
    y_factor, y_label = axis_scale(quality, everything[quality] if len(everything) else rows)

    fig = Figure(figsize=(10, 6), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    pipelines = rows["pipeline"].fillna("") if "pipeline" in rows.columns else pd.Series(dtype=str)
    names = sorted(pipelines.astype(str).unique())
    palette = _palette(len(names))
    runs = sorted(rows["run"].astype(str).unique()) if "run" in rows.columns else []
    several_runs = len(runs) > 1

    if len(rejected):
        ax.scatter(
            pd.to_numeric(rejected[footprint], errors="coerce") * x_factor,
            pd.to_numeric(rejected[quality], errors="coerce") * y_factor,
            s=22,
            facecolors="none",
            edgecolors="#b0b0b0",
            label=f"outside --where ({len(rejected)})",
            zorder=1,
        )
    # Points of equal footprint (e.g. every pruning of one width) side by side, not stacked: the
    # markers, bars, rings and labels use the dodged `_x`; the step line the true footprint.
    rows = rows.assign(_x=_dodged(rows, footprint, log_x))
    bars = result.with_intervals(rows) if result.uncertainty is not None else rows
    for colour, name in zip(palette, names, strict=True):
        for m, run in enumerate(runs or [""]):
            pick = (pipelines.astype(str) == name) & (
                (rows["run"].astype(str) == run) if runs else True
            )
            if not pick.any():
                continue
            _draw_intervals(ax, bars[pick], quality, "_x", x_factor, y_factor, colour)
            ax.scatter(
                rows.loc[pick, "_x"] * x_factor,
                rows.loc[pick, quality] * y_factor,
                s=30,
                color=colour,
                marker=_MARKERS[m % len(_MARKERS)],
                alpha=0.85,
                label=(f"{name or '(none)'}" + (f" [{run}]" if several_runs else "")),
                zorder=2,
            )

    _draw_baseline(ax, rows, quality, "_x", x_factor, y_factor)
    _draw_step(ax, rows, quality, footprint, x_factor, y_factor, len(result.footprints) > 1)
    front = front_steps(result) if result.uncertainty is not None else result.front
    front = front.merge(rows[["run", "variant", "_x"]], on=["run", "variant"], how="left")
    noise = (
        front["vs_smaller_significant"].eq(False).to_numpy()
        if "vs_smaller_significant" in front.columns
        else np.zeros(len(front), dtype=bool)
    )
    if len(front):
        for within, style, colour, label in (
            (False, "solid", "black", f"on the frontier ({int((~noise).sum())})"),
            (True, "dashed", "#7f7f7f", f"on it, within noise of the next smaller ({noise.sum()})"),
        ):
            pick = noise == within
            if not pick.any():
                continue
            ax.scatter(
                front.loc[pick, "_x"] * x_factor,
                front.loc[pick, quality] * y_factor,
                s=90,
                facecolors="none",
                edgecolors=colour,
                linestyles=style,
                linewidths=1.2,
                label=label,
                zorder=3,
            )
    _draw_limits(ax, result, x_factor, y_factor)
    if log_x:
        _log_axis(ax)
    if len(front):
        low, high = ax.get_ylim()  # headroom: the top point's label alternates like the others
        ax.set_ylim(low, high + 0.08 * (high - low))
        labels = [
            f"{text} ≈" if within else text
            for text, within in zip(point_labels(front), noise, strict=True)
        ]
        _label(ax, front, labels, "_x", quality, x_factor, y_factor)

    ax.set_xlabel(x_label + (", log scale" if log_x else ""))
    ax.set_ylabel(y_label)
    ax.grid(True, which="both", alpha=0.25)
    goal = f"max {quality} vs min {', '.join(result.footprints)}"
    counts = f"{len(front)} of {len(rows)} ok variants on the frontier"
    if result.replicated:
        counts += f"; means of {int(rows['n_replicates'].max())} replicates"
    if result.uncertainty is not None:
        counts += f"; bars: {result.uncertainty.method}"
    ax.set_title(f"Pareto frontier: {goal}\n{counts}", fontsize=10, loc="left")
    if result.constraints:
        where = "; ".join(c.expression for c in result.constraints)
        ax.text(0.0, -0.12, f"where {where}", transform=ax.transAxes, fontsize=8, va="top")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    buffer = io.BytesIO()
    fig.savefig(buffer, format=fmt, bbox_inches="tight")
    return buffer.getvalue()


def _label(
    ax: Any,
    front: pd.DataFrame,
    labels: list[str],
    footprint: str,
    quality: str,
    x_factor: float,
    y_factor: float,
) -> None:
    """Label every point of a short front, an evenly spaced subset of a long one; labels near
    the right or top edge go to the left or below so they stay inside the axes."""
    step = max(1, math.ceil(len(front) / _MAX_LABELS))
    to_axes = ax.transAxes.inverted()
    for i, position in enumerate(range(0, len(front), step)):
        row = front.iloc[position]
        point = (row[footprint] * x_factor, row[quality] * y_factor)
        fx, fy = to_axes.transform(ax.transData.transform(point))
        right = fx > 0.7
        dy = -12 if fy > 0.9 else (8 if i % 2 == 0 else -12)
        ax.annotate(
            labels[position],
            point,
            textcoords="offset points",
            xytext=(-6 if right else 6, dy),
            ha="right" if right else "left",
            fontsize=7,
            zorder=4,
        )


DODGE = 0.01  # of the footprint axis, between neighbouring points of the same footprint


def _dodged(rows: pd.DataFrame, footprint: str, log_x: bool) -> np.ndarray:
    """Footprints with points of equal value spread side by side (by pipeline, then quality),
    a small fraction of the axis apart (multiplicatively on a log axis)."""
    x = rows[footprint].to_numpy(dtype=float)
    if len(x) == 0 or not np.isfinite(x).any():
        return x
    low, high = np.nanmin(x), np.nanmax(x)
    order = rows.assign(_v=x).sort_values(
        ["_v", "pipeline", rows.columns[0]] if "pipeline" in rows.columns else ["_v"],
        kind="mergesort",
    )
    rank = order.groupby("_v", sort=False).cumcount()
    size = order.groupby("_v", sort=False)["_v"].transform("size")
    offset = pd.Series((rank - (size - 1) / 2).to_numpy(), index=order.index).reindex(rows.index)
    if log_x and low > 0:
        step = DODGE * max(np.log10(high / low), 1.0)
        return x * 10 ** (offset.to_numpy() * step)
    step = DODGE * ((high - low) or abs(high) or 1.0)
    return x + offset.to_numpy() * step


def _draw_intervals(
    ax: Any,
    rows: pd.DataFrame,
    quality: str,
    footprint: str,
    x_factor: float,
    y_factor: float,
    colour: Any,
) -> None:
    """Vertical error bars: each variant's interval of its quality."""
    low, high = f"{quality}_ci_low", f"{quality}_ci_high"
    if low not in rows.columns:
        return
    have = rows[low].notna() & rows[high].notna()
    if not have.any():
        return
    y = rows.loc[have, quality].to_numpy(dtype=float)
    below = np.clip(y - rows.loc[have, low].to_numpy(dtype=float), 0, None)
    above = np.clip(rows.loc[have, high].to_numpy(dtype=float) - y, 0, None)
    ax.errorbar(
        rows.loc[have, footprint].to_numpy(dtype=float) * x_factor,
        y * y_factor,
        yerr=[below * y_factor, above * y_factor],
        fmt="none",
        ecolor=colour,
        elinewidth=0.9,
        capsize=2.5,
        alpha=0.7,
        zorder=1.8,
    )


def _draw_baseline(
    ax: Any, rows: pd.DataFrame, quality: str, footprint: str, x_factor: float, y_factor: float
) -> None:
    """The recipe's reference variant as a large grey cross."""
    if "baseline" not in rows.columns:
        return
    base = rows[rows["baseline"].notna()]
    if base.empty:
        return
    ax.scatter(
        base[footprint] * x_factor,
        base[quality] * y_factor,
        s=110,
        marker="X",
        color="#555555",
        label=f"baseline ({', '.join(sorted(set(base['baseline'].astype(str))))})",
        zorder=3.5,
    )


def _log_axis(ax: Any) -> None:
    """Log x with plain tick labels (20, 50, 100 rather than 2x10^1); minor ticks are labelled
    too on a short axis (2..8 within one decade, 2 and 5 within two)."""
    from matplotlib.ticker import FuncFormatter

    ax.set_xscale("log")
    low, high = ax.get_xlim()
    decades = math.log10(high / low) if low > 0 else math.inf
    shown = (2, 3, 4, 5, 6, 8) if decades <= 1 else (2, 5) if decades <= 2 else ()

    def minor(value: float, _: int) -> str:
        mantissa = round(value / 10 ** math.floor(math.log10(value))) if value > 0 else 0
        return f"{value:g}" if mantissa in shown else ""

    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    ax.xaxis.set_minor_formatter(FuncFormatter(minor))


def _palette(n: int) -> list[Any]:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


def _draw_step(
    ax: Any,
    rows: pd.DataFrame,
    quality: str,
    footprint: str,
    x_factor: float,
    y_factor: float,
    projected: bool,
) -> None:
    """Best quality within each budget of the plotted footprint: a step up at each front point,
    flat to the right edge. With several footprints this is the 2-D front of the plotted axes."""
    if rows.empty:
        return
    values = rows[[quality, footprint]].to_numpy(dtype=float)
    mask = pareto_mask(values, [True, False])
    points = values[mask]
    points = points[np.lexsort((-points[:, 0], points[:, 1]))]
    # Keep one point per footprint value (the best quality) so the line is a clean staircase.
    first = np.r_[True, points[1:, 1] != points[:-1, 1]]
    points = points[first]
    xs = np.r_[points[:, 1], np.nanmax(values[:, 1])] * x_factor
    ys = np.r_[points[:, 0], points[-1, 0]] * y_factor
    label = f"frontier ({quality} vs {footprint})" if projected else "frontier"
    ax.step(xs, ys, where="post", color="black", linewidth=1.2, label=label, zorder=2.5)


def _draw_limits(ax: Any, result: Frontier, x_factor: float, y_factor: float) -> None:
    """Dashed lines for --where bounds on the plotted axes."""
    drawn = False
    for constraint in result.constraints:
        if constraint.number is None or constraint.op in ("==", "!="):
            continue
        kwargs = {"color": "#c0392b", "linestyle": "--", "linewidth": 1, "zorder": 1.5}
        label = "--where limit" if not drawn else None
        if constraint.column == result.footprints[0]:
            ax.axvline(constraint.number * x_factor, label=label, **kwargs)
        elif constraint.column == result.quality:
            ax.axhline(constraint.number * y_factor, label=label, **kwargs)
        else:
            continue
        drawn = True


def save_plot(result: Frontier, path: Path, log_x: bool = False) -> int:
    """Write the plot to `path` (format from its suffix: .png, .svg or .pdf); returns bytes."""
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise UsageError(f"--plot {path}: the file must end in .png, .svg or .pdf")
    if result.rows.empty:
        raise UsageError(f"--plot {path}: no ok row has both {result.quality} and a footprint")
    content = render_plot(result, log_x=log_x, fmt=fmt)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return len(content)
