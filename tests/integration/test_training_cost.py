"""What training costs, in every row: steps, samples seen and peak memory, summed (or, for
memory, the largest) over the variant's chain, kept from the cache; mixed precision is refused
on a CPU with one line."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import yaml

from effcli._tf import gpus
from effcli.execute import NullReporter, run_plan
from effcli.plan import load_plan
from effcli.recipe.schema import TrainSpec
from tests.integration.helpers import project

pytestmark = pytest.mark.slow

RECIPE = {
    "name": "cost",
    "extends": "base",
    "train": {"epochs": 2, "batch_size": 64, "early_stopping": {"enabled": False}},
    "pipeline": [
        {"stage": "train", "width_multiplier": 0.125},
        {"stage": "prune", "sparsity": 0.5, "epochs": 1},
        {"stage": "quantize"},
    ],
}


def rows(out: Path) -> list[dict[str, str]]:
    with open(out / "results.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def test_rows_add_up_what_the_chain_trained_and_keep_it_from_the_cache(tmp_path: Path) -> None:
    folder = project(tmp_path)
    (folder / "r.yaml").write_text(yaml.safe_dump(RECIPE, sort_keys=False))
    plan = load_plan(folder / "r.yaml")
    out = folder / "out"
    run_plan(plan, out, NullReporter())
    (row,) = rows(out)
    train = json.loads((out / "split.json").read_text())["sizes"]["train"]
    steps_per_epoch = -(-train // 64)
    metas = {
        m["stage"]: m for m in (json.loads(p.read_text()) for p in out.glob("cache/**/meta.json"))
    }
    assert metas["train"]["train_steps"] == 2 * steps_per_epoch
    assert metas["prune"]["train_steps"] == 1 * steps_per_epoch
    assert metas["quantize"]["train_steps"] == 0  # post-training quantization trains nothing
    assert int(row["train_steps"]) == 3 * steps_per_epoch
    assert int(row["train_samples_seen"]) == 3 * train
    peaks = [m["peak_rss_bytes"] for m in metas.values()]
    assert int(row["train_peak_rss_bytes"]) == max(peaks)
    assert all(m["peak_rss_measure"] == "node" for m in metas.values())  # reset per node here
    assert {m["device"] for m in metas.values()} == {"cpu"}
    # The run records the interpreter's timing floor; the row says how close to it it timed.
    floor = json.loads((out / "run.json").read_text())["timing_floor"]
    assert floor["input_shape"] == [1, 8, 8, 1] and floor["floor_ms"]["int8"] > 0
    assert float(row["latency_floor_ms"]) > 0 and float(row["latency_ms_cv"]) >= 0
    near = float(row["latency_ms_p50"]) < 5 * float(row["latency_floor_ms"])
    assert row["latency_near_floor"] == str(near)
    # Rows rebuilt from the cache carry the recorded cost, not a new measurement.
    (out / "results.csv").unlink()
    run_plan(plan, out, NullReporter())
    (again,) = rows(out)
    for column in ("train_steps", "train_samples_seen", "train_peak_rss_bytes"):
        assert again[column] == row[column]


def test_mixed_precision_is_refused_on_a_cpu_in_one_line(tmp_path: Path) -> None:
    if gpus():
        pytest.skip("this machine has a GPU")
    folder = project(tmp_path)
    doc = {**RECIPE, "train": {**RECIPE["train"], "mixed_precision": True}}
    (folder / "r.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    summary = run_plan(load_plan(folder / "r.yaml"), folder / "out", NullReporter())
    assert summary.failed == 1 and summary.nodes_ran == 0
    (row,) = rows(folder / "out")
    assert row["status"] == "failed"
    assert row["error"].startswith("train: train.mixed_precision needs a GPU")
    assert "\n" not in row["error"]


def test_mixed_precision_off_leaves_every_recorded_node_key_as_it_was() -> None:
    assert "mixed_precision" not in TrainSpec().model_dump(mode="json")
    assert TrainSpec(mixed_precision=True).model_dump(mode="json")["mixed_precision"] is True
