"""`train_fraction` in plans: the whole split keeps every node key made before it existed; a
fraction enters the keys of the training stage and what follows, and reads `f25%` in labels."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

from effcli.plan import load_plan
from effcli.stages.base import stages

ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = ROOT / "recipes" / "quickstart.yaml"
SHRINK_AND_IMPROVE = ROOT / "recipes" / "shrink_and_improve.yaml"
# The node keys as effdl computed them before `train_fraction` existed (all 54 of the replicated
# quickstart; all 17 of shrink_and_improve, which distills): existing caches stay valid.
QUICKSTART_NODES_SHA256 = "a2b72388c6feb8a9a5b4a1fed7a4dfb4faf5d11a51cec7e4761fe1dd4a690f0e"
SHRINK_AND_IMPROVE_NODES_SHA256 = "5f043e9d0c8b73f8c8cdccffdf47c084df455da5bbd647b6123ab12953debf15"


def digest(keys: Iterable[str]) -> str:
    return hashlib.sha256(",".join(sorted(keys)).encode()).hexdigest()


def test_the_whole_split_keeps_the_keys_of_earlier_runs() -> None:
    assert digest(load_plan(QUICKSTART).nodes) == QUICKSTART_NODES_SHA256
    assert digest(load_plan(SHRINK_AND_IMPROVE).nodes) == SHRINK_AND_IMPROVE_NODES_SHA256
    # Written out as 1.0 it is the same training: the same keys.
    explicit = load_plan(QUICKSTART, overrides=["+pipeline.0.train_fraction=1.0"])
    assert digest(explicit.nodes) == QUICKSTART_NODES_SHA256
    students = load_plan(SHRINK_AND_IMPROVE, overrides=["+pipelines.distilled.0.train_fraction=1"])
    assert digest(students.nodes) == SHRINK_AND_IMPROVE_NODES_SHA256


def test_a_fraction_changes_the_training_keys_and_reads_as_a_percentage() -> None:
    full = load_plan(QUICKSTART)
    swept = load_plan(QUICKSTART, overrides=["+pipeline.0.train_fraction={sweep: [0.25, 1.0]}"])
    assert len(swept.variants) == 2 * len(full.variants)
    trains = [n for n in swept.nodes.values() if n.kind == "train"]
    assert sorted(n.resolved.get("train_fraction", 1.0) for n in trains) == [0.25] * 9 + [1.0] * 9
    # The 100 % half is exactly the quickstart; the 25 % half is new from the train node on.
    assert set(full.nodes) < set(swept.nodes)
    assert len(swept.nodes) == 2 * len(full.nodes)
    labels = {v.label for v in swept.variants}
    assert "w0.25 f25% int8" in labels and "w0.25 f100% int8" in labels
    knob = [k for k in swept.knobs if k.label == "train.train_fraction"]  # the row's column
    assert [list(k.values) for k in knob] == [[0.25, 1.0]]


def test_distill_and_tune_key_a_fraction_only_when_not_the_whole_split() -> None:
    for kind in ("train", "distill", "tune"):
        params = stages.get(kind).Params
        assert params.model_fields["train_fraction"].default == 1.0
    plan = load_plan(SHRINK_AND_IMPROVE, overrides=["+pipelines.distilled.0.train_fraction=0.5"])
    distill = [n for n in plan.nodes.values() if n.kind == "distill"]
    assert distill and all(n.resolved["train_fraction"] == 0.5 for n in distill)
    teacher = [
        n for n in plan.nodes.values() if n.kind == "train" and "train_fraction" in n.resolved
    ]
    assert teacher == []  # the teacher and the plain students train on the whole split
