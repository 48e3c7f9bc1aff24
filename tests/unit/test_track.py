"""Experiment tracking without a store: what is read from a run directory (params, metrics,
curves, artifacts), the registry and its errors, the missing extra, the ledger, the reporter.

`synthetic_run` builds a run directory by hand (no TensorFlow): 2 variants x 2 replicates, one
replicate failed after its training node finished, one search alternative, a tune node with two
fits; tests/unit/test_track_mlflow.py logs it into a real MLflow store.
"""

from __future__ import annotations

import builtins
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from effcli import _atomic
from effcli.errors import UsageError
from effcli.results import ResultsStore, RunDir
from effcli.results.rundir import TRACKING, unit_name
from effcli.track import TrackingReporter, TrackSummary, _rows, open_tracker, trackers
from effcli.track._ledger import Ledger

V1, V2 = "aaaa11112222", "bbbb33334444"
KEYS = {  # node keys of each replicate's chain (shared train node per replicate)
    (V1, 0): ["t0" * 32, "p0" * 32, "q0" * 32],
    (V1, 1): ["t1" * 32, "p1" * 32, "q1" * 32],
    (V2, 0): ["t0" * 32, "u0" * 32, "s0" * 32],
    (V2, 1): ["t1" * 32, "u1" * 32, "s1" * 32],
}


def history(epochs: int, fit: int = 0, base: float = 1.0) -> list[dict[str, Any]]:
    return [
        {
            "fit": fit,
            "epoch": e,
            "loss": base / e,
            "accuracy": 0.5 + e / 100,
            "val_loss": base / e + 0.1,
            "val_accuracy": 0.4 + e / 100,
            "learning_rate": 0.001,
            "epoch_seconds": 0.25 * e,
        }
        for e in range(1, epochs + 1)
    ]


def meta(key: str, stage: str, hist: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "key": key,
        "stage": stage,
        "label": f"{stage} step",
        "train_seconds": 1.5 if hist else 0.0,
        "metrics": {},
        "info": {},
        "history": hist,
    }


def chain_metas(variant: str, replicate: int) -> list[dict[str, Any]]:
    t, middle, last = KEYS[(variant, replicate)]
    train = meta(t, "train", history(3, base=2.0 + replicate))
    if variant == V1:
        return [train, meta(middle, "prune", history(2)), meta(last, "quantize", [])]
    tune = meta(middle, "tune", history(2, fit=0) + history(2, fit=1, base=0.5))
    return [train, tune, meta(last, "quantize", [])]


def row(variant: str, replicate: int, **extra: Any) -> dict[str, Any]:
    """A results row of `variant` (an alternative `<V1>-<name>` is V1's)."""
    first = variant.split("-")[0] == V1
    width = 0.25 if first else 0.5
    return {
        "variant": variant,
        "pipeline": "train>prune>quantize" if first else "train>tune>quantize",
        "status": "ok",
        "error": "",
        "replicate": replicate,
        "replicate_seed": 7 + replicate,
        "train.width_multiplier": width,
        "prune.sparsity": 0.5 if first else "",
        "label": f"w{width} {'prune50%' if first else 'tune'} int8",
        "tflite_accuracy": 0.9 + replicate / 100,
        "accuracy": 0.91,
        "tflite_bytes": 1000 + replicate,
        "latency_ms_p50": 0.02,
        "train_seconds": 3.0,
        "kernel_sparsity": 0.5 if first else "",
        **extra,
    }


def write_unit(run: RunDir, unit: str, metas: list[dict[str, Any]], record: dict[str, Any]) -> None:
    folder = run.artifact(unit)
    folder.path.mkdir(parents=True)
    folder.tflite.write_bytes(b"TFL3" + unit.encode())
    _atomic.write_json(folder.nodes, metas)
    _atomic.write_json(folder.metrics, record)
    _atomic.write_json(folder.layers, [{"name": "dense", "params": 10}])
    _atomic.write_yaml(folder.recipe, {"name": "synth"})
    (folder.path / "labels.txt").write_text("0\n1\n")


