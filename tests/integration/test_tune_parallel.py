"""`parallel_trials`: trials of one tune node in spawned processes on the same SQLite study;
the budget is met exactly and the node's result is produced."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from effcli.plan import load_plan
from effcli.stages._parallel_trials import run_in_workers
from effcli.stages.base import StageContext
from effcli.stages.tune import TuneStage
from tests.integration.helpers import random_splits, run_doc

pytestmark = pytest.mark.slow


def doc(**tune: Any) -> dict[str, Any]:
    return {
        "name": "tune-parallel",
        "data": {"source": "digits"},
        "model": {"family": "mlp", "args": {"width_multiplier": 0.25}},
        "train": {"epochs": 1, "early_stopping": {"enabled": False}},
        "baseline": False,
        "pipeline": [
            {
                "stage": "tune",
                "space": {"learning_rate": {"float": [1e-3, 1e-2], "log": True}},
                "n_trials": 2,
                "parallel_trials": 2,
                **tune,
            }
        ],
    }


def load(storage_dir: Path, prefix: str) -> Any:
    import optuna

    storage = f"sqlite:///{storage_dir / f'{prefix}.sqlite3'}"
    return optuna.load_study(study_name=f"tune-{prefix}", storage=storage)


def test_a_parallel_search_meets_the_budget_and_keeps_the_best(tmp_path: Path) -> None:
    from optuna.trial import TrialState

    (row,) = run_doc(tmp_path, "tune-parallel", doc(startup_trials=1)).values()
    assert row["status"] == "ok", row["error"]
    assert int(float(row["tune_trials"])) == 2
    (meta_file,) = (tmp_path / "out" / "cache").glob("*/meta.json")
    meta = json.loads(meta_file.read_text())
    info = meta["info"]
    assert info["parallel_trials"] == 2 and info["trials_run_now"] == 2
    assert info["sampler"] == {"name": "tpe", "n_startup_trials": 1, "seed": 0}
    assert {t["worker"] for t in info["trials"]} <= {0, 1}
    prefix = meta["key"][:16]
    studies = tmp_path / "out" / "studies"
    study = load(studies, prefix)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 2  # exactly the budget
    best = int(float(row["tune_best_trial"]))
    assert info["best_params"] == study.trials[best].params
    assert (studies / f"{prefix}_trial{best}.keras").is_file()


def test_a_spawned_worker_runs_trials_on_the_node_study(tmp_path: Path) -> None:
    """The node's process runs none here, so the spawned one must run them all."""
    from optuna.trial import TrialState

    recipe = tmp_path / "r.yaml"
    recipe.write_text(json.dumps(doc(sampler="random")))
    (node,) = load_plan(recipe).nodes.values()
    stage = TuneStage(node.params, node.resolved)
    workdir = tmp_path / "studies"
    ctx = StageContext(
        data=random_splits((16,), classes=4, kind="tabular"),
        seed=0,
        node_key=node.key,
        workdir=workdir,
    )
    study = stage._study(ctx)  # the node's process opens the study
    run_in_workers(stage, ctx, 2, (study.before, 2, None), local=lambda: None)
    trials = load(workdir, node.key[:16]).trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 2
    assert [t.user_attrs["worker"] for t in trials] == [1, 1]
    assert trials[0].params != trials[1].params
