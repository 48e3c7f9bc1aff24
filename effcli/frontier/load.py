"""Find and read results CSVs from any number of run directories."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path

import pandas as pd

from effcli.errors import UsageError
from effcli.results.rundir import RESULTS as RESULTS_NAME

REQUIRED = ("variant", "status")
TEXT_COLUMNS = {"variant": str, "label": str, "status": str, "error": str, "baseline": str}


def find_results(paths: Iterable[str | Path]) -> list[Path]:
    """Every results.csv named directly or found below the given directories."""
    found: dict[Path, None] = {}
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise UsageError(f"{path}: no such file or directory")
        if path.is_file():
            found[path] = None
        else:
            found.update(dict.fromkeys(sorted(path.rglob(RESULTS_NAME))))
    return list(found)


def _run_names(files: list[Path]) -> list[str]:
    """The run directory's name, or its path relative to the common parent when names clash."""
    names = [f.parent.name or str(f.parent) for f in files]
    if len(set(names)) == len(names):
        return names
    parents = [f.parent.resolve() for f in files]
    common = Path(os.path.commonpath([str(p) for p in parents]))
    return [str(p.relative_to(common)) if p != common else p.name for p in parents]


def load_results(paths: Iterable[str | Path], warn: Callable[[str], None]) -> pd.DataFrame:
    """All rows of all results CSVs under `paths`, with a `run` column; unreadable ones skipped."""
    paths = list(paths)
    files = find_results(paths)
    if not files:
        shown = " ".join(str(p) for p in paths)
        raise UsageError(f"no {RESULTS_NAME} under {shown} (run 'effdl run RECIPE' first)")
    frames = []
    names = _run_names(files)
    for file, run in zip(files, names, strict=True):
        try:
            frame = pd.read_csv(file, dtype=TEXT_COLUMNS)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
            warn(f"skipped {file}: not a readable CSV ({type(exc).__name__})")
            continue
        missing = [c for c in REQUIRED if c not in frame.columns]
        if missing:
            warn(f"skipped {file}: not an effdl results file (no column {missing[0]})")
            continue
        # Runs made before labels existed (and `effdl measure` rows) read by their id.
        labels = frame.pop("label") if "label" in frame.columns else pd.Series(index=frame.index)
        labels = labels.where(labels.notna() & (labels != ""), frame["variant"])
        frame.insert(list(frame.columns).index("variant") + 1, "label", labels)
        frame.insert(0, "run", run)
        frames.append(frame)
    if not frames:
        raise UsageError("no readable results.csv among the given paths")
    df = pd.concat(frames, ignore_index=True, sort=False)
    # Where each run's artifacts are (per-sample predictions for the intervals).
    df.attrs["run_dirs"] = {run: file.parent for file, run in zip(files, names, strict=True)}
    return df
