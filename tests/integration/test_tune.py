"""The tune stage: an Optuna search through the real runner, resuming a study from its SQLite
file, pruning, and a multi-objective search whose Pareto trials become rows."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest

from effcli.errors import StageFailed
from effcli.plan import load_plan
from effcli.stages import tune
from effcli.stages._study import pruning_callback
from effcli.stages._training import FitReport
from effcli.stages.base import StageContext
from effcli.stages.tune import TuneStage
from tests.integration.helpers import random_splits, run_doc

pytestmark = pytest.mark.slow

DATA = {"source": "synthetic", "shape": [16], "classes": 4, "num_samples": 200}
TRAIN = {"epochs": 2, "early_stopping": {"enabled": False}}
SPACE = {
    "learning_rate": {"float": [1e-3, 1e-2], "log": True},
    "width_multiplier": {"float": [0.0625, 0.25]},
    "batch_size": {"int": [16, 32], "step": 16},
    "optimizer": {"categorical": ["adam", "sgd"]},
    "augment.noise": {"float": [0.0, 0.1]},
}


def doc(**tune_args: Any) -> dict[str, Any]:
    return {
        "name": "tune",
        "data": DATA,
        "model": {"family": "mlp"},
        "train": TRAIN,
        "pipeline": [{"stage": "tune", "space": SPACE, **tune_args}],
    }


def metas(out: Path) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in (out / "cache").glob("*/meta.json")]


def test_a_search_trains_trials_from_the_space_and_keeps_the_best(tmp_path: Path) -> None:
    import optuna

    (row,) = run_doc(tmp_path, "tune", doc(n_trials=3, sampler="random")).values()
    assert row["status"] == "ok", row["error"]
    assert int(float(row["tune_trials"])) == 3
    (meta,) = metas(tmp_path / "out")
    trials = meta["info"]["trials"]
    assert [t["state"] for t in trials] == ["COMPLETE"] * 3
    for trial in trials:  # every trial's values come from the space
        p = trial["params"]
        assert 1e-3 <= p["learning_rate"] <= 1e-2 and 0.0625 <= p["width_multiplier"] <= 0.25
        assert p["batch_size"] in (16, 32) and p["optimizer"] in ("adam", "sgd")
        assert 0.0 <= p["augment.noise"] <= 0.1
    best = max(trials, key=lambda t: (t["values"][0], -t["number"]))
    assert int(float(row["tune_best_trial"])) == best["number"]
    assert float(row["tune_best_val_accuracy"]) == pytest.approx(best["values"][0])
    assert meta["info"]["best_params"] == best["params"]
    assert float(row["train_seconds"]) > 0
    # The study is in the run directory, with the kept trial's model next to it.
    (db,) = (tmp_path / "out" / "studies").glob("*.sqlite3")
    assert db.name == f"{meta['key'][:16]}.sqlite3"
    study = optuna.load_study(study_name=f"tune-{meta['key'][:16]}", storage=f"sqlite:///{db}")
    assert len(study.trials) == 3
    assert (db.parent / f"{meta['key'][:16]}_trial{best['number']}.keras").is_file()


def test_a_rerun_resumes_the_study_and_runs_only_the_missing_trials(tmp_path: Path) -> None:
    import optuna
    from optuna.trial import TrialState

    recipe = tmp_path / "r.yaml"
    recipe.write_text(json.dumps(doc(n_trials=2, sampler="random")))
    (node,) = load_plan(recipe).nodes.values()
    data = random_splits((16,), classes=4, kind="tabular")
    workdir = tmp_path / "studies"

    def run(n_trials: int) -> Any:
        ctx = StageContext(data=data, seed=0)
        ctx.workdir = workdir  # set after construction, as a runner without the fields would
        ctx.node_key = node.key
        return TuneStage(node.params, {**node.resolved, "n_trials": n_trials}).run(None, ctx)

    storage = f"sqlite:///{workdir / f'{node.key[:16]}.sqlite3'}"
    first = run(2)
    assert first.info["trials_run_now"] == 2 and first.metrics["tune_trials"] == 2
    study = optuna.load_study(study_name=f"tune-{node.key[:16]}", storage=storage)
    study.ask()  # a trial a killed process left RUNNING: it counts as not done
    second = run(3)
    assert second.info["trials_run_now"] == 1 and second.metrics["tune_trials"] == 3
    states = [
        t.state for t in optuna.load_study(study_name=study.study_name, storage=storage).trials
    ]
    assert states == [TrialState.COMPLETE] * 2 + [TrialState.FAIL, TrialState.COMPLETE]
    # The first two trials' suggestions were not repeated by the resumed sampler.
    params = [t["params"] for t in second.info["trials"]]
    assert params[3] not in (params[0], params[1])
    third = run(3)  # nothing missing: no training, the best model is loaded from its file
    assert third.info["trials_run_now"] == 0 and third.train_seconds == second.train_seconds
    assert third.metrics["tune_best_trial"] == second.metrics["tune_best_trial"]
    assert third.info["retrained_trials"] == []
    assert third.artifact.model.count_params() == second.artifact.model.count_params()


def test_the_pruning_callback_reports_val_accuracy_and_prunes() -> None:
    import optuna

    class Trial:
        def __init__(self, prune: bool) -> None:
            self.prune, self.reported = prune, []

        def report(self, value: float, step: int) -> None:
            self.reported.append((step, value))

        def should_prune(self) -> bool:
            return self.prune

    keep = Trial(prune=False)
    pruning_callback(keep).on_epoch_end(0, {"val_accuracy": 0.5, "accuracy": 0.9})
    assert keep.reported == [(1, 0.5)]  # epochs are counted from 1, validation only
    with pytest.raises(optuna.TrialPruned):
        pruning_callback(Trial(prune=True)).on_epoch_end(2, {"val_accuracy": 0.1})


def test_multi_objective_pareto_trials_become_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Training is replaced by a score that grows with the model's size, so every trial of a
    distinct width is Pareto-optimal against its file size: the front is known in advance."""

    def fake_fit(model: Any, ctx: Any, spec: Any, **kwargs: Any) -> FitReport:
        return FitReport(0.01, 1, 1, model.count_params() / 1e6, 1.0)

    monkeypatch.setattr(tune, "fit", fake_fit)
    space = {"width_multiplier": {"categorical": [0.0625, 0.125, 0.25]}}
    d = doc(n_trials=3, sampler="nsga2", objectives=["val_accuracy", "tflite_bytes", "macs"])
    d["pipeline"][0]["space"] = space
    rows = run_doc(tmp_path, "tune", d)
    (meta,) = metas(tmp_path / "out")
    (variant,) = rows
    front = meta["info"]["pareto_trials"]
    widths = {t["number"]: t["params"]["width_multiplier"] for t in meta["info"]["trials"]}
    assert sorted(front) == sorted(widths)  # (equal trials do not dominate each other)
    main = max(front, key=lambda n: (widths[n], -n))  # the best val_accuracy: the widest here
    assert int(float(rows[variant]["tune_trial"])) == main
    with open(tmp_path / "out" / "results.csv", newline="") as handle:
        all_rows = {r["variant"]: r for r in csv.DictReader(handle)}
    others = sorted(n for n in front if n != main)
    assert [a["name"] for a in meta["alternatives"]] == [f"t{n}" for n in others]
    assert set(all_rows) == {variant, *(f"{variant}-t{n}" for n in others)}
    trials = {t["number"]: t for t in meta["info"]["trials"]}
    for n in [main, *others]:
        row = all_rows[variant if n == main else f"{variant}-t{n}"]
        assert row["status"] == "ok", row["error"]
        assert int(float(row["tune_trial"])) == n
        # The trial's footprint objectives are those of the exported float file it became
        # (before effdl's metadata went in: the row says how many bytes that added).
        _, tflite_bytes, macs = trials[n]["values"]
        converted = int(row["tflite_bytes"]) - int(float(row["metadata_bytes"]))
        assert converted == tflite_bytes and int(row["macs"]) == macs
    sizes = [int(all_rows[f"{variant}-t{n}"]["tflite_bytes"]) for n in others]
    assert all(s <= int(all_rows[variant]["tflite_bytes"]) for s in sizes)


