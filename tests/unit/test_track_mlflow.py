"""The MLflow tracker against a real MLflow SQLite store (no TensorFlow): a hand-made run
directory (tests/unit/test_track.py) logged, read back with MlflowClient, logged again (nothing
new), grown by a row (only it), retried (its run replaced), sent to a second store (logged again
there); an unreachable store fails fast; a failing write is a warning and stays pending."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
from mlflow.entities import ViewType
from mlflow.tracking import MlflowClient

from effcli import __version__, _atomic
from effcli.errors import UsageError
from effcli.execute import NullReporter
from effcli.results import ResultsStore, RunDir
from effcli.results.rundir import TRACKING
from effcli.track import TrackingReporter, _rows, open_tracker
from effcli.track.mlflow_tracker import MlflowTracker
from tests.unit.test_track import KEYS, V1, V2, chain_metas, row, synthetic_run, write_unit

UNITS = {V1, f"{V1}.r1", f"{V1}-t3", V2, f"{V2}.r1"}


@pytest.fixture(scope="module")
def empty_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An MLflow SQLite file with its tables made (about 2 s), copied by each test."""
    path = tmp_path_factory.mktemp("store") / "mlflow.db"
    MlflowClient(f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def uri(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, empty_store: Path) -> str:
    monkeypatch.chdir(tmp_path)  # a SQLite store keeps its artifacts in ./mlruns
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    shutil.copyfile(empty_store, tmp_path / "mlflow.db")
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


@pytest.fixture
def run(tmp_path: Path) -> RunDir:
    return synthetic_run(tmp_path / "results" / "synth")


def children(client: MlflowClient, tracker: Any, view: int = ViewType.ACTIVE_ONLY) -> list[Any]:
    parent = tracker.ledger.parent()
    return list(
        client.search_runs(
            [tracker.experiment_id], f"tags.mlflow.parentRunId = '{parent}'", run_view_type=view
        )
    )


def by_unit(runs: list[Any]) -> dict[str, Any]:
    return {r.data.tags["effdl.unit"]: r for r in runs}


def ledger(run: RunDir) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((run.root / TRACKING).read_text())
    return data


class Unit:
    def __init__(self, unit: str) -> None:
        self.unit = unit


def test_every_row_is_a_child_run_with_params_metrics_curves_artifacts_and_tags(
    run: RunDir, uri: str
) -> None:
    tracker = open_tracker("mlflow", run.root, uri=uri)
    summary = tracker.log_pending()
    tracker.close()
    assert (summary.logged, summary.skipped, summary.failed) == (5, 0, [])
    assert (summary.uri, summary.experiment) == (uri, "synth")
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("synth")
    assert experiment is not None
    assert isinstance(tracker, MlflowTracker) and experiment.experiment_id == tracker.experiment_id

    parent = client.get_run(tracker.ledger.parent() or "")
    assert parent.info.status == "FINISHED" and parent.info.run_name == "synth"
    assert parent.data.params == {
        "name": "synth",
        "seed": "7",
        "replicates": "2",
        "data.source": "digits",
    }
    assert parent.data.tags["effdl.kind"] == "run"
    assert {a.path for a in client.list_artifacts(parent.info.run_id)} == {
        "recipe.yaml",
        "plan.json",
        "run.json",
    }

    runs = by_unit(children(client, tracker))
    assert set(runs) == UNITS
    rows = {r.unit: r for r in _rows.read_rows(run)}
    for unit, found in runs.items():
        expected_row = rows[unit]
        assert found.data.params == _rows.params(expected_row)
        curves = _rows.histories(_rows.chain(run, expected_row))
        last = {name: points[-1][1] for name, points in curves.items()}
        assert found.data.metrics == {**_rows.metrics(expected_row), **last}
        assert found.data.tags["effdl.version"] == __version__
        assert found.data.tags["effdl.variant"] == expected_row.variant
        assert found.info.run_name == expected_row.name

    # Curves: step = epoch, values as in nodes.json; a tune node's fits apart.
    first = runs[V1].info.run_id
    nodes = json.loads(run.artifact(V1).nodes.read_text())
    for stage, meta in (("train", nodes[0]), ("prune", nodes[1])):
        for metric in ("loss", "val_accuracy", "learning_rate", "epoch_seconds"):
            history = client.get_metric_history(first, f"{stage}/{metric}")
            assert [(m.step, m.value) for m in history] == [
                (e["epoch"], e[metric]) for e in meta["history"]
            ]
    tune = chain_metas(V2, 0)[1]["history"]
    history = client.get_metric_history(runs[V2].info.run_id, "tune/fit1/val_loss")
    assert [(m.step, m.value) for m in history] == [
        (e["epoch"], e["val_loss"]) for e in tune if e["fit"] == 1
    ]
    assert client.get_metric_history(runs[V2].info.run_id, "tune/val_loss") == []

    assert {a.path for a in client.list_artifacts(first)} == {
        "model.tflite",
        "layers.json",
        "recipe.yaml",
        "nodes.json",
        "metrics.json",
        "labels.txt",
    }
    tags = runs[V1].data.tags
    assert tags["effdl.status"] == "ok" and "effdl.error" not in tags
    assert tags["effdl.nodes"] == " ".join(KEYS[(V1, 0)])
    assert tags["effdl.stages"] == "train step > prune step > quantize step"
    assert (tags["effdl.replicate"], tags["effdl.replicate_seed"]) == ("0", "7")
    assert runs[f"{V1}.r1"].data.tags["effdl.replicate"] == "1"
    assert runs[f"{V1}-t3"].data.tags["effdl.alternative_of"] == V1

    # The failed replicate: a FAILED run with its error, the curve of the node that finished.
    failed = runs[f"{V2}.r1"]
    assert failed.info.status == "FAILED"
    assert failed.data.tags["effdl.error"] == "StageFailed: tune broke"
    assert failed.data.tags["effdl.nodes"] == " ".join(KEYS[(V2, 1)])
    assert [m.step for m in client.get_metric_history(failed.info.run_id, "train/loss")] == [
        1,
        2,
        3,
    ]
    assert client.list_artifacts(failed.info.run_id) == []

    entry = ledger(run)["stores"][0]
    assert (entry["uri"], entry["experiment_id"]) == (uri, experiment.experiment_id)
    assert entry["parent_run_id"] == parent.info.run_id
    assert {u: e["run_id"] for u, e in entry["units"].items()} == {
        u: r.info.run_id for u, r in runs.items()
    }


def test_logging_again_logs_nothing_and_a_new_row_goes_under_the_same_parent(
    run: RunDir, uri: str
) -> None:
    first = open_tracker("mlflow", run.root, uri=uri)
    first.log_pending()
    first.close()
    again = open_tracker("mlflow", run.root, uri=uri)
    summary = again.log_pending()
    again.close()
    assert (summary.logged, summary.skipped) == (0, 5)
    client = MlflowClient(uri)
    assert len(children(client, again, ViewType.ALL)) == 5
    assert isinstance(again, MlflowTracker)
    assert len(client.search_runs([again.experiment_id], run_view_type=ViewType.ALL)) == 6

    # A rerun that adds a variant: only its row is logged, under the same parent.
    new = "cccc55556666"
    record = row(new, 0, label="w1.0 int8")
    ResultsStore(run.results).append(record)
    write_unit(run, new, chain_metas(V1, 0), record)
    grown = open_tracker("mlflow", run.root, uri=uri)
    summary = grown.log_pending()
    grown.close()
    assert (summary.logged, summary.skipped) == (1, 5)
    assert isinstance(grown, MlflowTracker) and isinstance(first, MlflowTracker)
    assert grown.ledger.parent() == first.ledger.parent()
    assert set(by_unit(children(client, grown, ViewType.ALL))) == {*UNITS, new}


def test_a_retried_row_replaces_its_run(run: RunDir, uri: str) -> None:
    tracker = open_tracker("mlflow", run.root, uri=uri)
    tracker.log_pending()
    client = MlflowClient(uri)
    old = by_unit(children(client, tracker))[f"{V2}.r1"].info.run_id
    # `effdl run --retry-failed`: the failed replicate now has a row that is ok.
    record = row(V2, 1)
    ResultsStore(run.results).append(record)
    write_unit(run, f"{V2}.r1", chain_metas(V2, 1), record)
    summary = tracker.log_pending()
    assert (summary.logged, summary.skipped) == (1, 4)
    now = by_unit(children(client, tracker))
    assert set(now) == UNITS and now[f"{V2}.r1"].info.status == "FINISHED"
    assert client.get_run(old).info.lifecycle_stage == "deleted"


def test_log_unit_logs_the_row_and_its_alternatives(run: RunDir, uri: str) -> None:
    tracker = open_tracker("mlflow", run.root, uri=uri)
    tracker.log_unit(V1)
    assert set(by_unit(children(MlflowClient(uri), tracker))) == {V1, f"{V1}-t3"}
    with pytest.raises(Exception, match="has no row nope"):
        tracker.log_unit("nope")


def test_another_store_gets_everything_again(run: RunDir, uri: str, tmp_path: Path) -> None:
    open_tracker("mlflow", run.root, uri=uri).log_pending()
    other = f"sqlite:///{tmp_path / 'other.db'}"
    summary = open_tracker("mlflow", run.root, uri=other).log_pending()
    assert (summary.logged, summary.skipped) == (5, 0)
    assert [e["uri"] for e in ledger(run)["stores"]] == [uri, other]
    # The first store is still complete: nothing to do there.
    assert open_tracker("mlflow", run.root, uri=uri).log_pending().logged == 0


def test_a_deleted_parent_run_is_logged_again(run: RunDir, uri: str) -> None:
    tracker = open_tracker("mlflow", run.root, uri=uri)
    tracker.log_pending()
    assert isinstance(tracker, MlflowTracker)
    MlflowClient(uri).delete_run(tracker.ledger.parent() or "")
    summary = open_tracker("mlflow", run.root, uri=uri).log_pending()
    assert (summary.logged, summary.skipped) == (5, 0)


def test_default_uri_is_the_environment_else_mlflow_db_here(
    run: RunDir, uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tracker = open_tracker("mlflow", run.root)
    assert tracker.uri == f"sqlite:///{tmp_path / 'mlflow.db'}" == uri
    assert (tmp_path / "mlflow.db").is_file()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///env.db")
    assert open_tracker("mlflow", run.root).uri == f"sqlite:///{tmp_path / 'env.db'}"
    assert open_tracker("mlflow", run.root, experiment="mine").experiment == "mine"


def test_a_run_that_has_not_started_takes_the_recipe_name_once_it_has(
    uri: str, tmp_path: Path
) -> None:
    out = tmp_path / "any-out-folder"
    tracker = open_tracker("mlflow", out, uri=uri)  # `effdl run --out`: before the run starts
    assert not out.exists()  # opening only checked the store
    synthetic_run(out)  # the run writes run.json (name: synth), then its rows
    summary = tracker.log_pending()
    assert (summary.logged, summary.experiment, tracker.experiment) == (5, "synth", "synth")
    assert MlflowClient(uri).get_experiment_by_name("any-out-folder") is None


@pytest.mark.parametrize("started", [True, False])
def test_an_unreachable_store_is_one_line_within_seconds(
    run: RunDir, uri: str, tmp_path: Path, started: bool
) -> None:
    start = time.perf_counter()
    with pytest.raises(UsageError) as caught:
        open_tracker("mlflow", run.root if started else tmp_path / "new", uri="http://127.0.0.1:9")
    assert time.perf_counter() - start < 20
    message = str(caught.value)
    assert message.startswith("mlflow: the tracking store http://127.0.0.1:9 does not answer (")
    assert "Connection refused" in message and "\n" not in message
    assert caught.value.exit_code == 2
    blocked = run.root / "not_a_folder"
    blocked.write_text("")
    with pytest.raises(UsageError, match="does not answer"):
        open_tracker("mlflow", run.root, uri=f"sqlite:///{blocked}/mlflow.db")
    assert not (run.root / TRACKING).exists()


def test_a_failing_write_warns_names_the_row_and_stays_pending(
    run: RunDir, uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    tracker = open_tracker("mlflow", run.root, uri=uri)
    assert isinstance(tracker, MlflowTracker)
    broken = str(run.artifact(f"{V1}.r1").path)
    real = tracker._client.log_artifact

    def flaky(run_id: str, path: str, *args: Any) -> None:
        if path.startswith(broken + "/"):
            raise ConnectionError("store went away")
        real(run_id, path, *args)

    monkeypatch.setattr(tracker._client, "log_artifact", flaky)
    warnings: list[str] = []
    reporter = TrackingReporter(NullReporter(), tracker, warnings.append)
    reporter.variant_finished(Unit(V1), "ok", "")  # type: ignore[arg-type]
    reporter.variant_finished(Unit(f"{V1}.r1"), "ok", "")  # type: ignore[arg-type]
    assert warnings == [
        f"mlflow: {V1}.r1 not logged: ConnectionError: store went away; "
        f"`effdl export mlflow {run.root}` logs it later"
    ]
    reporter.finished()
    assert set(ledger(run)["stores"][0]["units"]) == {V1, f"{V1}-t3"}
    # The half-written run was deleted, not left behind as a second copy.
    client = MlflowClient(uri)
    assert set(by_unit(children(client, tracker, ViewType.ACTIVE_ONLY))) == {V1, f"{V1}-t3"}
    assert client.get_run(tracker.ledger.parent() or "").info.status == "FINISHED"

    # The catch-up after the run: the rest is logged, the broken row is named with its cause.
    summary = tracker.log_pending()
    assert (summary.logged, summary.skipped) == (2, 2)
    assert summary.failed == [f"{V1}.r1: ConnectionError: store went away"]

    monkeypatch.undo()
    summary = open_tracker("mlflow", run.root, uri=uri).log_pending()  # `effdl export mlflow`
    assert (summary.logged, summary.skipped, summary.failed) == (1, 4, [])
    assert set(by_unit(children(client, tracker))) == UNITS


def test_a_store_that_keeps_failing_is_given_up_after_three_rows(
    run: RunDir, uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    tracker = open_tracker("mlflow", run.root, uri=uri)
    assert isinstance(tracker, MlflowTracker)
    calls: list[str] = []

    def refused(*args: Any, **kwargs: Any) -> None:
        calls.append(kwargs.get("run_name", ""))
        raise ConnectionError("[Errno 111] Connection refused")

    monkeypatch.setattr(tracker._client, "create_run", refused)
    summary = tracker.log_pending()
    assert (summary.logged, summary.skipped) == (0, 0)
    units = [r.unit for r in _rows.read_rows(run)]
    assert summary.failed == [f"{u}: Connection refused" for u in units[:3]] + [
        f"{u}: not tried (3 failed in a row)" for u in units[3:]
    ]
    assert len(calls) == 3  # each of the 3 rows tried to make the parent run first


def test_a_measure_folder_without_run_json(uri: str, tmp_path: Path) -> None:
    folder = RunDir(tmp_path / "measured")
    folder.root.mkdir()
    record = {"variant": "model_a", "status": "ok", "error": "", "tflite_bytes": 10}
    ResultsStore(folder.results).append(record)
    write_unit(folder, "model_a", [], record)
    _atomic.write_json(folder.artifact("model_a").nodes, [])
    tracker = open_tracker("mlflow", folder.root, uri=uri)
    assert tracker.log_pending().logged == 1
    runs = children(MlflowClient(uri), tracker)
    assert tracker.experiment == "measured" and len(runs) == 1
    assert runs[0].data.metrics == {"tflite_bytes": 10.0}
    assert runs[0].data.tags["effdl.nodes"] == ""