def synthetic_run(root: Path) -> RunDir:
    """2 variants x 2 replicates: V2 replicate 1 failed in its tune node (its train node is
    cached); V1 replicate 0 kept a search alternative `t3`."""
    run = RunDir(root)
    root.mkdir(parents=True)
    _atomic.write_json(
        run.run_json, {"name": "synth", "data": {"source": "digits"}, "seed": 7, "replicates": 2}
    )
    _atomic.write_yaml(run.recipe, {"name": "synth"})
    variants = [
        {"variant": v, "replicate": k, "nodes": KEYS[(v, k)]} for v in (V1, V2) for k in (0, 1)
    ]
    _atomic.write_json(run.plan, {"name": "synth", "variants": variants})
    store = ResultsStore(run.results)
    for variant in (V1, V2):
        for replicate in (0, 1):
            unit = unit_name(variant, replicate)
            metas = chain_metas(variant, replicate)
            if (variant, replicate) == (V2, 1):
                failed = row(variant, replicate, status="failed", error="StageFailed: tune broke")
                for key in ("tflite_accuracy", "accuracy", "tflite_bytes", "latency_ms_p50"):
                    failed[key] = ""
                store.append(failed)
                run.node(metas[0]["key"]).mkdir(parents=True)
                _atomic.write_json(run.node_meta(metas[0]["key"]), metas[0])
                continue
            record = row(variant, replicate)
            store.append(record)
            write_unit(run, unit, metas, record)
            if (variant, replicate) == (V1, 0):
                alt = row(f"{V1}-t3", 0, alternative="t3", tflite_accuracy=0.8, trial_value=0.7)
                store.append(alt)
                write_unit(run, f"{V1}-t3", metas, alt)
    return run


def rows_by_unit(run: RunDir) -> dict[str, _rows.Row]:
    return {r.unit: r for r in _rows.read_rows(run)}


# -- what is read ------------------------------------------------------------------------------
def test_units_owners_and_names(tmp_path: Path) -> None:
    run = synthetic_run(tmp_path / "synth")
    rows = rows_by_unit(run)
    assert sorted(rows) == sorted([V1, f"{V1}.r1", f"{V1}-t3", V2, f"{V2}.r1"])
    assert rows[f"{V1}-t3"].owner == V1 and rows[f"{V1}-t3"].alternative == "t3"
    assert rows[f"{V2}.r1"].owner == f"{V2}.r1" and rows[f"{V2}.r1"].replicate == 1
    assert rows[f"{V1}.r1"].name == "w0.25 prune50% int8 #1"
    assert rows[f"{V1}-t3"].name == "w0.25 prune50% int8 t3 #0"


def test_params_are_knobs_and_identity_metrics_every_number(tmp_path: Path) -> None:
    rows = rows_by_unit(synthetic_run(tmp_path / "synth"))
    first = rows[V1]
    assert _rows.params(first) == {
        "pipeline": "train>prune>quantize",
        "label": "w0.25 prune50% int8",
        "variant": V1,
        "train.width_multiplier": "0.25",
        "prune.sparsity": "0.5",
    }
    assert _rows.metrics(first) == {
        "tflite_accuracy": 0.9,
        "accuracy": 0.91,
        "tflite_bytes": 1000.0,
        "latency_ms_p50": 0.02,
        "train_seconds": 3.0,
        "kernel_sparsity": 0.5,
    }
    # Replicates share params (they group), empty knobs are left out, the alternative is one.
    assert _rows.params(rows[f"{V1}.r1"]) == _rows.params(first)
    assert "prune.sparsity" not in _rows.params(rows[V2])
    assert _rows.params(rows[f"{V1}-t3"])["alternative"] == "t3"
    assert _rows.metrics(rows[f"{V1}-t3"])["trial_value"] == 0.7
    assert _rows.metrics(rows[f"{V2}.r1"]) == {"train_seconds": 3.0}


