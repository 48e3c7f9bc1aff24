"""Silence log lines that TensorFlow and LiteRT write straight to file descriptor 2."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def native_quiet() -> Iterator[None]:
    """Send C++ log lines (absl, CUDA probing, XNNPACK, the converter) to /dev/null.

    Errors still surface as Python exceptions, which effdl reports after this block ends;
    EFFDL_DEBUG=1 (or `effdl --debug`) keeps the native output.
    """
    if os.environ.get("EFFDL_DEBUG", "") not in ("", "0"):
        yield
        return
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
