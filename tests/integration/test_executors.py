"""Executors: worker processes give bit-identical rows to in-process runs (and a second run to
the first); a run killed with SIGKILL resumes to exactly the full set of rows."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from effcli.execute import NullReporter, executors, run_plan
from effcli.plan import Node, load_plan
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


# Ray (an optional extra; over a minute to start here) runs in `make test-all`.
@pytest.mark.parametrize(
    "executor",
    [pytest.param(e, marks=[pytest.mark.full] if e == "ray" else []) for e in PARALLEL],
)
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
    # Peak memory depends on what else the process held (a worker, the CLI's process).
    measured = {"train_seconds", "train_peak_rss_bytes", "throughput_per_s"}
    for variant, row in first.items():
        other = second[variant]
        differ = {
            k
            for k in row
            if k not in measured and not k.startswith("latency_") and row[k] != other.get(k)
        }
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


# -- auto, progress from workers, training cost ---------------------------------------------------

TWO = {
    "name": "two",
    "extends": "base",
    "train": {"epochs": 2, "early_stopping": {"enabled": False}},
    "pipeline": [{"stage": "train", "width_multiplier": {"sweep": [0.125, 0.25]}}],
}


class Recording(NullReporter):
    def __init__(self) -> None:
        self.epochs: list[tuple[str, int, int, float]] = []
        self.notes: list[str] = []

    def epoch(self, node: Node, epoch: int, epochs: int, logs: dict[str, float]) -> None:
        self.epochs.append((node.key, epoch, epochs, logs["val_accuracy"]))

    def note(self, message: str, warning: bool = False) -> None:
        self.notes.append(message)


def test_workers_report_every_epoch_and_rows_say_what_training_cost(tmp_path: Path) -> None:
    folder = project(tmp_path)
    (folder / "r.yaml").write_text(yaml.safe_dump(TWO, sort_keys=False))
    plan = load_plan(folder / "r.yaml")
    reporter = Recording()
    run_plan(plan, folder / "out", reporter, executor="auto", jobs=2)
    assert reporter.notes[0].startswith("executor: process, 2 workers"), reporter.notes
    trained = {n.key for n in plan.nodes.values()}
    assert {(key, e) for key, e, _, _ in reporter.epochs} == {
        (k, e) for k in trained for e in (1, 2)
    }
    assert all(0.0 <= val <= 1.0 for *_, val in reporter.epochs)
    split = json.loads((folder / "out" / "split.json").read_text())
    train_size = int(split["sizes"]["train"]) if "sizes" in split else None
    for row in rows(folder / "out"):
        assert row["status"] == "ok"
        samples = int(row["train_samples_seen"])
        steps = int(row["train_steps"])
        if train_size is not None:
            assert samples == 2 * train_size  # two epochs over the training split
        assert steps == 2 * -(-samples // 2 // 32)  # batch 32 (configs/base.yaml)
        assert int(row["train_peak_rss_bytes"]) > 50_000_000  # TensorFlow alone is more


def test_auto_goes_on_in_this_process_when_workers_cannot_start(tmp_path: Path) -> None:
    folder = project(tmp_path)
    (folder / "r.yaml").write_text(yaml.safe_dump(TWO, sort_keys=False))
    # Every spawned worker dies at start-up (the CLI process itself starts normally).
    hook = folder / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(
        "import sys, os\nif any('multiprocessing' in a for a in sys.argv):\n    os._exit(3)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(hook), "EFFDL_EXECUTOR": "auto", "EFFDL_JOBS": "2"}
    code = "from effcli.cli.main import main; main()"
    proc = subprocess.run(
        [sys.executable, "-c", code, "run", "r.yaml", "--out", "out"],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "workers stopped" in proc.stdout and "going on in this process" in proc.stdout
    assert sorted(r["status"] for r in rows(folder / "out")) == ["ok", "ok"]


def children(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found.update(int(p) for p in text)
    return found


def test_killing_an_auto_run_ends_its_workers_too(tmp_path: Path) -> None:
    folder = project(tmp_path)
    (folder / "r.yaml").write_text(yaml.safe_dump(TWO, sort_keys=False))
    env = {**os.environ, "EFFDL_EXECUTOR": "auto", "EFFDL_JOBS": "2"}
    code = "from effcli.cli.main import main; main()"
    run = subprocess.Popen(
        [sys.executable, "-c", code, "run", "r.yaml", "--out", "out"],
        cwd=folder,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 120
    workers: set[int] = set()
    while time.time() < deadline and len(workers) < 2:
        time.sleep(0.5)
        workers = {
            p for p in children(run.pid) if "spawn" in Path(f"/proc/{p}/cmdline").read_text()
        }
    assert len(workers) >= 2, "the auto executor started no workers"
    os.kill(run.pid, signal.SIGKILL)
    run.wait()
    deadline = time.time() + 30
    while time.time() < deadline and any(Path(f"/proc/{p}").exists() for p in workers):
        time.sleep(0.2)
    alive = [p for p in workers if Path(f"/proc/{p}").exists() and "Z" not in _state(p)]
    assert not alive, f"workers {alive} outlived the killed run"


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[0]
    except OSError:
        return "Z"
