"""results.csv appends: column order, replacement, atomicity, concurrency."""

from __future__ import annotations

import csv
import multiprocessing
import os
from pathlib import Path

import pytest

from effcli.results import METRIC_COLUMNS, ResultsStore


def read(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames or []), list(reader)


def test_column_order_and_new_knobs(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path / "results.csv")
    store.append(
        {
            "variant": "a",
            "pipeline": "train",
            "status": "ok",
            "error": "",
            "train.width_multiplier": 0.5,
            "tflite_bytes": 100,
            "prune_x": 1.0,
        }
    )
    store.append(
        {
            "variant": "b",
            "pipeline": "train>prune",
            "status": "ok",
            "error": "",
            "train.width_multiplier": 1.0,
            "prune.sparsity": 0.8,
            "tflite_bytes": 50,
        }
    )
    columns, rows = read(tmp_path / "results.csv")
    assert columns == [
        "variant",
        "label",
        "pipeline",
        "status",
        "error",
        "train.width_multiplier",
        "prune.sparsity",
        *METRIC_COLUMNS,
        "prune_x",
    ]
    assert rows[0]["prune.sparsity"] == "" and rows[1]["prune.sparsity"] == "0.8"


def test_same_variant_replaces_its_row_and_floats_round_trip(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path / "results.csv")
    store.append({"variant": "a", "status": "failed", "error": "boom"})
    store.append(
        {
            "variant": "a",
            "status": "ok",
            "accuracy": 0.1 + 0.2,
            "latency_ms_p50": None,
            "sparsity": float("nan"),
        }
    )
    _, rows = read(tmp_path / "results.csv")
    assert len(rows) == 1 and rows[0]["status"] == "ok"
    assert float(rows[0]["accuracy"]) == 0.1 + 0.2
    assert rows[0]["latency_ms_p50"] == "" and rows[0]["sparsity"] == ""
    assert store.statuses() == {("a", 0): "ok"}  # (variant, replicate); none given is 0
    assert not list(tmp_path.glob("*.tmp"))


def test_rows_are_keyed_by_variant_and_replicate(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path / "results.csv")
    store.append({"variant": "a", "status": "ok"})  # a run from before replicates
    store.append({"variant": "a", "replicate": 1, "replicate_seed": 1, "status": "failed"})
    store.append({"variant": "a", "replicate": 2, "replicate_seed": 2, "status": "ok"})
    store.append({"variant": "a", "replicate": 1, "replicate_seed": 1, "status": "ok"})  # retry
    assert store.statuses() == {("a", 0): "ok", ("a", 1): "ok", ("a", 2): "ok"}
    header, rows = read(tmp_path / "results.csv")
    assert header[:7] == [
        "variant",
        "label",
        "pipeline",
        "status",
        "error",
        "replicate",
        "replicate_seed",
    ]
    assert [r["replicate"] for r in rows] == ["", "2", "1"]


def test_a_failed_write_leaves_the_previous_file_intact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = ResultsStore(tmp_path / "results.csv")
    store.append({"variant": "a", "status": "ok"})
    before = (tmp_path / "results.csv").read_bytes()

    def crash(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        store.append({"variant": "b", "status": "ok"})
    assert (tmp_path / "results.csv").read_bytes() == before


def _append_many(path: str, worker: int) -> None:
    store = ResultsStore(Path(path))
    for i in range(10):
        store.append({"variant": f"w{worker}-{i}", "status": "ok", "accuracy": i / 10})


def test_concurrent_appends_all_land(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    procs = [
        ctx.Process(target=_append_many, args=(str(tmp_path / "results.csv"), w)) for w in range(4)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    _, rows = read(tmp_path / "results.csv")
    assert sorted(r["variant"] for r in rows) == sorted(
        f"w{w}-{i}" for w in range(4) for i in range(10)
    )
