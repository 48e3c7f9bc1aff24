"""A node's peak resident memory, measured in the process that builds it.

Linux keeps a process's high-water mark of resident memory (VmHWM in /proc/self/status) and
resets it when "5" is written to /proc/self/clear_refs (Linux >= 4.0). Resetting before a node and
reading after gives that node's own peak even in a worker that built others before, or in the
process of `--executor local`. It counts everything resident in the process: the Python
interpreter, TensorFlow's runtime and kernels, the dataset, the parent model and the model being
trained; so it is what producing the node needed on this machine, an upper bound of the model's
own share. Where the reset is not possible, getrusage's ru_maxrss (the process's lifetime peak) is
reported and marked as such.
"""

from __future__ import annotations

import resource
import sys
from pathlib import Path

STATUS = Path("/proc/self/status")
CLEAR_REFS = Path("/proc/self/clear_refs")


def reset_peak() -> bool:
    """Start a new peak for this process; False where the OS does not allow it."""
    try:
        CLEAR_REFS.write_text("5")
    except OSError:
        return False
    return True


def peak_rss_bytes() -> int:
    """The high-water mark of resident memory since the last reset (else since start)."""
    try:
        for line in STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024  # reported in kB
    except (OSError, ValueError, IndexError):
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)  # bytes on macOS, kB on Linux
