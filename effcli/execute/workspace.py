"""The run directory and the work done in it: build nodes (or load them from the cache), finish
variants (export, measure, write artifacts and the results row).

Layout of a run directory:
  results.csv                 one row per variant
  recipe.yaml, plan.json      the merged recipe and the plan that ran
  split.json, test.npz        how the data was split (and normalized); the exact preprocessed test
                              inputs/labels (not with data.save_test: false)
  cache/<node key>/           a finished node: meta.json + its artifact
  artifacts/<variant>/        model.tflite (+ model.keras), recipe.yaml, metrics.json, nodes.json,
                              layers.json (per-layer weights, sparsity, unique values, MACs)
Everything is written to a temporary name and renamed into place, so a killed run never leaves a
half-written file that a rerun would take as finished.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from effcli.artifacts import (
    ARTIFACT_KINDS,
    KERAS_FILE,
    TFLITE_FILE,
    Artifact,
    KerasModel,
    TFLiteModel,
)
from effcli.data.base import DataSplits, load_splits
from effcli.errors import EffdlError, FatalError
from effcli.execute.base import Reporter
from effcli.plan import Node, Plan, Variant
from effcli.results import ResultsStore
from effcli.stages.base import NodeInfo, StageContext, stages


def one_line(exc: BaseException) -> str:
    """An exception as one short line for the results CSV."""
    text = " ".join(str(exc).split())
    if not isinstance(exc, EffdlError):  # our own errors are already phrased for the user
        text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return text[:500]


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and TensorFlow before a node runs: a model's initial weights must not
    depend on what ran before it in this process (measured: the same recipe reached 98 % alone
    and 15 % after another test had used the global random state)."""
    from effcli._tf import keras

    keras.utils.set_random_seed(seed)


def _write_json(path: Path, payload: Any) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n")
    os.replace(tmp, path)


ALTERNATIVES = "alternatives"  # cache/<key>/alternatives/<name>/: a stage's other kept outputs


