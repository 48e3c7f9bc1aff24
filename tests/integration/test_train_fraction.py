"""`train_fraction` end to end: the training stage trains on the subset (`train_samples`), the
test split every row is measured on does not change, a student distils on its own subset from a
teacher trained on the whole split, a search's trials train on theirs, and a fraction too small fails its variant in one line."""

from __future__ import annotations

import json
from math import floor
from pathlib import Path

import numpy as np
import pytest

from effcli.results.rundir import RunDir
from tests.integration.helpers import run_doc

pytestmark = pytest.mark.slow

DOC = {
    "name": "fraction",
    "data": {"source": "synthetic", "shape": [16], "classes": 4, "num_samples": 200},
    "model": {"family": "mlp", "args": {"hidden": [16]}},
    "train": {"epochs": 1, "early_stopping": {"enabled": False}},
    "pipelines": {
        "teacher": [{"stage": "train"}],
        "plain": [{"stage": "train", "train_fraction": {"sweep": [0.01, 0.25, 1.0]}}],
        "student": [{"stage": "distill", "teacher": "teacher", "train_fraction": 0.25}],
        "tuned": [
            {
                "stage": "tune",
                "space": {"learning_rate": {"float": [1e-3, 1e-2]}},
                "n_trials": 1,
                "sampler": "random",
                "train_fraction": 0.5,
            }
        ],
    },
}


def test_a_fraction_trains_on_its_subset_and_is_measured_on_the_same_test(
    tmp_path: Path,
) -> None:
    rows = list(run_doc(tmp_path, "fraction", DOC).values())
    out = RunDir(tmp_path / "out")
    split = json.loads(out.split_json.read_text())
    counts = split["class_counts"]["train"]
    full = sum(counts)
    quarter, half = (sum(max(1, floor(f * c + 0.5)) for c in counts) for f in (0.25, 0.5))
    by_label = {r["label"]: r for r in rows}
    # `plain` at 100 % is the teacher's very node (the same key), so it is one row.
    assert set(by_label) == {"teacher", "f1%", "f25%", "distill(T4)", "tune"}

    tiny = by_label["f1%"]
    assert tiny["status"] == "failed"
    assert tiny["error"].startswith(f"train: train_fraction 0.01 keeps 1 of {full} training")
    assert "use train_fraction >=" in tiny["error"]

    ok = {k: r for k, r in by_label.items() if r["status"] == "ok"}
    samples = {k: int(float(r["train_samples"])) for k, r in ok.items()}
    assert samples == {"teacher": full, "f25%": quarter, "distill(T4)": quarter, "tune": half}
    assert 0 < quarter < half < full
    # Epochs x the subset: the training cost counts what was trained on.
    assert int(float(ok["f25%"]["train_samples_seen"])) == quarter
    # Every row predicts the same, whole test split.
    test_labels = np.load(out.labels)
    assert test_labels.size == split["sizes"]["test"]
    for row in ok.values():
        predictions = np.load(out.artifact(row["variant"]).predictions)
        assert predictions.shape[0] == test_labels.size
