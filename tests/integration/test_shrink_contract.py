"""Every registered shrink stage honours the stage contract, on a tiny model, through the runner.

For each stage and each of its `examples`: the variant finishes, the exported .tflite loads in
LiteRT and predicts every class, the row's metrics are present and consistent with the file, and
the node's training is counted only when the configuration trains. A new shrink stage without
examples fails here, so it cannot skip the contract.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from effcli.measure.flatbuffer import model_stats
from effcli.measure.litert import LiteRTModel
from effcli.plan import load_plan
from effcli.stages.base import stages
from tests.integration.helpers import project, run_doc

pytestmark = pytest.mark.slow

SHRINK = [name for name in stages.names() if stages.get(name).role == "shrink"]
CASES = [
    pytest.param(name, example, id=f"{name}-{i}")
    for name in SHRINK
    for i, example in enumerate(stages.get(name).examples)
]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One run directory for the module, so the shared tiny base model trains once."""
    return project(tmp_path_factory.mktemp("contract"))


def run_variant(workdir: Path, name: str, example: dict[str, Any]) -> dict[str, str]:
    doc = {
        "name": "contract",
        "extends": "base",
        "train": {"epochs": 3, "early_stopping": {"enabled": False}},
        "pipeline": [{"stage": "train", "width_multiplier": 0.125}, {"stage": name, **example}],
    }
    (row,) = run_doc(workdir, name, doc).values()
    return row


def test_every_shrink_stage_has_examples() -> None:
    assert {"prune", "cluster", "quantize"} <= set(SHRINK)
    missing = [name for name in SHRINK if not stages.get(name).examples]
    assert not missing, f"shrink stages without contract examples: {missing}"


@pytest.mark.parametrize(("name", "example"), CASES)
def test_shrink_stage_contract(workdir: Path, name: str, example: dict[str, Any]) -> None:
    row = run_variant(workdir, name, example)
    assert row["status"] == "ok", row["error"]
    folder = workdir / "out" / "artifacts" / row["variant"]
    tflite = folder / "model.tflite"

    # The exported file is a valid model that predicts all ten digit classes.
    content = tflite.read_bytes()
    runtime = LiteRTModel(content)
    test = np.load(workdir / "out" / "test.npz")
    logits = runtime.predict(test["x"][:64])
    assert logits.shape == (64, 10) and np.all(np.isfinite(logits))
    assert float(row["tflite_accuracy"]) == pytest.approx(
        runtime.accuracy(test["x"], test["y"]), abs=1e-9
    )

    # Footprint columns match the file; every number is finite.
    stats = model_stats(content)
    assert int(row["tflite_bytes"]) == len(content)
    assert 0 < int(row["gzip_bytes"]) < len(content) * 1.01
    assert int(row["params"]) == stats.params > 0
    assert int(row["macs"]) == stats.macs > 0
    assert int(row["unique_weights"]) == stats.unique_weights > 0
    assert int(row["peak_memory_bytes"]) == stats.peak_memory_bytes > 0
    assert float(row["latency_ms_p50"]) > 0
    for column in ("sparsity", "kernel_sparsity", "latency_ms_p95", "train_seconds"):
        assert math.isfinite(float(row[column])), column
    layers = json.loads((folder / "layers.json").read_text())
    assert sum(layer["macs"] for layer in layers["layers"]) == stats.macs

    # The node's record says what it did; training time only when this configuration trains.
    nodes = json.loads((folder / "nodes.json").read_text())
    assert [n["stage"] for n in nodes] == ["train", name]
    cls = stages.get(name)
    plan = load_plan(workdir / f"{name}.yaml")
    trains = plan.nodes[plan.variants[0].leaf].trains
    assert trains == cls.is_training(cls.Params.model_validate(example))
    assert (nodes[1]["train_seconds"] > 0) == trains
    assert nodes[1]["artifact"] == cls.output_kind(cls.Params.model_validate(example))
