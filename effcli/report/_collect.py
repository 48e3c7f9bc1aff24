"""Everything a report shows, read from a run directory (no HTML here, no TensorFlow).

Each piece is read independently and a missing or unreadable file becomes a note, so a report
of a half-finished run, or of a folder written by `effdl measure`, still has every other section.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from effcli.environment import cpu_model, versions
from effcli.errors import EffdlError, UsageError
from effcli.results.rundir import RESULTS, ArtifactDir, RunDir


@dataclass
class VariantDetail:
    """The artifacts/<variant>/ folder: its metrics, per-layer table and per-node timings."""

    variant: str
    metrics: dict[str, Any] | None = None
    layers: list[dict[str, Any]] = field(default_factory=list)
    weight_dtypes: dict[str, int] = field(default_factory=dict)
    nodes: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class RunReport:
    """What the HTML shows, gathered once."""

    run_dir: Path
    name: str
    results: pd.DataFrame
    recipe: str | None
    plan: dict[str, Any] | None
    run: dict[str, Any] | None
    cached_nodes: set[str]  # keys of finished nodes in cache/
    node_times: dict[str, dict[str, Any]]  # key -> stage, label, seconds, train_seconds
    environment: list[tuple[str, str]]
    frontier: Any | None  # effcli.frontier.query.Frontier
    frontier_note: str
    plot_png: bytes | None
    plot_note: str
    variants: list[VariantDetail]
    notes: list[str] = field(default_factory=list)


def environment() -> list[tuple[str, str]]:
    """Python, platform, CPU and package versions (from metadata, without importing them)."""
    rows = [
        ("python", f"{platform.python_implementation()} {sys.version.split()[0]}"),
        ("platform", platform.platform()),
        ("machine", platform.machine() or "unknown"),
        ("CPU", cpu_model()),
        ("CPU count", str(os.cpu_count() or "unknown")),
    ]
    return rows + list(versions().items())


def _json(path: Path, notes: list[str]) -> Any:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        notes.append(f"{path.name}: unreadable ({type(exc).__name__})")
        return None


def _variant(folder: ArtifactDir) -> VariantDetail:
    detail = VariantDetail(variant=folder.name)
    metrics = _json(folder.metrics, detail.notes)
    detail.metrics = metrics if isinstance(metrics, dict) else None
    layers = _json(folder.layers, detail.notes)
    if isinstance(layers, dict):
        detail.layers = [x for x in layers.get("layers", []) if isinstance(x, dict)]
        detail.weight_dtypes = dict(layers.get("weight_dtypes") or {})
    nodes = _json(folder.nodes, detail.notes)
    if isinstance(nodes, list):
        detail.nodes = [n for n in nodes if isinstance(n, dict)]
    return detail


def _variants(run_dir: RunDir, results: pd.DataFrame) -> list[VariantDetail]:
    """Artifact folders in results order, then any others by name."""
    present = run_dir.artifact_dirs()
    order = [str(v) for v in results.get("variant", pd.Series(dtype=str)) if str(v) in present]
    order += sorted(set(present) - set(order))
    return [_variant(present[name]) for name in dict.fromkeys(order)]


def _node_times(run_dir: RunDir, keys: set[str], notes: list[str]) -> dict[str, dict[str, Any]]:
    """Per cached node: what it was and how long building and training took (from meta.json)."""
    times = {}
    for key in sorted(keys):
        meta = _json(run_dir.node_meta(key), notes)
        if isinstance(meta, dict):
            wanted = ("stage", "label", "seconds", "train_seconds")
            times[key] = {k: meta.get(k) for k in wanted}
    return times


def collect(run_dir: Path, quality: str, footprints: list[str]) -> RunReport:
    """Read the run directory; UsageError only when it holds no results.csv at all."""
    from effcli.frontier import load_results
    from effcli.frontier.query import compute_frontier

    folder = RunDir(run_dir)
    if not folder.root.is_dir():
        raise UsageError(f"{run_dir}: no such run directory")
    if not folder.results.is_file():
        raise UsageError(
            f"{run_dir}: no {RESULTS} (not a run directory; run 'effdl run RECIPE' first)"
        )
    notes: list[str] = []
    results = load_results([folder.results], warn=notes.append)
    recipe = (
        folder.recipe.read_text(encoding="utf-8", errors="replace")
        if folder.recipe.is_file()
        else None
    )
    plan = _json(folder.plan, notes)
    run = _json(folder.run_json, notes)
    name = (plan or {}).get("name") or (run or {}).get("name") or folder.root.resolve().name

    cached = folder.cached_keys()
    frontier, frontier_note = None, ""
    try:
        frontier = compute_frontier(results, quality, footprints)
    except EffdlError as exc:
        if str(exc).startswith(("--quality", "--footprint")):
            raise  # a column the user named does not exist: fail, do not write a report
        frontier_note = str(exc)
    plot_png, plot_note = None, ""
    if frontier is not None and not frontier.rows.empty:
        try:
            from effcli.frontier.plot import render_plot

            values = frontier.rows[frontier.footprints[0]]
            spread = values.max() / values.min() if values.min() > 0 else 1.0
            plot_png = render_plot(frontier, log_x=bool(spread > 30))
        except ImportError as exc:
            plot_note = f"no plot: matplotlib is not available ({exc})"
    elif frontier is not None:
        plot_note = "no plot: no ok row has every chosen value"
    return RunReport(
        run_dir=folder.root,
        name=str(name),
        results=results,
        recipe=recipe,
        plan=plan if isinstance(plan, dict) else None,
        run=run if isinstance(run, dict) else None,
        cached_nodes=cached,
        node_times=_node_times(folder, cached, notes),
        environment=environment(),
        frontier=frontier,
        frontier_note=frontier_note,
        plot_png=plot_png,
        plot_note=plot_note,
        variants=_variants(folder, results),
        notes=notes,
    )