def test_histories_per_stage_and_per_fit() -> None:
    metas = chain_metas(V2, 0)
    curves = _rows.histories(metas)
    train = metas[0]["history"]
    assert curves["train/val_accuracy"] == [(e["epoch"], e["val_accuracy"]) for e in train]
    assert curves["train/loss"] == [(1, 2.0), (2, 1.0), (3, 2.0 / 3)]
    # Two fits in one node: each under its own prefix, epochs restart at 1.
    assert curves["tune/fit0/loss"] == [(1, 1.0), (2, 0.5)]
    assert curves["tune/fit1/loss"] == [(1, 0.5), (2, 0.25)]
    assert not any(name.startswith("tune/loss") or "quantize" in name for name in curves)
    assert {n.split("/")[-1] for n in curves} == {
        "loss",
        "accuracy",
        "val_loss",
        "val_accuracy",
        "learning_rate",
        "epoch_seconds",
    }
    # The same stage twice in a chain is numbered like a knob; odd keys are made valid.
    twice = [
        meta("a", "prune", history(1)),
        meta("b", "prune", [{"epoch": 1, "loss": 1.0, "top[5]": 0.3}]),
    ]
    assert sorted(_rows.histories(twice)) == sorted(
        [f"prune/{n}" for n in curves_names()] + ["prune2/loss", "prune2/top_5_"]
    )


def curves_names() -> list[str]:
    return ["loss", "accuracy", "val_loss", "val_accuracy", "learning_rate", "epoch_seconds"]


def test_chain_of_a_failed_row_comes_from_the_plan_and_the_cache(tmp_path: Path) -> None:
    run = synthetic_run(tmp_path / "synth")
    failed = rows_by_unit(run)[f"{V2}.r1"]
    metas = _rows.chain(run, failed)
    assert [m["stage"] for m in metas] == ["train"]  # only the node that finished
    assert _rows.node_keys(run, failed, metas) == KEYS[(V2, 1)]
    assert _rows.artifact_files(run, failed) == []
    names = [p.name for p in _rows.artifact_files(run, rows_by_unit(run)[V1])]
    assert names == [
        "model.tflite",
        "layers.json",
        "recipe.yaml",
        "nodes.json",
        "metrics.json",
        "labels.txt",
    ]


def test_digest_ignores_empty_cells_but_not_values() -> None:
    a = _rows.Row({"variant": "x", "status": "failed", "tflite_bytes": ""})
    assert a.digest == _rows.Row({"variant": "x", "status": "failed", "new": ""}).digest
    assert a.digest != _rows.Row({"variant": "x", "status": "ok"}).digest


def test_experiment_name_from_run_json_else_the_folder(tmp_path: Path) -> None:
    assert _rows.experiment_name(synthetic_run(tmp_path / "folder")) == "synth"
    measured = tmp_path / "measured_models"
    measured.mkdir()
    assert _rows.experiment_name(RunDir(measured)) == "measured_models"


# -- registry and the missing extra ------------------------------------------------------------
def test_unknown_tracker_lists_the_choices(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"unknown tracker 'mlflw' \(did you mean 'mlflow'\?\)"):
        open_tracker("mlflw", tmp_path)
    assert "mlflow" in trackers.names()


