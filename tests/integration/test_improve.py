"""Improve: distillation from a teacher pipeline (trained once), teacher files, the input
pipeline's augmentation, and learning-rate schedules."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from effcli.recipe.schema import AugmentSpec, LRScheduleSpec, TrainSpec
from effcli.stages._pipeline import batch_transform, eval_batches, training_batches
from effcli.stages._training import compile_classifier, fit
from effcli.stages.base import StageContext
from effcli.stages.distill import logits_model
from tests.integration.helpers import project, random_splits, run_doc

pytestmark = pytest.mark.slow

TRAIN = {"epochs": 2, "early_stopping": {"enabled": False}}


def test_students_share_one_teacher_and_export_alone(tmp_path: Path) -> None:
    folder = project(tmp_path)
    doc = {
        "name": "kd",
        "extends": "base",
        "train": TRAIN,
        "pipelines": {
            "wide": [{"stage": "train", "width_multiplier": 0.25}],
            "student": [
                {
                    "stage": "distill",
                    "teacher": "wide",
                    "width_multiplier": 0.125,
                    "temperature": {"sweep": [2, 4]},
                },
                {"stage": "quantize"},
            ],
        },
    }
    rows = run_doc(folder, "kd", doc)
    assert all(r["status"] == "ok" for r in rows.values()), rows
    out = folder / "out"
    metas = [json.loads(p.read_text()) for p in (out / "cache").glob("*/meta.json")]
    trains = [m for m in metas if m["stage"] == "train"]
    distills = [m for m in metas if m["stage"] == "distill"]
    assert len(trains) == 1 and len(distills) == 2  # the teacher trained once for two students
    assert {m["resolved"]["teacher"]["node"] for m in distills} == {trains[0]["key"]}
    teacher_params = trains[0]["info"]["params"]
    for meta in distills:
        assert meta["info"]["teacher_params"] == teacher_params
        assert meta["info"]["student_params"] < teacher_params
    for row in rows.values():
        if row["branch"] == "student":  # the exported model is the small student, not both
            assert int(row["params"]) < teacher_params / 2


def test_a_softmax_teacher_file_is_distilled_through_its_logits(tmp_path: Path) -> None:
    from effcli._tf import keras

    folder = project(tmp_path)
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Flatten()(inputs)
    outputs = keras.layers.Dense(10, activation="softmax")(x)
    teacher = keras.Model(inputs, outputs)
    teacher.save(folder / "teacher.keras")
    logits = logits_model(teacher)
    probe = np.random.default_rng(0).normal(size=(4, 8, 8, 1)).astype(np.float32)
    np.testing.assert_allclose(
        keras.activations.softmax(logits(probe)).numpy(), teacher(probe).numpy(), atol=1e-6
    )
    doc = {
        "name": "file",
        "extends": "base",
        "train": TRAIN,
        "pipeline": [
            {"stage": "distill", "teacher_path": "teacher.keras", "width_multiplier": 0.125}
        ],
    }
    (row,) = run_doc(folder, "file", doc).values()
    assert row["status"] == "ok", row["error"]


def test_augmentation_changes_training_batches_only() -> None:
    from effcli._tf import tf

    rng = np.random.default_rng(0)
    x = rng.uniform(size=(16, 8, 8, 1)).astype(np.float32)
    y = rng.integers(0, 10, 16)
    spec = AugmentSpec(flip=True, translate=0.2, cutout=0.25, noise=0.1, mixup=0.4)
    train = training_batches(
        x, y, batch_size=16, seed=0, num_classes=10, augment=spec, kind="image", one_hot=True
    )
    xb, yb = next(iter(train))
    assert xb.shape == x.shape and not np.allclose(np.sort(xb.numpy().ravel()), np.sort(x.ravel()))
    np.testing.assert_allclose(tf.reduce_sum(yb, axis=1).numpy(), 1.0, atol=1e-5)
    assert np.any((yb.numpy() > 0) & (yb.numpy() < 1))  # mixup made soft targets
    xv, yv = next(iter(eval_batches(x, y, batch_size=16, num_classes=10, one_hot=False)))
    np.testing.assert_array_equal(xv.numpy(), x)  # validation data untouched
    np.testing.assert_array_equal(yv.numpy(), y)


def test_sequence_shift_and_cutout_keep_shapes_and_values() -> None:
    seq = np.tile(np.arange(1, 21, dtype=np.float32)[None, :, None], (8, 1, 1))  # (8, 20, 1)
    shift = batch_transform(AugmentSpec(translate=0.25), "sequence", 2, seed=0)
    shifted, _ = shift(seq, np.zeros(8))
    shifted = shifted.numpy()
    assert shifted.shape == seq.shape
    for row in shifted[..., 0]:  # a shifted copy: the nonzero part is a run of consecutive values
        values = row[row != 0]
        assert np.all(np.diff(values) == 1) and len(values) >= 15
    cut = batch_transform(AugmentSpec(cutout=0.25), "sequence", 2, seed=0)
    erased, _ = cut(seq, np.zeros(8))
    assert np.all(np.sum(erased.numpy()[..., 0] == 0, axis=1) == 5)  # one 5-step segment each


def test_contrast_keeps_standardized_values_and_each_images_mean() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 6, 6, 3)).astype(np.float32)  # standardized: half the values < 0
    contrast = batch_transform(AugmentSpec(contrast=0.5), "image", 3, seed=0)
    out, _ = contrast(x, np.zeros(8))
    out = out.numpy()
    assert (out < 0).mean() > 0.3  # not clipped to [0, 255] as keras' RandomContrast would
    np.testing.assert_allclose(out.mean(axis=(1, 2)), x.mean(axis=(1, 2)), atol=1e-5)
    spread = out.std(axis=(1, 2)) / x.std(axis=(1, 2))
    assert np.all((spread > 0.49) & (spread < 1.51)) and np.ptp(spread) > 0.05


@pytest.mark.parametrize("kind", ["cosine", "step", "plateau"])
def test_learning_rate_schedules_lower_the_rate(kind: str) -> None:
    from effcli._tf import keras

    data = random_splits((6,), kind="tabular")
    spec = TrainSpec(
        epochs=4,
        batch_size=16,
        learning_rate=0.01,
        lr_schedule=LRScheduleSpec(kind=kind, step_epochs=1, factor=0.5, patience=1),
        early_stopping={"enabled": False},
    )
    inputs = keras.Input((6,))
    model = keras.Model(inputs, keras.layers.Dense(10)(inputs))
    compile_classifier(model, spec, 4)
    fit(model, StageContext(data=data, seed=0), spec)
    rate = model.optimizer.learning_rate
    final = float(rate(model.optimizer.iterations) if callable(rate) else rate.numpy())
    if kind == "plateau":  # random labels: val_loss stalls, so the rate must have dropped
        assert final < 0.01
    else:
        assert final < 0.006