def test_a_failing_trial_does_not_stop_the_search_but_all_failing_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without a workdir the study is in memory; a trial that fails (e.g. diverged) is recorded
    and the search goes on; if none completes, the stage fails with the last reason."""
    calls: list[int] = []

    def flaky_fit(model: Any, ctx: Any, spec: Any, **kwargs: Any) -> FitReport:
        calls.append(1)
        if len(calls) == 1 or fail_all:
            raise StageFailed("training diverged: lower the learning rate")
        return FitReport(0.01, 1, 1, 0.5, 1.0)

    monkeypatch.setattr(tune, "fit", flaky_fit)
    recipe = tmp_path / "r.yaml"
    recipe.write_text(json.dumps(doc(n_trials=2, sampler="random")))
    (node,) = load_plan(recipe).nodes.values()
    ctx = StageContext(data=random_splits((16,), classes=4, kind="tabular"), seed=0)
    fail_all = False
    result = TuneStage(node.params, node.resolved).run(None, ctx)
    states = [t["state"] for t in result.info["trials"]]
    assert states == ["FAIL", "COMPLETE"] and result.metrics["tune_best_trial"] == 1
    assert result.info["trials"][0]["error"] == "training diverged: lower the learning rate"
    assert result.info["storage"] is None and result.metrics["tune_trials"] == 1
    fail_all = True
    with pytest.raises(StageFailed) as info:
        TuneStage(node.params, node.resolved).run(None, ctx)
    assert str(info.value) == (
        "no trial of 2 completed; last error: training diverged: lower the learning rate"
    )
