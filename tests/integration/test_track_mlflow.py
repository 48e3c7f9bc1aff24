"""MLflow tracking of a real tiny run (digits, width 0.125, 2 variants x 2 replicates, train ->
prune -> int8): each replicate's row logged as it finishes, read back with MlflowClient against
results.csv and nodes.json; a rerun logs nothing; added variants are logged alone under the
same parent; `mlflow server` on the same SQLite file serves the runs over HTTP, and a tracker
pointed at the server's URI logs (and uploads artifacts) through it."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from mlflow.tracking import MlflowClient

from effcli.execute import NullReporter, RunSummary, run_plan
from effcli.plan import load_plan
from effcli.results import ResultsStore
from effcli.results.rundir import TRACKING, RunDir
from effcli.track import TrackingReporter, _rows, open_tracker
from tests.integration.helpers import project

pytestmark = pytest.mark.slow

RECIPE: dict[str, Any] = {
    "name": "tracked",
    "extends": "base",
    "seed": 3,
    "replicates": 2,
    "data": {"source": "digits", "max_samples": 200},
    "train": {"epochs": 2, "early_stopping": {"enabled": False}},
    "pipeline": [
        {"stage": "train", "width_multiplier": 0.125},
        {"stage": "prune", "enabled": {"sweep": [False, True]}, "sparsity": 0.5, "epochs": 2},
        {"stage": "quantize", "calibration_samples": 32},
    ],
}


@dataclass
class Tracked:
    folder: Path
    out: Path
    uri: str
    summary: RunSummary
    warnings: list[str]

    def client(self) -> MlflowClient:
        return MlflowClient(self.uri)

    def ledger(self) -> dict[str, Any]:
        entry: dict[str, Any] = json.loads((self.out / TRACKING).read_text())["stores"][0]
        return entry


def tracked_run(folder: Path, doc: dict[str, Any], uri: str) -> tuple[RunSummary, list[str]]:
    """What `effdl run RECIPE --track mlflow` does: open (and check) the store, then run."""
    recipe = folder / f"{doc['name']}.yaml"
    recipe.write_text(yaml.safe_dump(doc, sort_keys=False))
    plan = load_plan(recipe)
    tracker = open_tracker("mlflow", folder / "out", uri=uri)  # experiment: the recipe's name
    warnings: list[str] = []
    reporter = TrackingReporter(NullReporter(), tracker, warnings.append)
    return run_plan(plan, folder / "out", reporter), warnings


@pytest.fixture(scope="module")
def tracked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tracked]:
    folder = project(tmp_path_factory.mktemp("tracked"))
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)  # a SQLite store keeps its artifacts in ./mlruns
        summary, warnings = tracked_run(folder, RECIPE, uri)
        yield Tracked(folder, folder / "out", uri, summary, warnings)


def children(client: MlflowClient, ledger: dict[str, Any]) -> dict[str, Any]:
    runs = client.search_runs(
        [ledger["experiment_id"]], f"tags.mlflow.parentRunId = '{ledger['parent_run_id']}'"
    )
    return {r.data.tags["effdl.unit"]: r for r in runs}


def test_each_replicate_is_a_child_run_matching_results_and_nodes(tracked: Tracked) -> None:
    assert tracked.warnings == []
    assert (tracked.summary.ok, tracked.summary.failed) == (4, 0)
    client, ledger = tracked.client(), tracked.ledger()
    experiment = client.get_experiment(ledger["experiment_id"])
    assert experiment.name == "tracked"
    parent = client.get_run(ledger["parent_run_id"])
    assert parent.info.status == "FINISHED"
    assert parent.data.params["data.max_samples"] == "200"
    runs = children(client, ledger)
    run_dir = RunDir(tracked.out)
    rows = {r.unit: r for r in _rows.read_rows(run_dir)}
    assert set(runs) == set(rows) and len(rows) == 4
    assert {r.replicate for r in rows.values()} == {0, 1}
    plan = json.loads(run_dir.plan.read_text())
    chains = {(v["variant"], v["replicate"]): v["nodes"] for v in plan["variants"]}
    for unit, found in runs.items():
        row = rows[unit]
        assert found.info.status == "FINISHED" and found.data.tags["effdl.status"] == "ok"
        assert found.data.params["prune.enabled"] == row.values["prune.enabled"]
        assert found.data.params["variant"] == row.variant
        assert "replicate" not in found.data.params  # replicates share params
        assert found.data.tags["effdl.replicate"] == str(row.replicate)
        assert found.data.tags["effdl.nodes"] == " ".join(chains[(row.variant, row.replicate)])
        numbers = _rows.metrics(row)
        assert {"tflite_accuracy", "tflite_bytes", "macs", "train_seconds"} <= set(numbers)
        for name, value in numbers.items():
            assert found.data.metrics[name] == pytest.approx(value, rel=1e-12)
        # Curves: every epoch of every training node, step = epoch, as in nodes.json.
        nodes = json.loads(run_dir.artifact(unit).nodes.read_text())
        trained = [m for m in nodes if m.get("history")]
        curve_names = {n for n in found.data.metrics if "/" in n}
        if not trained:  # nodes without histories: then no curve may appear either
            assert curve_names == set()
        for meta in trained:
            for name in ("loss", "val_accuracy"):
                history = client.get_metric_history(found.info.run_id, f"{meta['stage']}/{name}")
                expected = [(e["epoch"], e[name]) for e in meta["history"] if name in e]
                assert [(m.step, m.value) for m in history] == expected and expected
        artifacts = {a.path for a in client.list_artifacts(found.info.run_id)}
        assert {"model.tflite", "layers.json", "recipe.yaml", "nodes.json"} <= artifacts
        assert "model.keras" not in artifacts and "predictions.npy" not in artifacts
        local = client.download_artifacts(found.info.run_id, "model.tflite", str(tracked.folder))
        assert Path(local).read_bytes() == run_dir.artifact(unit).tflite.read_bytes()


def test_a_rerun_logs_nothing_and_new_variants_alone_under_the_same_parent(
    tracked: Tracked,
) -> None:
    client, before = tracked.client(), tracked.ledger()
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(tracked.folder)
        again, warnings = tracked_run(tracked.folder, RECIPE, tracked.uri)
        assert (again.skipped, again.nodes_ran, warnings) == (4, 0, [])
        assert tracked.ledger() == before
        assert len(client.search_runs([before["experiment_id"]])) == 5  # parent + 4
        # Two more variants (calibrated on fewer samples): only their 4 rows are logged.
        grown = json.loads(json.dumps(RECIPE))
        grown["pipeline"][2]["calibration_samples"] = {"sweep": [32, 16]}
        more, warnings = tracked_run(tracked.folder, grown, tracked.uri)
    assert (more.skipped, more.ok, warnings) == (4, 4, [])
    after = tracked.ledger()
    assert after["parent_run_id"] == before["parent_run_id"]
    assert {u: after["units"][u] for u in before["units"]} == before["units"]
    assert len(after["units"]) == 8
    assert set(children(client, after)) == set(after["units"])
    assert len(client.search_runs([before["experiment_id"]])) == 9


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def get_json(url: str, payload: dict[str, Any] | None = None) -> Any:
    data = json.dumps(payload).encode() if payload is not None else None
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


@pytest.fixture
def server(tracked: Tracked) -> Iterator[str]:
    """`mlflow server` on the tracked SQLite file, on a free local port; stopped afterwards."""
    port = free_port()
    mlflow = Path(sys.executable).with_name("mlflow")
    command = [str(mlflow), "server", "--backend-store-uri", tracked.uri]
    command += ["--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    log_path = tracked.folder / "server.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            command,
            cwd=tracked.folder,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # its workers share its process group: stop them all
        )
        try:
            yield wait_for_health(f"http://127.0.0.1:{port}", process, log_path)
        finally:
            signal_group(process, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                signal_group(process, signal.SIGKILL)
                process.wait(timeout=10)


def wait_for_health(address: str, process: subprocess.Popen[bytes], log: Path) -> str:
    """The address once /health answers; fail after 60 s or when the server exits."""
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{address}/health", timeout=2) as response:
                if response.status == 200:
                    return address
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-2000:]
            pytest.fail(f"mlflow server did not come up in 60 s:\n{tail}")
        time.sleep(0.5)


def signal_group(process: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)


def test_the_runs_over_http_and_logging_through_a_server(tracked: Tracked, server: str) -> None:
    ledger = tracked.ledger()
    found = get_json(
        f"{server}/api/2.0/mlflow/runs/search",
        {
            "experiment_ids": [ledger["experiment_id"]],
            "filter": f"tags.mlflow.parentRunId = '{ledger['parent_run_id']}'",
            "max_results": 100,
        },
    )
    expected = children(tracked.client(), ledger)
    assert {r["info"]["run_id"] for r in found["runs"]} == {
        r.info.run_id for r in expected.values()
    }
    some = found["runs"][0]
    metrics = {m["key"]: m["value"] for m in some["data"]["metrics"]}
    unit = {t["key"]: t["value"] for t in some["data"]["tags"]}["effdl.unit"]
    row = next(r for r in ResultsStore(tracked.out / "results.csv").rows() if _unit(r) == unit)
    assert metrics["tflite_bytes"] == float(row["tflite_bytes"])

    # The same run directory logged through the server (another store for the ledger): the
    # artifacts go up through the server's artifact proxy.
    tracker = open_tracker("mlflow", tracked.out, uri=server, experiment="tracked-http")
    summary = tracker.log_pending()
    tracker.close()
    assert (summary.logged, summary.skipped, summary.failed) == (len(expected), 0, [])
    stores = json.loads((tracked.out / TRACKING).read_text())["stores"]
    http = next(s for s in stores if s["uri"] == server)
    run_id = next(iter(http["units"].values()))["run_id"]
    listed = get_json(f"{server}/api/2.0/mlflow/artifacts/list?run_id={run_id}")
    assert "model.tflite" in {f["path"] for f in listed["files"]}
    again = open_tracker("mlflow", tracked.out, uri=server, experiment="tracked-http")
    assert again.log_pending().logged == 0


def _unit(row: dict[str, str]) -> str:
    return _rows.Row(row).unit
