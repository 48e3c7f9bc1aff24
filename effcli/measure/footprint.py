"""Footprint of a file on disk: what a device downloads and stores."""

from __future__ import annotations

import gzip
from pathlib import Path


def tflite_bytes(path: Path) -> int:
    """Size of the exported file in bytes."""
    return Path(path).stat().st_size


def gzip_bytes(path: Path) -> int:
    """Size after `gzip -9`: where pruning and clustering show up (raw size does not change)."""
    return len(gzip.compress(Path(path).read_bytes(), compresslevel=9, mtime=0))
