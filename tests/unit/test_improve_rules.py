"""Plan-time rules of the Improve stages: teacher references, augmentation by data kind,
training options in node keys. No TensorFlow."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.recipes import error_of, plan_of

TEACHER = """\
name: t
pipelines:
  wide:
    - {stage: train, width_multiplier: 1.0}
  student:
    - stage: distill
      teacher: wide
      width_multiplier: 0.25
      temperature: {sweep: [2, 4]}
    - {stage: quantize}
"""


def test_a_shared_teacher_is_one_node_and_every_student_depends_on_it(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, TEACHER)
    (teacher,) = [v for v in plan.variants if v.branch == "wide"]
    students = [plan.nodes[v.nodes[0]] for v in plan.variants if v.branch == "student"]
    assert len(students) == 2
    assert all(s.deps == (teacher.leaf,) for s in students)
    assert all(s.resolved["teacher"] == {"node": teacher.leaf} for s in students)
    assert plan.nodes[teacher.leaf].trains and all(s.trains for s in students)


def test_students_are_planned_after_their_teacher_whatever_the_order(tmp_path: Path) -> None:
    text = TEACHER.replace("  wide:\n    - {stage: train, width_multiplier: 1.0}\n", "")
    text += "  wide:\n    - {stage: train, width_multiplier: 1.0}\n"
    plan = plan_of(tmp_path, text)
    assert [v.branch for v in plan.variants] == ["wide", "student", "student"]


def test_changing_the_teacher_changes_the_students_keys(tmp_path: Path) -> None:
    one = plan_of(tmp_path, TEACHER)
    two = plan_of(tmp_path, TEACHER.replace("width_multiplier: 1.0", "width_multiplier: 1.5"))
    student_keys = [{v.leaf for v in p.variants if v.branch == "student"} for p in (one, two)]
    assert not student_keys[0] & student_keys[1]


CASES = [
    (
        "unknown teacher",
        TEACHER.replace("teacher: wide", "teacher: wider"),
        "r.yaml:7: pipelines.student[0].teacher: no pipeline named 'wider'; choose one of: wide",
    ),
    (
        "a teacher in a single-pipeline recipe",
        "name: t\npipeline:\n  - {stage: distill, teacher: wide}\n",
        "r.yaml:3: pipeline[0].teacher: no pipeline named 'wide'; name pipelines with "
        "`pipelines: {name: [...]}` to refer to them",
    ),
    (
        "a swept teacher pipeline",
        TEACHER.replace("width_multiplier: 1.0", "width_multiplier: {sweep: [1.0, 1.5]}"),
        "r.yaml:7: pipelines.student[0].teacher: pipeline 'wide' has 2 variants (it sweeps); a "
        "teacher must be one model: remove its sweeps or split it into one pipeline per value",
    ),
    (
        "a quantized teacher",
        TEACHER.replace(
            "    - {stage: train, width_multiplier: 1.0}\n",
            "    - {stage: train, width_multiplier: 1.0}\n    - {stage: quantize}\n",
        ),
        "r.yaml:8: pipelines.student[0].teacher: pipeline 'wide' ends in a .tflite (quantize); a "
        "teacher must be a Keras model: end that pipeline before its export stage",
    ),
    (
        "teachers in a cycle",
        "name: t\npipelines:\n  a:\n    - {stage: distill, teacher: b}\n"
        "  b:\n    - {stage: distill, teacher: a}\n",
        "r.yaml:2: pipelines: pipelines refer to each other in a cycle (a -> b); a teacher "
        "cannot depend on its student",
    ),
    (
        "a pipeline teaching itself",
        "name: t\npipelines:\n  a:\n    - {stage: distill, teacher: a}\n",
        "r.yaml:4: pipelines.a[0].teacher: pipeline 'a' cannot use itself as teacher",
    ),
    (
        "both teacher kinds",
        "name: t\npipeline:\n  - {stage: distill, teacher: a, teacher_path: m.keras}\n",
        "r.yaml:3: pipeline[0]: give exactly one of 'teacher' (a pipeline name) or "
        "'teacher_path' (a model file)",
    ),
    (
        "a missing teacher file",
        "name: t\npipeline:\n  - {stage: distill, teacher_path: nothing.keras}\n",
        "r.yaml:3: pipeline[0].teacher_path: no model at {tmp}/nothing.keras; train one or give "
        "the right path",
    ),
    (
        "image augmentation on tabular-free digits is fine, but flip on sequences is not",
        "name: t\ndata: {source: synthetic, shape: [16, 2], kind: sequence}\n"
        "model: {family: conv1d}\ntrain: {augment: {flip: true}}\npipeline: [{stage: train}]\n",
        "r.yaml:4: train.augment.flip: 'flip' augments image data, but this recipe's data is "
        "sequence; remove it",
    ),
    (
        "a stage's own augmentation is located on the stage",
        "name: t\npipeline:\n  - stage: train\n    augment: {mixup: 0.2, zoom: 0.1}\n"
        "data: {source: synthetic, shape: [12], kind: tabular}\nmodel: {family: mlp}\n",
        "r.yaml:4: pipeline[0].augment.zoom: 'zoom' augments image data, but this recipe's data "
        "is tabular; remove it",
    ),
    (
        "an unknown augmentation",
        "name: t\ntrain: {augment: {flipp: true}}\npipeline: [{stage: train}]\n",
        "r.yaml:2: train.augment.flipp: unknown key 'flipp' (did you mean 'flip'?); allowed "
        "keys: contrast, cutout, flip, mixup, noise, rotate, translate, zoom",
    ),
]


@pytest.mark.parametrize(("text", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_rule_gives_exact_message(tmp_path: Path, text: str, message: str) -> None:
    expected = message.replace("{tmp}", str(tmp_path.resolve()))
    assert error_of(tmp_path, text).replace(str(tmp_path.resolve()) + "/", "") == expected.replace(
        str(tmp_path.resolve()) + "/", ""
    )


def test_training_options_are_part_of_every_training_key(tmp_path: Path) -> None:
    base = "name: t\npipeline:\n  - stage: train\n  - {stage: prune, sparsity: 0.5}\n"
    keys = set()
    for train in (
        "",
        "train: {label_smoothing: 0.1}\n",
        "train: {augment: {noise: 0.1}}\n",
        "train: {weight_decay: 0.0001}\n",
    ):
        plan = plan_of(tmp_path, base + train)
        keys.add(tuple(plan.variants[0].nodes))
    assert len(keys) == 4
    # The prune fine-tune trains with the recipe's augmentation too.
    plan = plan_of(tmp_path, base + "train: {augment: {noise: 0.1}}\n")
    assert plan.nodes[plan.variants[0].leaf].resolved["augment"] == {"noise": 0.1}