class RunDir:
    """Paths inside one run directory."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.results = self.root / "results.csv"
        self.cache = self.root / "cache"
        self.artifacts = self.root / "artifacts"
        self.test_npz = self.root / "test.npz"
        self.split_json = self.root / "split.json"
        self.run_json = self.root / "run.json"
        self.studies = self.root / "studies"  # searches' state (Optuna SQLite), kept across reruns

    def node(self, key: str) -> Path:
        return self.cache / key

    def node_done(self, key: str) -> bool:
        return (self.node(key) / "meta.json").is_file()

    def artifact(self, variant_id: str) -> Path:
        return self.artifacts / variant_id


class Workspace:
    """Builds nodes and finishes variants of one plan inside one run directory."""

    def __init__(self, plan: Plan, root: Path, reporter: Reporter) -> None:
        self.plan = plan
        self.dir = RunDir(root)
        self.store = ResultsStore(self.dir.results)
        self.reporter = reporter
        self._data: DataSplits | None = None
        self._memory: dict[str, Artifact] = {}
        self.ran = 0
        self.cached = 0
        self.ok = 0
        self.failed = 0

    # -- run directory -------------------------------------------------------------------------
    @contextmanager
    def session(self) -> Iterator[None]:
        """Hold the run lock, check the directory belongs to this data, write recipe and plan."""
        self.dir.root.mkdir(parents=True, exist_ok=True)
        with open(self.dir.root / ".run.lock", "a") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise FatalError(
                    f"another effdl run is using {self.dir.root}; wait for it or pass --out"
                ) from None
            self._claim()
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _sweep_temporaries(self) -> None:
        """Remove half-written files of a killed run (safe: we hold the run lock)."""
        for folder in (self.dir.root, self.dir.cache, self.dir.artifacts):
            for leftover in folder.glob(".*.tmp*") if folder.is_dir() else ():
                if leftover.is_dir():
                    shutil.rmtree(leftover, ignore_errors=True)
                else:
                    leftover.unlink(missing_ok=True)

    def _claim(self) -> None:
        self._sweep_temporaries()
        record = {
            "name": self.plan.name,
            "data_key": self.plan.data_key,
            "data": self.plan.data_spec,
            "seed": self.plan.seed,
        }
        if self.dir.run_json.exists():
            old = json.loads(self.dir.run_json.read_text())
            if old.get("data_key") != record["data_key"]:
                raise FatalError(
                    f"{self.dir.root} holds results for other data or seed ({old.get('data')}, seed "
                    f"{old.get('seed')}); their rows would not be comparable: pass --out or delete it"
                )
        _write_json(self.dir.run_json, record)
        tmp = self.dir.root / f".recipe.yaml.{os.getpid()}.tmp"
        tmp.write_text(yaml.safe_dump(self.plan.source.doc, sort_keys=False))
        os.replace(tmp, self.dir.root / "recipe.yaml")
        _write_json(self.dir.root / "plan.json", self.plan.to_json())

    @property
    def data(self) -> DataSplits:
        """The dataset, loaded once; its split and test set are saved for re-evaluation."""
        if self._data is None:
            root = self.plan.source.path.resolve().parent  # relative data paths start here
            self._data = load_splits(self.plan.data_spec, root, self.plan.seed)
            record = {"data": self.plan.data_spec, "test_saved": self.plan.save_test}
            _write_json(self.dir.split_json, {**record, **self._data.split})
            if self.plan.save_test:
                tmp = self.dir.root / f".test.{os.getpid()}.tmp.npz"
                np.savez_compressed(tmp, x=self._data.x_test, y=self._data.y_test)
                os.replace(tmp, self.dir.test_npz)
        return self._data

    # -- nodes ---------------------------------------------------------------------------------
    def meta(self, key: str) -> dict[str, Any]:
        return json.loads((self.dir.node(key) / "meta.json").read_text())

    def artifact(self, key: str) -> Artifact:
        if key not in self._memory:
            kind = self.meta(key)["artifact"]
            self._memory[key] = ARTIFACT_KINDS[kind].load(self.dir.node(key))
        return self._memory[key]

    def release(self, key: str) -> None:
        self._memory.pop(key, None)

    def forget(self) -> None:
        """Drop every model held in memory (a worker between tasks)."""
        self._memory.clear()

    def build(self, node: Node) -> None:
        """Run the node's stage unless the cache has it; save the result atomically."""
        self.reporter.node_started(node)
        if self.dir.node_done(node.key):
            self.cached += 1
            self.reporter.node_finished(node, cached=True, seconds=0.0)
            return
        start = time.perf_counter()
        parent = self.artifact(node.parent) if node.parent else None
        history = tuple(self._history(node.parent))
        stage = stages.get(node.kind)(node.params, node.resolved)
        ctx = StageContext(
            data=self.data,
            seed=self.plan.seed,
            history=history,
            on_epoch=lambda epoch, epochs, logs: self.reporter.epoch(node, epoch, epochs, logs),
            dependency=self._dependency(node),
            node_key=node.key,
            workdir=self.dir.studies,
        )
        seed_everything(self.plan.seed)  # the same node gives the same model in any process
        result = stage.run(parent, ctx)
        meta = {
            "key": node.key,
            "stage": node.kind,
            "label": node.label,
            "parent": node.parent,
            "resolved": node.resolved,
            "artifact": result.artifact.kind,
            "metrics": result.metrics,
            "info": result.info,
            "train_seconds": result.train_seconds,
            "alternatives": [
                {
                    "name": a.name,
                    "artifact": a.artifact.kind,
                    "metrics": a.metrics,
                    "info": a.info,
                }
                for a in result.alternatives
            ],
            "seconds": time.perf_counter() - start,
            "finished_at": time.time(),
        }
        final = self.dir.node(node.key)
        tmp = self.dir.cache / f".{node.key}.{os.getpid()}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        result.artifact.save(tmp)
        for alternative in result.alternatives:
            folder = tmp / ALTERNATIVES / alternative.name
            folder.mkdir(parents=True)
            alternative.artifact.save(folder)
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True, default=str))
        if final.exists():  # a stale, unfinished folder: replace it
            shutil.rmtree(final)
        os.replace(tmp, final)
        _remember_file(result.artifact, final)
        self._memory[node.key] = result.artifact
        self.ran += 1
        self.reporter.node_finished(node, cached=False, seconds=meta["seconds"])

    def _dependency(self, node: Node) -> Any:
        def load(key: str) -> Artifact:
            if key not in node.deps or not self.dir.node_done(key):
                raise LookupError(f"node {key[:12]} is not a finished dependency of {node.short}")
            return self.artifact(key)

        return load

    def _history(self, key: str | None) -> list[NodeInfo]:
        chain: list[NodeInfo] = []
        while key is not None:
            meta = self.meta(key)
            chain.insert(
                0, NodeInfo(kind=meta["stage"], resolved=meta["resolved"], info=meta["info"])
            )
            key = meta["parent"]
        return chain

    # -- variants ------------------------------------------------------------------------------
    def _base_row(self, variant: Variant, row_id: str | None = None) -> dict[str, Any]:
        branch = {"branch": variant.branch} if variant.branch else {}
        row_id = row_id or variant.id
        return {"variant": row_id, **branch, "pipeline": variant.pipeline, **variant.knobs}

    def fail(self, variant: Variant, reason: str) -> None:
        self.store.append({**self._base_row(variant), "status": "failed", "error": reason})
        self.failed += 1
        self.reporter.variant_finished(variant, "failed", reason)

    def finish(self, variant: Variant) -> None:
        """Export the leaf, measure it, write the artifact folder and the results row; then the
        same for each alternative the leaf stage kept (e.g. a search's Pareto-optimal trials)."""
        try:
            row = self._measure(variant, self.artifact(variant.leaf), variant.id, {})
        except Exception as exc:
            self.fail(variant, f"export/measure: {one_line(exc)}")
            return
        self.store.append(row)
        self.ok += 1
        self.reporter.variant_finished(variant, "ok", "")
        for alternative in self.meta(variant.leaf).get("alternatives", []):
            name = alternative["name"]
            folder = self.dir.node(variant.leaf) / ALTERNATIVES / name
            row_id = f"{variant.id}-{name}"
            try:
                artifact = ARTIFACT_KINDS[alternative["artifact"]].load(folder)
                extra = {"alternative": name, **alternative.get("metrics", {})}
                row = self._measure(variant, artifact, row_id, extra)
            except Exception as exc:
                reason = f"export/measure: {one_line(exc)}"
                self.store.append(
                    {**self._base_row(variant, row_id), "status": "failed", "error": reason}
                )
                continue
            self.store.append(row)

    def _measure(
        self, variant: Variant, artifact: Artifact, row_id: str, extra: dict[str, Any]
    ) -> dict[str, Any]:
        from effcli.measure.accuracy import keras_accuracy
        from effcli.measure.flatbuffer import model_stats
        from effcli.measure.footprint import gzip_bytes, tflite_bytes
        from effcli.measure.litert import LiteRTModel

        deployable = artifact.to_tflite()
        metas = [self.meta(key) for key in variant.nodes]
        final = self.dir.artifact(row_id)
        tmp = self.dir.artifacts / f".{row_id}.{os.getpid()}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        deployable.save(tmp)
        doc = dict(variant.doc)
        (tmp / "recipe.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
        (tmp / "nodes.json").write_text(json.dumps(metas, indent=2, sort_keys=True, default=str))

        data = self.data
        tflite_path = tmp / TFLITE_FILE
        runtime = LiteRTModel(tflite_path, num_threads=1)
        p50, p95 = runtime.latency_ms(data.x_test[0])
        metrics: dict[str, Any] = {
            "tflite_accuracy": runtime.accuracy(data.x_test, data.y_test),
            "tflite_bytes": tflite_bytes(tflite_path),
            "gzip_bytes": gzip_bytes(tflite_path),
            "latency_ms_p50": p50,
            "latency_ms_p95": p95,
            "train_seconds": sum(float(m.get("train_seconds", 0.0)) for m in metas),
        }
        # Weights, sparsity, unique values, MACs and memory come from the deployed file itself.
        stats = model_stats(deployable.content)
        metrics.update(stats.metrics())
        _write_json(tmp / "layers.json", stats.to_json())
        if deployable.source is not None:
            metrics["accuracy"] = keras_accuracy(deployable.source.model, data.x_test, data.y_test)
        for meta in metas:
            metrics.update(meta.get("metrics", {}))
        metrics.update(extra)
        _write_json(tmp / "metrics.json", {"variant": row_id, **variant.knobs, **metrics})
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        return {**self._base_row(variant, row_id), "status": "ok", "error": "", **metrics}


def _remember_file(artifact: Artifact, folder: Path) -> None:
    """Note where the Keras model just cached now lives, so later saves (the variant's artifact
    folder, a TFLite child keeping it as its source) link the file instead of re-serializing."""
    model = artifact.source if isinstance(artifact, TFLiteModel) else artifact
    if isinstance(model, KerasModel) and model.file is None and (folder / KERAS_FILE).is_file():
        model.file = folder / KERAS_FILE
