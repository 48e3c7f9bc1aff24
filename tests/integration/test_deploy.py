"""Deployable artifacts through a real run: every artifact folder gets labels.txt, model_card.md
and a model.tflite with effdl metadata and an `input`/`logits` signature, whose outputs are
bit-identical to the converted file's (float32, int8, float16, sparse format); the card's
snippet predicts what effdl measured; export_model copies the right folder."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from effcli.data.base import load_splits
from effcli.deploy import (
    LABELS_ENTRY,
    PREPROCESSING_ENTRY,
    card_snippet,
    read_metadata,
)
from effcli.deploy.export import export_model
from effcli.measure.flatbuffer import model_stats
from effcli.measure.litert import LiteRTModel
from effcli.results.rundir import TFLITE_FILE, RunDir, unit_name
from tests.integration.helpers import project, run_doc

pytestmark = pytest.mark.slow

TRAIN = {"stage": "train", "width_multiplier": 0.125}
RECIPE: dict[str, Any] = {
    "name": "deploy",
    "extends": "base",
    "replicates": 2,
    "data": {"source": "digits", "max_samples": 60, "normalize": "standardize"},
    "train": {"epochs": 2, "early_stopping": {"enabled": False}},
    "pipelines": {
        "fp32": [TRAIN, {"stage": "quantize", "mode": "float32"}],
        "int8": [TRAIN, {"stage": "quantize", "mode": "int8", "calibration_samples": 32}],
        "fp16": [TRAIN, {"stage": "quantize", "mode": "float16"}],
        "sparse": [
            TRAIN,
            {"stage": "prune", "sparsity": 0.8, "epochs": 2},
            {"stage": "quantize", "mode": "float32", "sparse_format": True},
        ],
    },
}
SIGNATURE = {"serving_default": {"inputs": ["input"], "outputs": ["logits"]}}


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[RunDir, dict[str, dict[str, str]]]:
    folder = project(tmp_path_factory.mktemp("deploy"))
    rows = run_doc(folder, "deploy", RECIPE)
    assert {row["status"] for row in rows.values()} == {"ok"}, rows
    return RunDir(folder / "out"), {row["branch"]: row for row in rows.values()}


def all_rows(out: RunDir) -> list[dict[str, str]]:
    with open(out.results, newline="") as handle:
        return list(csv.DictReader(handle))


def test_every_artifact_folder_ships_labels_a_card_and_metadata(
    run: tuple[RunDir, dict[str, dict[str, str]]],
) -> None:
    out, _ = run
    split = json.loads(out.split_json.read_text())
    folders = out.artifact_dirs()
    assert len(folders) == 8  # 4 variants x 2 replicates
    for name, folder in folders.items():
        labels = folder.labels_txt.read_text()
        assert labels == "".join(f"{i}\n" for i in range(10)), name  # digits: no class names
        content = folder.tflite.read_bytes()
        metadata = read_metadata(content)
        assert metadata[LABELS_ENTRY].decode() == labels
        record = json.loads(metadata[PREPROCESSING_ENTRY])
        assert record["normalize"]["offset"] == split["normalize"]["offset"]
        assert record["normalize"]["divisor"] == split["normalize"]["divisor"]
        runtime = LiteRTModel(content)
        assert runtime.interpreter.get_signature_list() == SIGNATURE
        detail = runtime.input_detail
        assert record["input"]["shape"] == [int(d) for d in detail["shape"]] == [1, 8, 8, 1]
        assert record["input"]["dtype"] == np.dtype(detail["dtype"]).name
        if "quantization" in record["input"]:
            q = record["input"]["quantization"]
            assert (q["scale"], q["zero_point"]) == detail["quantization"]
        # Every number was measured on the shipped (rewritten) file.
        metrics = json.loads(folder.metrics.read_text())
        assert metrics["tflite_bytes"] == len(content)
        assert metrics["params"] == model_stats(content).params
        card = folder.model_card.read_text()
        assert "Embedded in model.tflite" in card
        assert f"offset = `{split['normalize']['offset']!r}`" in card
        assert f"variant `{metrics['variant']}`" in card
        assert "95 % Wilson interval over test samples" in card
        for node in json.loads(folder.nodes.read_text()):
            assert f"`{node['key'][:12]}`" in card


@pytest.mark.parametrize("branch", ["fp32", "int8", "fp16", "sparse"])
def test_the_rewrite_keeps_outputs_bit_identical(
    run: tuple[RunDir, dict[str, dict[str, str]]], branch: str
) -> None:
    out, rows = run
    row = rows[branch]
    folder = out.artifact(row["variant"])
    leaf = json.loads(folder.nodes.read_text())[-1]["key"]
    converted = (out.node(leaf) / TFLITE_FILE).read_bytes()  # the cache keeps it as converted
    shipped = folder.tflite.read_bytes()
    assert converted != shipped and PREPROCESSING_ENTRY not in read_metadata(converted)
    x = np.load(out.test_npz)["x"]
    before, after = LiteRTModel(converted).predict(x), LiteRTModel(shipped).predict(x)
    assert np.array_equal(before, after)
    assert np.array_equal(np.argmax(after, axis=1), np.load(folder.predictions))
    stats = model_stats(shipped)
    assert stats.metrics() == model_stats(converted).metrics()
    dtypes = set(stats.weight_dtypes)
    expected = {"fp32": "float32", "int8": "int8", "fp16": "float16", "sparse": "float32"}
    assert expected[branch] in dtypes
    if branch == "sparse":
        assert row["quantize_sparse_format"] == "1.0"
        assert "sparse" in {layer.encoding for layer in stats.layers}


def test_the_cards_snippet_predicts_what_effdl_measured(
    run: tuple[RunDir, dict[str, dict[str, str]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    out, rows = run
    split = json.loads(out.split_json.read_text())
    # The inputs before normalization: the snippet applies the card's constants itself.
    spec = {k: v for k, v in split["data"].items() if k != "normalize"}
    raw = load_splits(spec, out.root, split["seed"]).x_test
    assert not np.allclose(raw, np.load(out.test_npz)["x"])
    for branch in ("int8", "fp16"):
        folder = out.artifact(unit_name(rows[branch]["variant"], 1))
        monkeypatch.chdir(folder.path)
        namespace: dict[str, Any] = {}
        exec(card_snippet(folder.model_card.read_text()), namespace)
        labels = folder.labels_txt.read_text().splitlines()
        expected = [labels[i] for i in np.load(folder.predictions)]
        assert len(set(expected)) > 1, branch  # a constant model would prove nothing
        assert [namespace["predict"](x) for x in raw] == expected, branch


def test_export_copies_the_chosen_folder_with_the_replicate_interval(
    run: tuple[RunDir, dict[str, dict[str, str]]], tmp_path: Path
) -> None:
    out, rows = run
    variant = rows["int8"]["variant"]
    target = export_model(out.root, variant[:6], tmp_path / "ship")
    assert sorted(os.listdir(target)) == sorted(
        ["model.tflite", "labels.txt", "model_card.md", "recipe.yaml", "metrics.json",
         "layers.json", "nodes.json"]
    )  # fmt: skip
    source = out.artifact(variant)
    assert (target / "model.tflite").read_bytes() == source.tflite.read_bytes()
    assert (target / "labels.txt").read_text() == source.labels_txt.read_text()
    card = (target / "model_card.md").read_text()
    accuracies = [float(r["tflite_accuracy"]) for r in all_rows(out) if r["variant"] == variant]
    assert len(accuracies) == 2
    assert "across 2 replicates of this variant" in card and "this file is replicate 0" in card
    assert f"mean {100 * np.mean(accuracies):.2f} %" in card
    assert "two-way bootstrap over test samples and replicates" in card
    label = rows["int8"].get("label")
    if label:  # rows carry a readable label: it names the variant too
        again = export_model(out.root, label, tmp_path / "by-label", replicate=1)
        metrics = json.loads((again / "metrics.json").read_text())
        assert (metrics["variant"], metrics["replicate"]) == (variant, 1)