def test_missing_extra_is_one_line_with_the_install_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_import = builtins.__import__

    def no_mlflow(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "mlflow" or name.startswith("mlflow."):
            raise ModuleNotFoundError(f"No module named '{name}'", name=name)
        return real_import(name, *args, **kwargs)

    for name in [m for m in sys.modules if m == "mlflow" or m.startswith("mlflow.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setattr(builtins, "__import__", no_mlflow)
    with pytest.raises(UsageError) as caught:
        open_tracker("mlflow", tmp_path)
    assert str(caught.value) == (
        "tracking with mlflow needs the mlflow extra: pip install 'effdl[mlflow]'"
    )
    assert caught.value.exit_code == 2
    assert not (tmp_path / TRACKING).exists()


def test_importing_effcli_track_imports_neither_mlflow_nor_tensorflow() -> None:
    import subprocess

    code = (
        "import sys, effcli.track; effcli.track.trackers.names(); "
        "print(sorted({'mlflow', 'tensorflow', 'effcli.execute'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# -- the ledger --------------------------------------------------------------------------------
def test_ledger_keeps_one_entry_per_store(tmp_path: Path) -> None:
    a = Ledger(tmp_path, "sqlite:////a.db", "1", "synth")
    b = Ledger(tmp_path, "http://127.0.0.1:5000", "7", "synth")
    with a.locked():
        a.set_parent("parent-a")
        a.record("u1", "run-1", "d1")
    with b.locked():
        b.set_parent("parent-b")
    assert a.units() == {"u1": {"run_id": "run-1", "digest": "d1"}} and b.units() == {}
    assert (a.parent(), b.parent()) == ("parent-a", "parent-b")
    data = json.loads((tmp_path / TRACKING).read_text())
    assert [(e["uri"], e["experiment_id"]) for e in data["stores"]] == [
        ("sqlite:////a.db", "1"),
        ("http://127.0.0.1:5000", "7"),
    ]
    with a.locked():  # a new parent (the old one was deleted) forgets its units
        a.set_parent(None)
    assert a.units() == {} and a.parent() is None


def test_unreadable_ledger_starts_over(tmp_path: Path) -> None:
    (tmp_path / TRACKING).write_text("{not json")
    ledger = Ledger(tmp_path, "sqlite:////a.db", "1", "synth")
    assert ledger.units() == {} and ledger.parent() is None


# -- the reporter ------------------------------------------------------------------------------
class Recorder:
    def __init__(self) -> None:
        self.events: list[str] = []

    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: self.events.append(name)


class FakeTracker:
    """Fails for the units in `broken` (the reporter's behaviour, not a store's, is tested)."""

    name = "mlflow"

    def __init__(self, broken: set[str]) -> None:
        self.uri, self.experiment, self.run_dir = "sqlite:////x.db", "synth", Path("results/synth")
        self.broken, self.closed = broken, False
        self.logged: list[str] = []

    def log_unit(self, unit: str) -> None:
        if unit in self.broken:
            raise ConnectionError("store went away")
        self.logged.append(unit)

    def log_pending(self) -> TrackSummary:
        raise AssertionError("the reporter leaves the catch-up to its caller")

    def close(self) -> None:
        self.closed = True


class Unit:
    def __init__(self, unit: str) -> None:
        self.unit = unit


def test_reporter_forwards_events_logs_rows_and_warns_instead_of_failing() -> None:
    inner, tracker = Recorder(), FakeTracker({"b.r1"})
    warnings: list[str] = []
    reporter = TrackingReporter(inner, tracker, warnings.append)
    reporter.started(None, [], 0)  # type: ignore[arg-type]
    reporter.node_started(None)  # type: ignore[arg-type]
    reporter.epoch(None, 1, 2, {})  # type: ignore[arg-type]
    reporter.node_finished(None, False, 1.0)  # type: ignore[arg-type]
    reporter.variant_finished(Unit("a"), "ok", "")  # type: ignore[arg-type]
    reporter.variant_finished(Unit("b.r1"), "failed", "boom")  # type: ignore[arg-type]
    reporter.something_new(1)  # an event the protocol may gain later still reaches inner
    reporter.finished()
    assert inner.events == [
        "started",
        "node_started",
        "epoch",
        "node_finished",
        "variant_finished",
        "variant_finished",
        "something_new",
        "finished",
    ]
    assert tracker.logged == ["a"] and tracker.closed
    assert warnings == [
        "mlflow: b.r1 not logged: ConnectionError: store went away; "
        "`effdl export mlflow results/synth` logs it later",
    ]


def test_reporter_warns_when_the_parent_cannot_be_ended() -> None:
    class Stuck(FakeTracker):
        def close(self) -> None:
            raise TimeoutError("no answer")

    inner = Recorder()
    warnings: list[str] = []
    TrackingReporter(inner, Stuck(set()), warnings.append).finished()
    assert warnings == ["mlflow: could not end the parent run: TimeoutError: no answer"]
    assert inner.events == ["finished"]  # still passed on
