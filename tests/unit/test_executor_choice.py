"""What the machine gives a run (cores, GPUs) and what `--executor auto` makes of it; no worker
is started here (tests/integration/test_executors.py runs them)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from effcli.execute.backends._scheduler import _heights
from effcli.execute.backends.auto import side_by_side
from effcli.execute.backends.ray import task_resources
from effcli.execute.resources import (
    cgroup_cpu_limit,
    default_workers,
    jobs_warning,
    usable_cores,
    visible_gpus,
    worker_slots,
)
from effcli.plan import Plan, load_plan


def test_a_cgroup_v2_quota_caps_the_cores(tmp_path: Path) -> None:
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert cgroup_cpu_limit(tmp_path) == 2  # 1.5 cores: two workers still help
    (tmp_path / "cpu.max").write_text("100000 100000\n")
    assert cgroup_cpu_limit(tmp_path) == 1
    assert usable_cores(tmp_path) == 1
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert cgroup_cpu_limit(tmp_path) is None


def test_a_cgroup_v1_quota_caps_the_cores(tmp_path: Path) -> None:
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("300000")
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000")
    assert cgroup_cpu_limit(tmp_path) == 3
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("-1")
    assert cgroup_cpu_limit(tmp_path) is None


def test_without_a_quota_the_affinity_counts(tmp_path: Path) -> None:
    import os

    assert usable_cores(tmp_path) == len(os.sched_getaffinity(0))


@pytest.mark.parametrize(
    ("value", "gpus"),
    [("0,1", ["0", "1"]), ("2", ["2"]), ("", []), ("-1", []), (" 3 , 1 ", ["3", "1"])],
)
def test_cuda_visible_devices_says_which_gpus_there_are(value: str, gpus: list[str]) -> None:
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": value}) == gpus


def test_no_gpu_without_the_variable_or_the_tool() -> None:
    assert visible_gpus({}, probe=False) == []


def test_each_worker_gets_its_own_gpu() -> None:
    slots = worker_slots(2, ["0", "1"])
    assert [s.env for s in slots] == [{"CUDA_VISIBLE_DEVICES": "0"}, {"CUDA_VISIBLE_DEVICES": "1"}]
    assert [s.device for s in slots] == ["gpu:0", "gpu:1"]


def test_workers_sharing_a_gpu_grow_its_memory_instead_of_taking_it_all() -> None:
    slots = worker_slots(3, ["5", "7"])
    assert [s.env["CUDA_VISIBLE_DEVICES"] for s in slots] == ["5", "7", "5"]
    assert all(s.env["TF_FORCE_GPU_ALLOW_GROWTH"] == "true" for s in slots)


def test_without_gpus_workers_keep_the_environment() -> None:
    assert [s.env for s in worker_slots(2, [])] == [{}, {}]
    assert worker_slots(1, [])[0].device == "cpu"


def test_default_workers_one_per_gpu_else_one_per_core() -> None:
    assert default_workers(8, ["0"]) == 1
    assert default_workers(8, ["0", "1"]) == 2
    assert default_workers(2, []) == 2


def test_more_jobs_than_cores_is_allowed_with_a_warning() -> None:
    assert jobs_warning(2, 2) == ""
    warning = jobs_warning(4, 2)
    assert "--jobs 4" in warning and "2 usable core" in warning and "\n" not in warning


def test_ray_asks_for_a_gpu_per_training_task_only_on_a_gpu_cluster() -> None:
    assert task_resources({"CPU": 8.0}) == {"num_cpus": 1}
    assert task_resources({"CPU": 8.0, "GPU": 2.0}) == {"num_cpus": 1, "num_gpus": 1}


class NothingCached:
    def node_done(self, key: str) -> bool:
        return False


class Cached:
    def __init__(self, keys: set[str]) -> None:
        self.keys = keys

    def node_done(self, key: str) -> bool:
        return key in self.keys


def plan_of(tmp_path: Path, pipeline: list[dict[str, object]]) -> Plan:
    doc = {"name": "choice", "train": {"epochs": 1}, "pipeline": pipeline}
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return load_plan(path)


def test_a_single_chain_runs_in_this_process(tmp_path: Path) -> None:
    plan = plan_of(
        tmp_path, [{"stage": "train"}, {"stage": "prune", "sparsity": 0.5}, {"stage": "quantize"}]
    )
    assert side_by_side(plan, plan.variants, NothingCached()) == 1  # type: ignore[arg-type]


def test_independent_trainings_can_run_side_by_side(tmp_path: Path) -> None:
    plan = plan_of(
        tmp_path,
        [
            {"stage": "train", "width_multiplier": {"sweep": [0.25, 0.5, 1.0]}},
            {"stage": "quantize"},
        ],
    )
    assert side_by_side(plan, plan.variants, NothingCached()) == 3  # type: ignore[arg-type]
    trains = {n.key for n in plan.nodes.values() if n.kind == "train"}
    # Once the trainings are cached, three exports are left: still side by side.
    assert side_by_side(plan, plan.variants, Cached(trains)) == 3  # type: ignore[arg-type]
    everything = Cached(set(plan.nodes))
    assert side_by_side(plan, plan.variants, everything) == 0  # type: ignore[arg-type]


def test_the_longest_chain_below_a_node_is_scheduled_first(tmp_path: Path) -> None:
    plan = plan_of(
        tmp_path,
        [
            {"stage": "train"},
            {"stage": "prune", "sparsity": {"sweep": [0.5, 0.8]}},
            {"stage": "quantize"},
        ],
    )
    height = _heights(plan, set(plan.nodes))
    kinds = {n.kind: height[n.key] for n in plan.nodes.values()}
    assert kinds == {"train": 3, "prune": 2, "quantize": 1}
