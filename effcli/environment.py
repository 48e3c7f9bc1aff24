"""What decides the numbers besides the recipe: the machine, the package builds, the threads.

The same recipe and seed on the same machine give bit-identical rows; on another CPU or with
another TensorFlow build or thread count they do not (oneDNN and XNNPACK pick other kernels and
summation orders). A run records this in run.json and every node its short id, so mixed origins
are visible. Nothing here imports TensorFlow: versions come from package metadata.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

# Versions read from installed package metadata: none of these is imported.
PACKAGES = (
    "effdl",
    "tensorflow",
    "tf_keras",
    "tensorflow-model-optimization",
    "ai-edge-litert",
    "numpy",
    "pandas",
    "scikit-learn",
    "matplotlib",
)


def versions() -> dict[str, str]:
    """Installed version of each package effdl's numbers depend on."""
    found = {}
    for package in PACKAGES:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "not installed"
    return found


def cpu_model() -> str:
    """The CPU's model name (Linux /proc/cpuinfo, else what platform says)."""
    info = Path("/proc/cpuinfo")
    try:
        for line in info.read_text(errors="replace").splitlines():
            if line.lower().startswith(("model name", "hardware", "cpu model")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def usable_cores() -> int:
    """Cores this process may run on (affinity / cgroup limits), not the machine's total."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def record(threads: int, deterministic: bool) -> dict[str, Any]:
    """The environment of a run: machine, builds, TensorFlow's threads and determinism."""
    env = {
        "cpu": cpu_model(),
        "machine": platform.machine(),
        "cores": usable_cores(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "packages": versions(),
        "tensorflow_intra_op_threads": threads,
        "tensorflow_inter_op_threads": 1,
        "op_determinism": deterministic,
        "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default"),
    }
    env["id"] = environment_id(env)
    return env


def environment_id(env: dict[str, Any]) -> str:
    """A short id of what decides the numbers (the platform string and core count excluded:
    they change with a kernel update or a container limit, the kernels do not)."""
    decisive = {k: v for k, v in env.items() if k not in ("id", "platform", "cores")}
    return hashlib.sha256(json.dumps(decisive, sort_keys=True).encode()).hexdigest()[:12]
