"""`data.normalize` (statistics from the training split only, recorded) and `data.save_test`
(never part of a key). No TensorFlow."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from effcli.data.base import DataSplits, load_splits
from effcli.data.normalize import NormalizeSpec, apply_normalization, normalize_splits
from tests.unit.recipes import plan_of
from tests.unit.test_data_cli import app, recipe

SYNTHETIC = {"source": "synthetic", "num_samples": 300, "classes": 3, "shape": [4, 4, 2]}


def splits_with(train: np.ndarray, other: np.ndarray, kind: str = "image") -> DataSplits:
    y = np.zeros(len(train), dtype=np.int64)
    return DataSplits(train, y, other, y[: len(other)], other, y[: len(other)], 1, kind)


def test_standardize_uses_train_statistics_per_channel_only() -> None:
    rng = np.random.default_rng(0)
    train = rng.normal([1.0, 10.0], [2.0, 0.5], size=(500, 3, 3, 2)).astype(np.float32)
    other = (train[:50] + 100).astype(np.float32)  # val/test far away: must not move the stats
    out = normalize_splits(splits_with(train, other), NormalizeSpec(mode="standardize"))
    np.testing.assert_allclose(out.x_train.mean(axis=(0, 1, 2)), 0, atol=1e-5)
    np.testing.assert_allclose(out.x_train.std(axis=(0, 1, 2)), 1, atol=1e-4)
    record = out.split["normalize"]
    assert record["mode"] == "standardize" and record["per"] == "channel"
    np.testing.assert_allclose(record["mean"], train.mean(axis=(0, 1, 2)), rtol=1e-5)
    # val and test get the train transform: far from 0, not re-centred on their own mean.
    mean, std = np.asarray(record["mean"]), np.asarray(record["std"])
    expected = (other.mean(axis=(0, 1, 2)) - mean) / std
    np.testing.assert_allclose(out.x_val.mean(axis=(0, 1, 2)), expected, rtol=1e-4)
    assert np.all(expected > 40)
    assert out.x_val.dtype == np.float32 and out.x_test is not other


def test_global_standardize_is_one_statistic() -> None:
    train = np.stack([np.zeros((20, 2)), np.full((20, 2), 4.0)], axis=-1).astype(np.float32)
    out = normalize_splits(
        splits_with(train, train[:2], "sequence"), NormalizeSpec(mode="standardize", per="global")
    )
    assert out.split["normalize"]["mean"] == [2.0] and out.split["normalize"]["std"] == [2.0]
    assert set(np.unique(out.x_train)) == {-1.0, 1.0}  # the channels keep their difference


def test_scale_maps_train_min_max_to_the_range_and_keeps_flat_channels_finite() -> None:
    train = np.zeros((10, 3), dtype=np.float32)
    train[:, 0] = np.linspace(2, 4, 10)
    train[:, 1] = 7.0  # constant feature: shifted, never divided by zero
    train[:, 2] = np.linspace(-1, 1, 10)
    spec = NormalizeSpec(mode="scale", range=(-1.0, 1.0))
    out = normalize_splits(splits_with(train, np.full((2, 3), 5.0, np.float32), "tabular"), spec)
    np.testing.assert_allclose(out.x_train.min(axis=0), [-1, -1, -1], atol=1e-6)
    np.testing.assert_allclose(out.x_train.max(axis=0), [1, -1, 1], atol=1e-6)
    np.testing.assert_allclose(out.x_test[0], [2.0, -3.0, 5.0], atol=1e-6)  # outside: not clipped
    # The record reproduces the transform exactly (what a deployment applies).
    np.testing.assert_allclose(apply_normalization(train, out.split["normalize"]), out.x_train)


def test_the_shorthand_and_the_mapping_are_the_same_spec() -> None:
    assert NormalizeSpec.model_validate("scale") == NormalizeSpec(mode="scale")


def test_load_splits_normalizes_and_a_spec_without_normalize_keeps_its_key(
    tmp_path: Path,
) -> None:
    plain = load_splits(SYNTHETIC, tmp_path, seed=0)
    assert "normalize" not in plain.split
    normalized = load_splits({**SYNTHETIC, "normalize": "standardize"}, tmp_path, seed=0)
    assert abs(float(normalized.x_train.mean())) < 1e-5
    np.testing.assert_array_equal(normalized.y_test, plain.y_test)  # same split, other values
    assert not np.allclose(normalized.x_test, plain.x_test)
    base = plan_of(tmp_path, "name: t\ndata: {source: digits}\npipeline: [{stage: train}]\n")
    assert base.data_spec == {"source": "digits", "split": base.data_spec["split"]}
    changed = plan_of(
        tmp_path,
        "name: t\ndata: {source: digits, normalize: standardize}\npipeline: [{stage: train}]\n",
    )
    assert changed.data_spec["normalize"]["mode"] == "standardize"
    assert changed.data_key != base.data_key  # other training data: nothing cached is reused


@pytest.mark.parametrize("value", ["false", "true"])
def test_save_test_is_not_part_of_any_key(tmp_path: Path, value: str) -> None:
    base = plan_of(tmp_path, "name: t\npipeline: [{stage: train}]\n")
    plan = plan_of(
        tmp_path,
        f"name: t\ndata: {{source: digits, save_test: {value}}}\npipeline: [{{stage: train}}]\n",
    )
    assert plan.save_test is (value == "true") and base.save_test is True
    assert plan.data_key == base.data_key and list(plan.nodes) == list(base.nodes)


def test_data_command_shows_the_normalization(tmp_path: Path) -> None:
    path = recipe(
        tmp_path,
        "{source: synthetic, num_samples: 90, classes: 3, shape: [2, 2, 2], "
        "normalize: {mode: scale, range: [-1, 1]}, save_test: false}",
    )
    result = CliRunner().invoke(app, ["data", str(path)])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "normalize: scale to [-1, 1] per channel, from the train split (min [" in text
    assert "test.npz: not saved by runs (data.save_test: false)" in text
    train_row = next(line for line in result.output.splitlines() if "│ train" in line)
    assert train_row.split("│")[3].strip() == "-1" and train_row.split("│")[4].strip() == "1"
