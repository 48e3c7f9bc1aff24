"""What this machine gives a run: usable cores, visible GPUs, and which worker gets which GPU.

Nothing here imports TensorFlow: the scheduler decides before any worker starts. GPUs are read
from CUDA_VISIBLE_DEVICES when it is set (what TensorFlow itself would honour), else from
`nvidia-smi -L`; every function takes its inputs as arguments so tests fake the devices.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

CGROUP = Path("/sys/fs/cgroup")


def usable_cores(cgroup: Path = CGROUP) -> int:
    """Cores this process may use: its CPU affinity, capped by a cgroup CPU quota (containers
    limit cores that way while `os.cpu_count()` still reports the host's)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        cores = os.cpu_count() or 1
    quota = cgroup_cpu_limit(cgroup)
    if quota is not None:
        cores = min(cores, quota)
    return max(1, cores)


def cgroup_cpu_limit(cgroup: Path = CGROUP) -> int | None:
    """Whole cores allowed by a cgroup v2 `cpu.max` or v1 `cpu.cfs_quota_us` quota (rounded
    up: a 1.5-core quota still runs two workers usefully); None when unlimited or unknown."""
    try:
        quota, period = (cgroup / "cpu.max").read_text().split()[:2]
        if quota == "max":
            return None
        return max(1, -(-int(quota) // int(period)))
    except (OSError, ValueError):
        pass
    try:
        quota_us = int((cgroup / "cpu" / "cpu.cfs_quota_us").read_text())
        period_us = int((cgroup / "cpu" / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return None if quota_us <= 0 or period_us <= 0 else max(1, -(-quota_us // period_us))


def visible_gpus(env: Mapping[str, str] | None = None, probe: bool = True) -> list[str]:
    """The GPU ids a worker could be given: CUDA_VISIBLE_DEVICES's list when set (empty or -1:
    none), else the GPUs `nvidia-smi -L` lists (none without the tool)."""
    env = os.environ if env is None else env
    if "CUDA_VISIBLE_DEVICES" in env:
        ids = [part.strip() for part in env["CUDA_VISIBLE_DEVICES"].split(",") if part.strip()]
        return [] if not ids or ids[0] == "-1" else ids
    if not probe or shutil.which("nvidia-smi") is None:
        return []
    try:
        listed = subprocess.run(
            ["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [str(i) for i, line in enumerate(listed.splitlines()) if line.startswith("GPU ")]


@dataclass(frozen=True)
class WorkerSlot:
    """One worker process: the environment it starts with (its GPU, if any)."""

    env: dict[str, str]

    @property
    def device(self) -> str:
        gpu = self.env.get("CUDA_VISIBLE_DEVICES")
        return "cpu" if gpu in (None, "", "-1") else f"gpu:{gpu}"


def worker_slots(workers: int, gpus: list[str]) -> list[WorkerSlot]:
    """Each worker's environment. With GPUs, worker i gets GPU i mod G alone in its
    CUDA_VISIBLE_DEVICES (so every worker sees one device, as `/GPU:0`); workers sharing a
    GPU grow its memory on demand instead of each reserving all of it. Without GPUs the
    environment is left as it is (an empty CUDA_VISIBLE_DEVICES would also hide none)."""
    if not gpus:
        return [WorkerSlot({}) for _ in range(workers)]
    shared = workers > len(gpus)
    slots = []
    for i in range(workers):
        env = {"CUDA_VISIBLE_DEVICES": gpus[i % len(gpus)]}
        if shared:
            env["TF_FORCE_GPU_ALLOW_GROWTH"] = "true"
        slots.append(WorkerSlot(env))
    return slots


def default_workers(cores: int, gpus: list[str]) -> int:
    """Workers when `--jobs` is not given: one per GPU on a GPU machine (a GPU trains faster
    than cores would), else one per usable core (each node runs TensorFlow on one thread)."""
    return len(gpus) if gpus else cores


def jobs_warning(jobs: int, cores: int) -> str:
    """A one-line warning when more workers than cores were asked for ('' otherwise). Allowed:
    each node still uses one thread, so its numbers do not change, only the wall time."""
    if jobs <= cores:
        return ""
    return (
        f"--jobs {jobs} is more than the {cores} usable core(s): workers will share cores, "
        "so each node runs slower (its numbers do not change)"
    )
