"""`--track tensorboard`: each row's curves and measured columns as TensorBoard event files,
written once, read back with TensorFlow's own event reader."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from effcli.errors import UsageError
from effcli.track import open_tracker

pytestmark = pytest.mark.slow  # imports TensorFlow to write the events

RESULTS = (
    "variant,label,pipeline,status,error,train.width_multiplier,tflite_accuracy,tflite_bytes\n"
    "v1,w0.25 int8,train>quantize,ok,,0.25,0.9,20000\n"
    "v2,w1.0 int8,train>quantize,failed,train: diverged,1.0,,\n"
)


def run_dir(root: Path) -> Path:
    root.mkdir(parents=True)
    (root / "results.csv").write_text(RESULTS)
    (root / "run.json").write_text(json.dumps({"name": "fake"}))
    history = [
        {"fit": 0, "epoch": e, "loss": 1.0 / e, "val_accuracy": 0.5 + e / 10} for e in (1, 2, 3)
    ]
    nodes = [
        {"key": "a" * 64, "stage": "train", "history": history},
        {"key": "b" * 64, "stage": "quantize", "history": []},
    ]
    (root / "artifacts" / "v1").mkdir(parents=True)
    (root / "artifacts" / "v1" / "nodes.json").write_text(json.dumps(nodes))
    return root


def scalars(folder: Path) -> dict[str, list[tuple[int, float]]]:
    from effcli._tf import tf

    out: dict[str, list[tuple[int, float]]] = {}
    for file in folder.glob("events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(str(file)):
            for value in event.summary.value:
                array = tf.make_ndarray(value.tensor)
                if array.dtype.kind == "f":
                    out.setdefault(value.tag, []).append((event.step, float(array)))
    return out


def test_rows_become_runs_with_their_curves_once(tmp_path: Path) -> None:
    root = run_dir(tmp_path / "run")
    tracker = open_tracker("tensorboard", root)
    summary = tracker.log_pending()
    assert (summary.logged, summary.skipped, summary.failed) == (2, 0, [])
    runs = sorted(p.name for p in (root / "tensorboard").iterdir())
    assert runs == ["v1 w0.25 int8", "v2 w1.0 int8"]
    found = scalars(root / "tensorboard" / "v1 w0.25 int8")
    assert found["train/loss"] == [(1, 1.0), (2, 0.5), (3, pytest.approx(1 / 3))]
    assert [s for s, _ in found["train/val_accuracy"]] == [1, 2, 3]
    assert found["row/tflite_accuracy"] == [(0, pytest.approx(0.9))]
    again = open_tracker("tensorboard", root).log_pending()
    assert (again.logged, again.skipped) == (0, 2)  # the ledger: nothing written twice


def test_an_unwritable_log_directory_is_one_line(tmp_path: Path) -> None:
    root = run_dir(tmp_path / "run")
    (tmp_path / "file").write_text("")
    with pytest.raises(UsageError, match="tensorboard: cannot write the log directory"):
        open_tracker("tensorboard", root, uri=str(tmp_path / "file" / "logs"))


def test_the_experiment_is_the_recipe_name_even_when_opened_before_the_run(tmp_path: Path) -> None:
    root = run_dir(tmp_path / "out")
    (root / "run.json").unlink()  # `effdl run` opens the tracker before run.json exists
    tracker = open_tracker("tensorboard", root)
    assert tracker.experiment == "out"
    (root / "run.json").write_text(json.dumps({"name": "fake"}))
    assert tracker.log_pending().experiment == "fake"
