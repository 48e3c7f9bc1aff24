"""Atomic writes: every file and folder effdl keeps appears whole or not at all.

Each is written under a temporary name in its own folder (`.<name>.<pid>.tmp<suffix>`, the same
file system, so the rename is atomic) and renamed into place; a run killed mid-write leaves only a
temporary, which `sweep` removes (the caller must hold the run lock) and a rerun never mistakes
for finished work.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

TEMP_GLOB = ".*.tmp*"


@contextmanager
def locked(path: Path, *, wait: bool = True) -> Iterator[None]:
    """Hold an exclusive lock on the file `path` (created if absent) for the block: the run lock,
    the results and tracking locks. With `wait=False`, BlockingIOError at once when another
    process holds it (enter it apart from the block, e.g. with an ExitStack, to tell the two
    apart). Released when the block ends, or when the process dies."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def temp_path(path: Path, suffix: str = "") -> Path:
    """The temporary name `path` is written under (`suffix` for writers that insist on one)."""
    return path.with_name(f".{path.name}.{os.getpid()}.tmp{suffix}")


@contextmanager
def replacing(path: Path, suffix: str = "", *, durable: bool = False) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces `path`, on error it is removed.

    `durable` fsyncs the file before the rename (results.csv: rows must survive a power cut)."""
    path = Path(path)
    tmp = temp_path(path, suffix)
    try:
        yield tmp
        if durable:
            with open(tmp, "rb+") as handle:
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)


def write_bytes(path: Path, data: bytes) -> None:
    with replacing(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: Path, text: str) -> None:
    with replacing(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: Path, payload: Any) -> None:
    """Indented, key-sorted JSON; values JSON cannot hold are written as strings."""
    write_text(path, json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n")


def write_yaml(path: Path, payload: Any) -> None:
    write_text(path, yaml.safe_dump(payload, sort_keys=False))


@contextmanager
def folder(final: Path) -> Iterator[Path]:
    """Yield an empty temporary folder; on success it replaces `final` (and whatever an earlier,
    unfinished attempt left there), on error it is removed."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(final)
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        yield tmp
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def sweep(*folders: Path) -> None:
    """Remove the temporaries a killed process left directly in `folders`."""
    for where in folders:
        if not where.is_dir():
            continue
        for leftover in where.glob(TEMP_GLOB):
            if leftover.is_dir():
                shutil.rmtree(leftover, ignore_errors=True)
            else:
                leftover.unlink(missing_ok=True)
