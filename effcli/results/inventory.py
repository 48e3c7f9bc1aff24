"""Experiment hygiene: which run directories exist, what they hold and weigh, and freeing a
run's cache while keeping everything its results, frontier and artifacts need.

Sizes count each file once however many hard links it has (an artifact's model.keras is a link
to the cache entry it came from, effcli.artifacts): `cache_bytes` is what deleting cache/ really
frees, the bytes no file outside cache/ still links to. Nothing here imports TensorFlow, NumPy
or pandas: `effdl runs` answers in well under a second.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from effcli import _atomic
from effcli.errors import UsageError
from effcli.results.rundir import (
    ARTIFACTS,
    CACHE,
    LABELS,
    PLAN,
    RECIPE,
    RESULTS,
    RUN,
    SPLIT,
    STUDIES,
    TEST,
    RunDir,
)

# What a cache-only clean keeps, in the order it is listed (besides leftovers of killed runs).
KEPT = (RESULTS, ARTIFACTS, RECIPE, PLAN, RUN, SPLIT, TEST, LABELS, STUDIES)
# Folders of a run directory that never hold another run: not searched.
_INSIDE_RUN = {CACHE, ARTIFACTS, STUDIES}


@dataclass(frozen=True)
class RunInfo:
    """One run directory as `effdl runs` lists it."""

    path: Path
    name: str
    kind: str  # "run" (made by `effdl run`) or "measure" (`effdl measure --out`)
    recipe: Path | None  # the merged recipe the run wrote: `effdl run` it to resume
    rows: int
    ok: int
    failed: int
    variants: int  # distinct variant ids with a row
    planned: int | None  # distinct variant ids in plan.json, when there is one
    replicates: int
    total_bytes: int
    cache_bytes: int  # what `effdl clean --cache-only` would free
    last_change: float | None  # newest mtime of results.csv and the artifact folders

    def to_json(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "name": self.name,
            "kind": self.kind,
            "recipe": str(self.recipe) if self.recipe else None,
            "rows": self.rows,
            "ok": self.ok,
            "failed": self.failed,
            "variants": self.variants,
            "planned_variants": self.planned,
            "replicates": self.replicates,
            "total_bytes": self.total_bytes,
            "cache_bytes": self.cache_bytes,
            "last_change": local_time(self.last_change, "T") if self.last_change else None,
        }


def local_time(stamp: float, sep: str = " ") -> str:
    """`2025-06-01 14:03:12+02:00`: local time with its offset (ISO 8601 with sep="T")."""
    return datetime.fromtimestamp(stamp).astimezone().isoformat(sep, timespec="seconds")


def find_run_dirs(root: Path) -> list[Path]:
    """Every folder at or below `root` holding a results.csv, sorted; the cache, artifacts and
    studies of a run and hidden folders (temporaries) are not searched."""
    found: list[Path] = []
    for folder, dirs, files in os.walk(root):
        inside = RESULTS in files
        if inside:
            found.append(Path(folder))
        dirs[:] = sorted(
            d for d in dirs if not d.startswith(".") and not (inside and d in _INSIDE_RUN)
        )
    return sorted(found)


def _read_json(path: Path) -> dict[str, Any]:
    """A JSON object, or {} when the file is missing or unreadable (listing never fails)."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _files(folder: Path) -> Iterator[os.stat_result]:
    """lstat of every regular file below `folder` (symlinks are not followed)."""
    for where, _dirs, files in os.walk(folder):
        for name in files:
            try:
                stat = os.lstat(os.path.join(where, name))
            except OSError:  # removed while we walk
                continue
            if not os.path.islink(os.path.join(where, name)):
                yield stat


def _unique_bytes(stats: Iterator[os.stat_result]) -> int:
    seen: dict[tuple[int, int], int] = {}
    for stat in stats:
        seen[(stat.st_dev, stat.st_ino)] = stat.st_size
    return sum(seen.values())


def _usage(paths: list[Path]) -> tuple[int, int]:
    """(bytes of the files below `paths`, each once; the part also linked from elsewhere, which
    deleting `paths` does not free)."""
    links: dict[tuple[int, int], int] = {}
    sizes: dict[tuple[int, int], tuple[int, int]] = {}
    for path in paths:
        stats = _files(path) if path.is_dir() else iter([path.lstat()])
        for stat in stats:
            inode = (stat.st_dev, stat.st_ino)
            links[inode] = links.get(inode, 0) + 1
            sizes[inode] = (stat.st_size, stat.st_nlink)
    total = sum(size for size, _ in sizes.values())
    # A file is freed only when every one of its links is among `paths`.
    shared = sum(size for inode, (size, nlink) in sizes.items() if nlink > links[inode])
    return total, shared


@dataclass(frozen=True)
class CacheUsage:
    """cache/ of a run: its files' bytes, and the part that other links keep alive."""

    entries: int
    bytes: int  # each file once
    shared: int  # bytes also linked from outside cache/ (artifacts/): deleting keeps them

    @property
    def freeable(self) -> int:
        return self.bytes - self.shared


def cache_usage(run: RunDir) -> CacheUsage:
    if not run.cache.is_dir():
        return CacheUsage(0, 0, 0)
    total, shared = _usage([run.cache])
    entries = sum(1 for p in run.cache.iterdir() if p.is_dir() and not p.name.startswith("."))
    return CacheUsage(entries, total, shared)


