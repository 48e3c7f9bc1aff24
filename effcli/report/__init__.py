"""`effdl report`: one self-contained HTML page about a run directory. Never imports TensorFlow.

The page holds the recipe, the environment, the plan summary, every results row, the frontier
(table and plot, embedded as a base64 PNG), and per variant its layers and where time went.
"""

from __future__ import annotations

from pathlib import Path

from effcli._atomic import write_bytes
from effcli.report._collect import RunReport, collect, environment
from effcli.report._html import render

__all__ = ["RunReport", "build_report", "collect", "environment", "render", "write_report"]


def build_report(
    run_dir: Path, quality: str = "tflite_accuracy", footprints: list[str] | None = None
) -> str:
    """The report of `run_dir` as an HTML string."""
    return render(collect(Path(run_dir), quality, list(footprints or ["tflite_bytes"])))


def write_report(html: str, out: Path) -> int:
    """Write atomically (temp file + rename); returns the size in bytes."""
    out.parent.mkdir(parents=True, exist_ok=True)
    data = html.encode("utf-8")
    write_bytes(out, data)
    return len(data)
