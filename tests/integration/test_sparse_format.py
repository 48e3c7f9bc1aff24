"""Pruning that pays in raw bytes: `quantize: {sparse_format: true}` stores pruned kernels in
TFLite's sparse encoding when it is smaller and changes no output, and says when it is not kept."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from effcli.measure.flatbuffer import model_stats
from effcli.measure.litert import LiteRTModel
from effcli.results.rundir import RunDir
from tests.integration.helpers import project, run_doc

pytestmark = pytest.mark.slow

BASE: list[dict[str, Any]] = [
    {"stage": "train", "width_multiplier": 0.5},
    {"stage": "prune", "sparsity": 0.8, "epochs": 3},
]


def doc(quantize: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": "sparse",
        "extends": "base",
        "train": {"epochs": 3, "early_stopping": {"enabled": False}},
        "pipelines": {
            "dense": [*BASE, {"stage": "quantize", **quantize}],
            "sparse": [*BASE, {"stage": "quantize", **quantize, "sparse_format": True}],
        },
    }


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return project(tmp_path_factory.mktemp("sparse"))


def by_branch(folder: Path, name: str, quantize: dict[str, Any]) -> dict[str, dict[str, str]]:
    rows = run_doc(folder, name, doc(quantize))
    return {row["branch"]: row for row in rows.values()}


def test_float32_pruned_kernels_are_stored_sparse_with_identical_outputs(folder: Path) -> None:
    rows = by_branch(folder, "fp32", {"mode": "float32"})
    dense, sparse = rows["dense"], rows["sparse"]
    assert dense["status"] == sparse["status"] == "ok"
    assert sparse["quantize_sparse_format"] == "1.0"
    assert int(sparse["tflite_bytes"]) < int(dense["tflite_bytes"]) / 1.8  # measured: ~2.5x
    # The stage measured the converter's file; the row the shipped one (with effdl metadata).
    converted = int(dense["tflite_bytes"]) - int(float(dense["metadata_bytes"]))
    assert int(float(sparse["quantize_dense_bytes"])) == converted
    run = RunDir(folder / "out")
    files = {b: run.artifact(r["variant"]).tflite.read_bytes() for b, r in rows.items()}
    test = np.load(run.test_npz)
    outputs = {b: LiteRTModel(c).predict(test["x"]) for b, c in files.items()}
    assert np.array_equal(outputs["dense"], outputs["sparse"])  # bit-identical logits
    # The same weights, read back from either encoding; layers.json says how each is stored.
    dense_stats, sparse_stats = (model_stats(files[b]) for b in ("dense", "sparse"))
    assert dense_stats.params == sparse_stats.params
    assert dense_stats.kernel_sparsity == sparse_stats.kernel_sparsity > 0.5
    assert dense_stats.macs == sparse_stats.macs
    layers = json.loads(run.artifact(sparse["variant"]).layers.read_text())["layers"]
    encodings = {layer["name"]: layer["encoding"] for layer in layers}
    assert "sparse" in encodings.values() and "dense" in encodings.values()  # first/last dense
    dense_layers = json.loads(run.artifact(dense["variant"]).layers.read_text())["layers"]
    assert {layer["encoding"] for layer in dense_layers} == {"dense"}


def test_int8_sparse_is_kept_only_when_the_runtime_can_run_it(folder: Path) -> None:
    rows = by_branch(folder, "int8", {"mode": "int8", "calibration_samples": 64})
    sparse = rows["sparse"]
    assert sparse["status"] == "ok"
    (node,) = [
        n
        for n in json.loads(RunDir(folder / "out").artifact(sparse["variant"]).nodes.read_text())
        if n["stage"] == "quantize"
    ]
    info = node["info"]
    if info["sparse_format"]:  # kept: smaller, and LiteRT ran it with the dense outputs
        assert int(sparse["tflite_bytes"]) < int(rows["dense"]["tflite_bytes"])
    else:  # refused, with the reason, and the dense file is what was exported
        assert info["sparse_format_refused"]
        assert sparse["tflite_bytes"] == rows["dense"]["tflite_bytes"]
        assert sparse["quantize_sparse_format"] == "0.0"


def test_a_sparse_file_that_fails_on_a_batch_is_refused_not_a_failed_row(folder: Path) -> None:
    # Measured: a pruned int8 ViT in the sparse format loads at batch 1, but XNNPACK cannot
    # prepare its sparse int8 FULLY_CONNECTED nodes once resized to a batch; the row keeps the
    # dense file (this once failed the whole variant with a RuntimeError).
    vit = {"family": "vit", "args": {"dim": 64, "blocks": 1, "heads": 2, "patch_size": 2}}
    recipe = {
        **doc({"mode": "int8", "calibration_samples": 32}),
        "model": vit,
        "pipelines": {
            "sparse": [
                {"stage": "train"},
                {"stage": "prune", "sparsity": 0.8, "epochs": 1},
                {"stage": "quantize", "mode": "int8", "sparse_format": True},
            ]
        },
    }
    (row,) = run_doc(folder, "vit", recipe).values()
    assert row["status"] == "ok", row["error"]
    assert row["quantize_sparse_format"] == "0.0"
    (node,) = [
        n
        for n in json.loads(RunDir(folder / "out").artifact(row["variant"]).nodes.read_text())
        if n["stage"] == "quantize"
    ]
    assert node["info"]["sparse_format_refused"].startswith("LiteRT cannot run it")
    converted = int(row["tflite_bytes"]) - int(float(row["metadata_bytes"]))
    assert converted == node["info"]["dense_bytes"]