def _last_change(run: RunDir) -> float | None:
    times = [run.results.stat().st_mtime] if run.results.is_file() else []
    if run.artifacts.is_dir():
        times.append(run.artifacts.stat().st_mtime)
        times += [p.stat().st_mtime for p in run.artifacts.iterdir() if p.is_dir()]
    return max(times) if times else None


def _rows(path: Path) -> list[dict[str, str]]:
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            return list(csv.DictReader(handle))
    except (OSError, UnicodeDecodeError, csv.Error):
        return []


def describe(path: Path) -> RunInfo:
    """What one run directory holds (an unreadable file counts as empty: listing never fails)."""
    run = RunDir(path)
    rows = _rows(run.results)
    run_json = _read_json(run.run_json)
    plan = _read_json(run.plan)
    planned_ids = {str(v.get("variant")) for v in plan.get("variants", []) if isinstance(v, dict)}
    replicate_seen = [r.get("replicate", "") for r in rows]
    try:
        from_rows = max((int(float(r)) for r in replicate_seen if r), default=0) + 1
    except ValueError:
        from_rows = 1
    replicates = run_json.get("replicates")
    return RunInfo(
        path=run.root,
        name=str(run_json.get("name") or plan.get("name") or run.root.resolve().name),
        kind="run" if run.is_run() else "measure",
        recipe=run.recipe if run.recipe.is_file() else None,
        rows=len(rows),
        ok=sum(1 for r in rows if r.get("status") == "ok"),
        failed=sum(1 for r in rows if r.get("status") == "failed"),
        variants=len({r.get("variant") for r in rows}),
        planned=len(planned_ids) if planned_ids else None,
        replicates=replicates if isinstance(replicates, int) else from_rows,
        total_bytes=_unique_bytes(_files(run.root)),
        cache_bytes=cache_usage(run).freeable,
        last_change=_last_change(run),
    )


@contextmanager
def no_run_active(run: RunDir) -> Iterator[None]:
    """Hold the run lock (as `effdl run` takes it, effcli.execute.workspace) so no run starts
    meanwhile; a UsageError when a run holds it now."""
    with ExitStack() as stack:
        try:
            stack.enter_context(_atomic.locked(run.run_lock, wait=False))
        except BlockingIOError:
            raise UsageError(
                f"{run.root}: an effdl run is using this directory; clean it after the run ends"
            ) from None
        yield


@dataclass(frozen=True)
class CleanResult:
    """What a cache-only clean removes (or, dry, would remove) and what stays."""

    run: RunDir
    cache: CacheUsage
    leftovers: list[Path] = field(default_factory=list)  # temporaries of killed runs
    leftover_bytes: int = 0
    kept_bytes: int = 0
    kept: list[str] = field(default_factory=list)  # names of what stays, in KEPT order
    artifacts: int = 0
    recorded: int = 0  # variant ids with a row: what a rerun skips

    @property
    def freed(self) -> int:
        return self.cache.freeable + self.leftover_bytes


def _leftovers(run: RunDir) -> list[Path]:
    found: list[Path] = []
    for folder in (run.root, run.artifacts):
        if folder.is_dir():
            found += sorted(folder.glob(_atomic.TEMP_GLOB))
    return found


def clean_cache(path: Path, dry_run: bool = False) -> CleanResult:
    """Delete cache/ of the run directory at `path` (all of it: a rerun then retrains only nodes
    of variants without a row) and the temporaries killed runs left; keep the rest.

    Crash-safe: cache/ is first renamed to a temporary name (`.cache.<pid>.tmp-clean`, atomic),
    so the run directory is at once either as before or without its cache; a deletion cut short
    leaves only that temporary, which the next `effdl run` or `effdl clean` sweeps."""
    run = RunDir(path)
    if not run.root.is_dir():
        raise UsageError(f"{path}: no such run directory")
    if not run.is_run():
        what = (
            "results of 'effdl measure --out' (no cache to free)"
            if run.results.is_file()
            else "not a run directory (no run.json)"
        )
        raise UsageError(f"{path}: {what}; give a folder 'effdl run' wrote, e.g. results/<name>")
    with no_run_active(run):
        usage = cache_usage(run)
        leftovers = _leftovers(run)
        leftover_total, leftover_shared = _usage(leftovers)
        leftover_bytes = leftover_total - leftover_shared
        rows = _rows(run.results)
        kept = [name for name in KEPT if (run.root / name).exists()]
        total = _unique_bytes(_files(run.root))
        result = CleanResult(
            run=run,
            cache=usage,
            leftovers=leftovers,
            leftover_bytes=leftover_bytes,
            kept_bytes=total - usage.freeable - leftover_bytes,
            kept=kept,
            artifacts=len(run.artifact_dirs()),
            recorded=len({r.get("variant") for r in rows}),
        )
        if not dry_run:
            if run.cache.exists():
                doomed = _atomic.temp_path(run.cache, "-clean")
                shutil.rmtree(doomed, ignore_errors=True)  # an earlier clean with our pid
                os.replace(run.cache, doomed)
                shutil.rmtree(doomed)
            _atomic.sweep(run.root, run.artifacts)  # we hold the run lock
    return result
