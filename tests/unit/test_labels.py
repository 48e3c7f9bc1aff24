"""Readable variant labels: built from the pipeline and the knobs that vary, unique per plan."""

from __future__ import annotations

from pathlib import Path

from effcli.plan import load_plan
from effcli.stages._label import number, percent, token
from tests.unit.recipes import plan_of

ROOT = Path(__file__).resolve().parents[2]


def labels(plan: object) -> list[str]:
    return [v.label for v in plan.first_replicates()]  # type: ignore[attr-defined]


def test_quickstart_reads_as_width_pruning_and_format() -> None:
    plan = load_plan(ROOT / "recipes" / "quickstart.yaml", require_data=False)
    assert labels(plan) == [
        f"w{w} {prune}int8"
        for w in ("0.25", "0.5", "1.0")
        for prune in ("", "prune50% ", "prune80% ")
    ]
    # Every replicate of a variant carries its label.
    assert {v.label for v in plan.variants if v.id == plan.variants[1].id} == {
        "w0.25 prune50% int8"
    }


def test_swept_models_name_their_family_and_arguments() -> None:
    plan = load_plan(ROOT / "recipes" / "efficient_architectures.yaml", require_data=False)
    found = labels(plan)
    assert "mobilenet_v2 w0.35 in32 int8" in found
    assert "vit w1.0 p2 b2 prune80% float32+sparse" in found
    assert "cnn w0.5 prune-ch50% int8" in found
    assert len(set(found)) == len(found) == 24


def test_named_pipelines_appear_only_where_they_tell_variants_apart() -> None:
    plan = load_plan(ROOT / "recipes" / "shrink_and_improve.yaml", require_data=False)
    found = labels(plan)
    assert found[0] == "teacher"  # a plain training says nothing else: its pipeline's name
    assert "w0.125 aug int8" in found and "distill(T4) w0.25 no-aug int8" in found


def test_a_clash_adds_the_short_id(tmp_path: Path) -> None:
    # Two augmentations both read `aug`: the label cannot tell them apart, the id does.
    plan = plan_of(
        tmp_path,
        """
name: clash
data: {source: digits}
pipeline:
  - stage: train
    epochs: 1
    augment: {sweep: [{flip: true}, {mixup: 0.2}]}
""",
    )
    a, b = plan.first_replicates()
    assert (a.label, b.label) == (f"aug [{a.id[:6]}]", f"aug [{b.id[:6]}]")


def test_every_varying_argument_is_a_token(tmp_path: Path) -> None:
    plan = plan_of(
        tmp_path,
        """
name: same
data: {source: digits}
pipeline:
  - {stage: train, epochs: 1}
  - {stage: quantize, mode: int8, calibration_samples: {sweep: [8, 16]}}
""",
    )
    assert labels(plan) == ["int8 cal8", "int8 cal16"]


def test_tokens() -> None:
    assert number(1.0) == "1.0" and number(0.25) == "0.25" and number(3) == "3"
    assert number(1e-4) == "0.0001"
    assert percent(0.5) == "50%" and percent(0.875) == "87.5%"
    assert token("learning_rate", 0.001) == "lr0.001"
    assert token("augment", {"flip": True}) == "aug" and token("augment", None) == "no-aug"
    assert token("", {"family": "cnn", "args": {"width_multiplier": 0.5}}) == "cnn w0.5"
