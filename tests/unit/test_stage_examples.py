"""The plan-time half of the stage contract, for every registered stage (no TensorFlow).

Each stage's `examples` must be valid recipe arguments, resolve to JSON that is hashed into a
deterministic key, describe themselves in one line, and say whether they train. The integration
suite (tests/integration/test_stage_contract.py) then runs every example through the runner.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from effcli.execute import Executor, executors
from effcli.plan import load_plan
from effcli.stages.base import Stage, stages

CASES = [
    pytest.param(name, example, id=f"{name}-{i}")
    for name in stages.names()
    for i, example in enumerate(stages.get(name).examples)
]
BASE = {"stage": "train", "width_multiplier": 0.125}


def recipe(tmp_path: Path, name: str, example: dict[str, Any], file: str = "r.yaml") -> Path:
    first = "none" in stages.get(name).accepts
    doc = {
        "name": "examples",
        "pipelines": {
            "teacher": [dict(BASE)],
            "subject": [*([] if first else [dict(BASE)]), {"stage": name, **example}],
        },
    }
    path = tmp_path / file
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def test_every_stage_has_examples_and_a_role() -> None:
    for name in stages.names():
        cls = stages.get(name)
        assert issubclass(cls, Stage) and cls.name == name
        assert cls.examples, f"stage {name} has no contract examples"
        assert cls.role in ("grow", "shrink", "improve"), name


@pytest.mark.parametrize(("name", "example"), CASES)
def test_examples_plan_to_deterministic_keys(
    tmp_path: Path, name: str, example: dict[str, Any]
) -> None:
    plan = load_plan(recipe(tmp_path, name, example))
    again = load_plan(recipe(tmp_path, name, example, "again.yaml"))
    assert sorted(plan.nodes) == sorted(again.nodes)
    (subject,) = [v for v in plan.variants if v.branch == "subject"]
    node = plan.nodes[subject.leaf]
    assert node.kind == name
    json.dumps(node.resolved, sort_keys=True)  # what is hashed must be plain JSON
    assert node.label.startswith(f"{name}(") and "\n" not in node.label
    cls = stages.get(name)
    params = cls.Params.model_validate(example)
    assert node.trains == cls.is_training(params)
    assert cls.output_kind(params) in ("keras", "tflite")
    # A change of any argument of the example changes the key: it is part of what is hashed.
    for key, value in example.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            changed = {**example, key: value * 2 if value else 1}
            try:
                cls.Params.model_validate(changed)
            except ValueError:
                continue  # outside the argument's range
            other = load_plan(recipe(tmp_path, name, changed, "changed.yaml"))
            (variant,) = [v for v in other.variants if v.branch == "subject"]
            assert variant.leaf != subject.leaf, f"{name}.{key} is not part of the key"


def test_every_executor_is_registered_and_named() -> None:
    assert {"local", "process", "ray"} <= set(executors.names())
    for name in executors.names():
        cls = executors.get(name)
        assert issubclass(cls, Executor) and cls.name == name
        instance = cls(jobs=2)
        assert instance.jobs == 2 and instance.address is None
