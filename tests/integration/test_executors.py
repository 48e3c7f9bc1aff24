"""Executors: worker processes give bit-identical rows to in-process runs (and a second run to
the first); a run killed with SIGKILL resumes to exactly the full set of rows."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from effcli.execute import executors
from tests.integration.helpers import project

pytestmark = pytest.mark.slow

RECIPE = {
    "name": "exec",
    "extends": "base",
    "train": {"epochs": 2, "early_stopping": {"enabled": False}},
    "pipelines": {
        "wide": [{"stage": "train", "width_multiplier": 0.25}],  # also small's 0.25 base
        "small": [
            {"stage": "train", "width_multiplier": {"sweep": [0.125, 0.25]}},
            {"stage": "quantize"},
        ],
        "student": [
            {"stage": "distill", "teacher": "wide", "width_multiplier": 0.125},
            {"stage": "quantize"},
        ],
    },
}


def effdl(*args: str, cwd: Path) -> subprocess.Popen[str]:
    code = "from effcli.cli.main import main; main()"
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def rows(out: Path) -> list[dict[str, str]]:
    with open(out / "results.csv", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def local_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The recipe run in-process once; the other executors must reproduce it."""
    folder = project(tmp_path_factory.mktemp("executors"))
    (folder / "r.yaml").write_text(yaml.safe_dump(RECIPE, sort_keys=False))
    local = effdl("run", "r.yaml", "--out", "local", cwd=folder)
    output = local.communicate()[0]
    assert local.returncode == 0, output
    return folder


# Every registered executor must reproduce the in-process run (a new one joins automatically).
PARALLEL = [name for name in executors.names() if name != "local"]


def test_the_parity_suite_covers_every_executor() -> None:
    assert {"process", "ray"} <= set(PARALLEL)


@pytest.mark.parametrize("executor", PARALLEL)
def test_parallel_executors_match_local(local_run: Path, executor: str) -> None:
    folder = local_run
    run = effdl("run", "r.yaml", "--out", executor, "--executor", executor, "-j", "2", cwd=folder)
    output = run.communicate()[0]
    assert run.returncode == 0, output
    assert_identical_rows(folder / "local", folder / executor)
    # Shared prefixes still ran once: one cache entry per node, and the same nodes.
    assert sorted(p.name for p in (folder / "local" / "cache").iterdir()) == sorted(
        p.name for p in (folder / executor / "cache").iterdir()
    )


def assert_identical_rows(a: Path, b: Path) -> None:
    """The same variants, all ok, with bit-identical numbers: only the timings (measured, never
    reproducible) may differ."""
    first = {r["variant"]: r for r in rows(a)}
    second = {r["variant"]: r for r in rows(b)}
    assert first.keys() == second.keys()
    assert {r["status"] for r in first.values()} == {"ok"}
    timings = {"latency_ms_p50", "latency_ms_p95", "train_seconds"}
    for variant, row in first.items():
        other = second[variant]
        differ = {k for k in row if k not in timings and row[k] != other.get(k)}
        assert not differ, (b.name, variant, {k: (row[k], other.get(k)) for k in differ})


def test_the_same_recipe_twice_gives_bit_identical_rows(local_run: Path) -> None:
    """Same recipe, seed and machine: the same numbers, in a fresh process."""
    again = effdl("run", "r.yaml", "--out", "again", cwd=local_run)
    output = again.communicate()[0]
    assert again.returncode == 0, output
    assert_identical_rows(local_run / "local", local_run / "again")


def test_sigkill_then_rerun_gives_every_row_exactly_once(tmp_path: Path) -> None:
    folder = project(tmp_path)
    (folder / "r.yaml").write_text(yaml.safe_dump(RECIPE, sort_keys=False))
    out = folder / "out"
    first = effdl("run", "r.yaml", "--out", "out", cwd=folder)
    deadline = time.time() + 300
    while time.time() < deadline:  # kill as soon as the first row is on disk, mid-sweep
        if (out / "results.csv").exists() and len(rows(out)) >= 1:
            break
        time.sleep(0.2)
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    partial = rows(out)
    assert 1 <= len(partial) < 4
    second = effdl("run", "r.yaml", "--out", "out", cwd=folder)
    output = second.communicate()[0]
    assert second.returncode == 0, output
    final = rows(out)
    assert len(final) == len({r["variant"] for r in final}) == 4  # none lost, none duplicated
    assert {r["status"] for r in final} == {"ok"}
    assert {r["variant"]: r for r in partial}.keys() <= {r["variant"] for r in final}
    leftovers = [p for p in out.rglob(".*.tmp*")]
    assert not leftovers  # half-written files of the killed run were swept
