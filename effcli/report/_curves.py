"""Learning curves of one variant: every epoch its chain of nodes trained (nodes.json's
`history`), loss and accuracy on the training and validation splits, one after the other."""

from __future__ import annotations

import io
import math
from typing import Any

CURVES = (("loss", "loss"), ("accuracy", "accuracy"))


def _value(epoch: dict[str, Any], key: str) -> float:
    try:
        number = float(epoch.get(key, math.nan))
    except (TypeError, ValueError):
        return math.nan
    return number if math.isfinite(number) else math.nan


def has_curves(nodes: list[dict[str, Any]]) -> bool:
    return any(isinstance(n.get("history"), list) and n["history"] for n in nodes)


def render_curves(nodes: list[dict[str, Any]]) -> bytes:
    """A PNG: loss (left) and accuracy (right) per epoch, train solid and validation dashed;
    dotted lines where the next training node (a fine-tune, a new fit of a search) begins."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(8, 2.6), dpi=80)
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 2)
    x = 0
    xs: list[int] = []
    series: dict[str, list[float]] = {}
    starts: list[tuple[int, str]] = []
    for node in nodes:
        history = node.get("history")
        if not isinstance(history, list) or not history:
            continue
        fit = None
        for epoch in history:
            if not isinstance(epoch, dict):
                continue
            if epoch.get("fit") != fit:
                fit = epoch.get("fit")
                name = str(node.get("stage", ""))
                starts.append((x, name if not fit else f"{name} fit {fit}"))
            x += 1
            xs.append(x)
            for key, _ in CURVES:
                series.setdefault(key, []).append(_value(epoch, key))
                series.setdefault(f"val_{key}", []).append(_value(epoch, f"val_{key}"))
    for ax, (key, title) in zip(axes, CURVES, strict=True):
        marker = "o" if len(xs) <= 30 else None  # a few epochs: show each one
        ax.plot(xs, series.get(key, []), color="#1f77b4", marker=marker, ms=3, label="train")
        ax.plot(
            xs,
            series.get(f"val_{key}", []),
            color="#d62728",
            ls="--",
            marker=marker,
            ms=3,
            label="validation",
        )
        for start, name in starts:
            if start:
                ax.axvline(start + 0.5, color="#999999", ls=":", lw=1)
            ax.annotate(
                name,
                (start + 1, 0.98),  # the node's first epoch, at the top
                xycoords=("data", "axes fraction"),
                xytext=(2, 0),
                textcoords="offset points",
                ha="left",
                va="top",
                fontsize=7,
                color="#555555",
            )
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("epoch (all training nodes, in order)", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    out = io.BytesIO()
    fig.savefig(out, format="png")
    return out.getvalue()
