"""Every registered stage honours the stage contract, on a tiny model, through the runner.

For each stage (grow, shrink and improve alike) and each of its `examples`: the variant finishes,
the exported .tflite loads in LiteRT and predicts every class, the row's metrics are present and
consistent with the file, and the node's training is counted only when the configuration trains.
A stage that starts a pipeline runs first; any other runs after a tiny trained base. A pipeline
named `teacher` (a tiny trained model) is there for stages that use another pipeline. A new stage
without examples fails here, so it cannot skip the contract.
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

STAGES = stages.names()
CASES = [
    pytest.param(name, example, id=f"{name}-{i}")
    for name in STAGES
    for i, example in enumerate(stages.get(name).examples)
]
BASE = {"stage": "train", "width_multiplier": 0.125}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One run directory for the module, so the shared tiny base model trains once."""
    return project(tmp_path_factory.mktemp("contract"))


def run_variant(
    workdir: Path,
    name: str,
    example: dict[str, Any],
    *,
    base: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
    recipe: str | None = None,
) -> dict[str, str]:
    """The subject's row of a recipe running `name` with `example` after `base` (a tiny train),
    with `extra` top-level keys (a model family, data) in a recipe file named `recipe`."""
    base = base or BASE
    before = [] if "none" in stages.get(name).accepts else [dict(base)]
    doc = {
        "name": "contract",
        "extends": "base",
        "train": {"epochs": 3, "early_stopping": {"enabled": False}},
        **(extra or {}),
        "pipelines": {"teacher": [dict(base)], "subject": [*before, {"stage": name, **example}]},
    }
    rows = run_doc(workdir, recipe or name, doc)
    plan = load_plan(workdir / f"{recipe or name}.yaml")
    (subject,) = [v for v in plan.variants if v.branch == "subject"]
    return rows[subject.id]


def check_contract(
    workdir: Path, name: str, example: dict[str, Any], row: dict[str, str], recipe: str
) -> None:
    """Everything the contract promises about one stage's row, read off the files."""
    assert row["status"] == "ok", row["error"]
    folder = workdir / "out" / "artifacts" / row["variant"]
    tflite = folder / "model.tflite"

    # The exported file is a valid model that predicts all ten classes.
    content = tflite.read_bytes()
    runtime = LiteRTModel(content)
    test = np.load(workdir / "out" / "test.npz")
    logits = runtime.predict(test["x"][:64])
    assert logits.shape == (min(64, len(test["x"])), 10) and np.all(np.isfinite(logits))
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
    cls = stages.get(name)
    assert nodes[-1]["stage"] == name and len(nodes) == (1 if "none" in cls.accepts else 2)
    plan = load_plan(workdir / f"{recipe}.yaml")
    (subject,) = [v for v in plan.variants if v.branch == "subject"]
    trains = plan.nodes[subject.leaf].trains
    assert trains == cls.is_training(cls.Params.model_validate(example))
    assert (nodes[-1]["train_seconds"] > 0) == trains
    assert nodes[-1]["artifact"] == cls.output_kind(cls.Params.model_validate(example))


def test_every_stage_has_examples() -> None:
    assert {"train", "prune", "cluster", "quantize", "low_rank", "distill", "tune"} <= set(STAGES)
    missing = [name for name in STAGES if not stages.get(name).examples]
    assert not missing, f"stages without contract examples: {missing}"
    roles = {stages.get(name).role for name in STAGES}
    assert roles == {"grow", "shrink", "improve"}


@pytest.mark.parametrize(("name", "example"), CASES)
def test_stage_contract(workdir: Path, name: str, example: dict[str, Any]) -> None:
    check_contract(workdir, name, example, run_variant(workdir, name, example), name)
