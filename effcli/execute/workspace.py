"""The work done in a run directory: build nodes (or find them cached) and finish variants
(export, measure, write the artifact folder and the results row).

`build`, `finish` and `fail` do the work and return what happened; `record` accounts for an
outcome (counters, progress events) in the process that started the run. An executor decides only
where and in which order the work runs: in this process, it calls both; with workers, each worker
does the work in its own Workspace and the scheduler records the outcomes they send back.
Every file is written atomically (effcli._atomic); the layout is effcli.results.rundir's.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from effcli import _atomic, _tf, environment
from effcli.artifacts import ARTIFACT_KINDS, Artifact, KerasModel, TFLiteModel
from effcli.data.base import DataSplits, load_splits
from effcli.errors import FatalError, one_line
from effcli.execute import memory
from effcli.execute.reporter import NullReporter, Reporter
from effcli.measure.row import TestSet, measure_tflite, save_labels, save_measurement
from effcli.plan import Node, Plan, Variant
from effcli.results import ArtifactDir, ResultsStore, RunDir
from effcli.results.rundir import ALTERNATIVES, KERAS_FILE, META, unit_name
from effcli.stages.base import NodeInfo, StageContext, stages


@dataclass(frozen=True)
class NodeOutcome:
    """What building one node did."""

    key: str
    ok: bool
    cached: bool = False
    seconds: float = 0.0
    error: str = ""


@dataclass(frozen=True)
class VariantOutcome:
    """What finishing (or failing) one variant's replicate wrote: its row's status and error."""

    unit: str  # Variant.unit
    ok: bool
    error: str = ""


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and TensorFlow before a node runs: a model's initial weights must not
    depend on what ran before it in this process (measured: the same recipe reached 98 % alone
    and 15 % after another test had used the global random state)."""
    from effcli._tf import keras

    keras.utils.set_random_seed(seed)


class Workspace:
    """Builds nodes and finishes variants of one plan inside one run directory."""

    def __init__(self, plan: Plan, root: Path, reporter: Reporter | None = None) -> None:
        self.plan = plan
        self.dir = RunDir(root)
        self.store = ResultsStore(self.dir.results)
        self.reporter: Reporter = reporter or NullReporter()
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
        with ExitStack() as stack:
            try:
                stack.enter_context(_atomic.locked(self.dir.run_lock, wait=False))
            except BlockingIOError:
                raise FatalError(
                    f"another effdl run is using {self.dir.root}; wait for it or pass --out"
                ) from None
            self._claim()
            yield
            self._record_timing_floor()

    def _record_timing_floor(self) -> None:
        """run.json: the interpreter's timing floor for this run's input (one reshape, timed
        like every model), next to which latency under a few times it reads as overhead; each
        row's own `latency_floor_ms` is the floor measured where that row was timed."""
        from effcli.measure.floor import floor_record
        from effcli.measure.litert import LiteRTModel

        if not self.dir.artifacts.is_dir():
            return
        for folder in sorted(self.dir.artifacts.iterdir()):
            tflite = ArtifactDir(folder).tflite
            if not tflite.is_file():
                continue
            try:  # a number for the record: it must never cost the run its rows
                shape = [int(d) for d in LiteRTModel(tflite).input_detail["shape"]]
                record = json.loads(self.dir.run_json.read_text())
                record["timing_floor"] = floor_record(shape)
                _atomic.write_json(self.dir.run_json, record)
            except Exception:
                pass
            return

    def _claim(self) -> None:
        _atomic.sweep(self.dir.root, self.dir.cache, self.dir.artifacts)  # we hold the lock
        env = environment.record(_tf.node_threads(), self.plan.deterministic)
        record: dict[str, Any] = {
            "name": self.plan.name,
            "data_key": self.plan.data_key,
            "data": self.plan.data_spec,
            "seed": self.plan.seed,
            "replicates": self.plan.replicates,
            "environment": env,
        }
        if self.dir.run_json.exists():
            old = json.loads(self.dir.run_json.read_text())
            if old.get("data_key") != record["data_key"]:
                raise FatalError(
                    f"{self.dir.root} holds results for other data or seed ({old.get('data')}, seed "
                    f"{old.get('seed')}); their rows would not be comparable: pass --out or delete it"
                )
            # Earlier sessions on other machines (or builds, or threads): the rows mix origins.
            earlier: list[dict[str, Any]] = []
            seen = {env["id"]}
            for other in [old.get("environment"), *old.get("earlier_environments", [])]:
                if isinstance(other, dict) and other.get("id") not in seen:
                    seen.add(other.get("id"))
                    earlier.append(other)
            record["earlier_environments"] = earlier
        _atomic.write_json(self.dir.run_json, record)
        _atomic.write_yaml(self.dir.recipe, self.plan.source.doc)
        _atomic.write_json(self.dir.plan, self.plan.to_json())

    @property
    def data(self) -> DataSplits:
        """The dataset, loaded once; its split and test set are saved for re-evaluation."""
        if self._data is None:
            root = self.plan.source.path.resolve().parent  # relative data paths start here
            self._data = load_splits(self.plan.data_spec, root, self.plan.seed)
            record = {"data": self.plan.data_spec, "test_saved": self.plan.save_test}
            _atomic.write_json(self.dir.split_json, {**record, **self._data.split})
            save_labels(self.dir, self._data.y_test)
            if self.plan.save_test:
                with _atomic.replacing(self.dir.test_npz, ".npz") as tmp:
                    np.savez_compressed(tmp, x=self._data.x_test, y=self._data.y_test)
        return self._data

    # -- nodes ---------------------------------------------------------------------------------
    def node_done(self, key: str) -> bool:
        return self.dir.node_done(key)

    def meta(self, key: str) -> dict[str, Any]:
        return json.loads(self.dir.node_meta(key).read_text())

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

    def build(self, node: Node) -> NodeOutcome:
        """Run the node's stage unless the cache has it; save the result atomically. A failure
        is an outcome, not an exception: the sweep goes on."""
        if self.node_done(node.key):
            return NodeOutcome(node.key, ok=True, cached=True)
        start = time.perf_counter()
        try:
            self._build(node, start)
        except Exception as exc:  # any failure fails the node's variants, with its reason
            return NodeOutcome(node.key, ok=False, error=one_line(exc))
        return NodeOutcome(node.key, ok=True, seconds=time.perf_counter() - start)

    def _build(self, node: Node, start: float) -> None:
        parent = self.artifact(node.parent) if node.parent else None
        stage = stages.get(node.kind)(node.params, node.resolved)
        threads = _tf.configure()  # the same count under every executor: the same numbers
        _tf.set_determinism(node.deterministic)
        curve = LearningCurve()

        def on_epoch(epoch: int, epochs: int, logs: dict[str, float]) -> None:
            curve.add(epoch, logs)
            self.reporter.epoch(node, epoch, epochs, logs)

        ctx = StageContext(
            data=self.data,
            seed=node.seed,
            history=tuple(self._history(node.parent)),
            on_epoch=on_epoch,
            dependency=self._dependency(node),
            node_key=node.key,
            workdir=self.dir.studies,
        )
        seed_everything(node.seed)  # the same node gives the same model in any process
        devices = _tf.gpus()
        exact_peak = memory.reset_peak()
        if devices:
            _tf.reset_gpu_peak()
        with _tf.precision_policy(bool(node.resolved.get("train", {}).get("mixed_precision"))):
            result = stage.run(parent, ctx)
        cost: dict[str, Any] = {
            "train_steps": ctx.cost.steps,
            "train_samples_seen": ctx.cost.samples_seen,
            "peak_rss_bytes": memory.peak_rss_bytes(),
            "peak_rss_measure": "node" if exact_peak else "process lifetime",
            "device": "gpu" if devices else "cpu",
        }
        if devices:
            cost["peak_gpu_bytes"] = _tf.gpu_peak_bytes()
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
            **cost,
            "history": curve.epochs,
            "alternatives": [
                {"name": a.name, "artifact": a.artifact.kind, "metrics": a.metrics, "info": a.info}
                for a in result.alternatives
            ],
            "seconds": time.perf_counter() - start,
            "finished_at": time.time(),
            "seed": node.seed,
            "replicate": node.replicate,
            "tensorflow": {**threads, "op_determinism": node.deterministic, **_tf.build()},
            "environment": environment.record(threads["intra_op_threads"], node.deterministic)[
                "id"
            ],
        }
        final = self.dir.node(node.key)
        with _atomic.folder(final) as tmp:
            result.artifact.save(tmp)
            for alternative in result.alternatives:
                folder = tmp / ALTERNATIVES / alternative.name
                folder.mkdir(parents=True)
                alternative.artifact.save(folder)
            _atomic.write_json(tmp / META, meta)
        _remember_file(result.artifact, final)
        self._memory[node.key] = result.artifact

    def _dependency(self, node: Node) -> Callable[[str], Artifact]:
        def load(key: str) -> Artifact:
            if key not in node.deps or not self.node_done(key):
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
        """What identifies a row: variant id, pipeline, replicate (when the recipe has several;
        one replicate gives exactly the rows of a run without replicates), baseline, knobs."""
        identity: dict[str, Any] = {"branch": variant.branch} if variant.branch else {}
        if self.plan.replicates > 1 or variant.replicate:
            identity.update(replicate=variant.replicate, replicate_seed=variant.replicate_seed)
        if variant.baseline:
            identity["baseline"] = variant.baseline
        label = variant.label or variant.id
        if row_id is not None and row_id != variant.id:  # an alternative: `<label> <name>`
            label = f"{label} {row_id[len(variant.id) + 1 :]}"
        row_id = row_id or variant.id
        return {
            "variant": row_id,
            "label": label,
            **identity,
            "pipeline": variant.pipeline,
            **variant.knobs,
        }

    def fail(self, variant: Variant, reason: str) -> VariantOutcome:
        """Record the variant's replicate as failed, with its reason."""
        self.store.append({**self._base_row(variant), "status": "failed", "error": reason})
        return VariantOutcome(variant.unit, ok=False, error=reason)

    def finish(self, variant: Variant) -> VariantOutcome:
        """Export the leaf, measure it, write the artifact folder and the results row; then the
        same for each alternative the leaf stage kept (e.g. a search's Pareto-optimal trials)."""
        try:
            row = self._measure(variant, self.artifact(variant.leaf), variant.id, {})
        except Exception as exc:
            return self.fail(variant, f"export/measure: {one_line(exc)}")
        self.store.append(row)
        for alternative in self.meta(variant.leaf).get("alternatives", []):
            name = alternative["name"]
            row_id = f"{variant.id}-{name}"
            try:
                folder = self.dir.alternative(variant.leaf, name)
                artifact = ARTIFACT_KINDS[alternative["artifact"]].load(folder)
                extra = {"alternative": name, **alternative.get("metrics", {})}
                row = self._measure(variant, artifact, row_id, extra)
            except Exception as exc:
                reason = f"export/measure: {one_line(exc)}"
                row = {**self._base_row(variant, row_id), "status": "failed", "error": reason}
            self.store.append(row)
        return VariantOutcome(variant.unit, ok=True)

    def _measure(
        self, variant: Variant, artifact: Artifact, row_id: str, extra: dict[str, Any]
    ) -> dict[str, Any]:
        from effcli import deploy

        deployable = artifact.to_tflite()
        metas = [self.meta(key) for key in variant.nodes]
        data = self.data
        folder_name = unit_name(row_id, variant.replicate)
        with _atomic.folder(self.dir.artifact(folder_name).path) as tmp:
            folder = ArtifactDir(tmp)
            deployable.save(tmp)
            # Labels, preprocessing and signature names go into the file before it is measured,
            # so every footprint number describes the file that ships (outputs checked equal).
            split = {"data": self.plan.data_spec, **data.split}
            converted = folder.tflite.stat().st_size
            deployed = deploy.prepare_tflite(folder.tflite, split, check=data.x_test[:16])
            _atomic.write_yaml(folder.recipe, dict(variant.doc))
            _atomic.write_json(folder.nodes, metas)
            source = deployable.source.model if deployable.source is not None else None
            measured = measure_tflite(
                folder.tflite,
                TestSet(data.x_test, data.y_test),
                keras_model=source,
                settings=self.plan.measure,
            )
            metrics = dict(measured.metrics)
            metrics["train_seconds"] = sum(float(m.get("train_seconds", 0.0)) for m in metas)
            metrics.update(training_cost(metas))
            for meta in metas:
                metrics.update(meta.get("metrics", {}))
            metrics.update(extra)
            # What the embedded labels and preprocessing add to the converter's file (0 when
            # not embedded): tflite_bytes minus this is what stage-side measurements saw.
            metrics["metadata_bytes"] = metrics["tflite_bytes"] - converted
            base = self._base_row(variant, row_id)
            save_measurement(folder, measured, {**base, **metrics})
            deploy.write_deploy_files(
                folder, deployed, split=split, test_labels=data.y_test, run=self.plan.name
            )
        return {**base, "status": "ok", "error": "", **metrics}

    # -- accounting (in the process that started the run) --------------------------------------
    def started(self, node: Node) -> None:
        self.reporter.node_started(node)

    def record(self, outcome: NodeOutcome | VariantOutcome) -> None:
        """Count an outcome and report it."""
        if isinstance(outcome, NodeOutcome):
            if not outcome.ok:
                return  # reported through the variants it fails
            node = self.plan.nodes[outcome.key]
            if outcome.cached:
                self.cached += 1
            else:
                self.ran += 1
            self.reporter.node_finished(node, cached=outcome.cached, seconds=outcome.seconds)
            return
        variant = self.plan.variant(outcome.unit)
        if outcome.ok:
            self.ok += 1
        else:
            self.failed += 1
        self.reporter.variant_finished(variant, "ok" if outcome.ok else "failed", outcome.error)


def training_cost(metas: list[dict[str, Any]]) -> dict[str, int]:
    """What producing the variant cost, over its chain (a cached node keeps what it recorded):
    steps and samples summed; peak memory the largest of any node's, which is what the chain
    needs. Left out when a node was built before effdl recorded it (not guessed)."""
    cost: dict[str, int] = {}
    if all("train_steps" in m for m in metas):
        cost["train_steps"] = sum(int(m["train_steps"]) for m in metas)
        cost["train_samples_seen"] = sum(int(m["train_samples_seen"]) for m in metas)
        cost["train_peak_rss_bytes"] = max(int(m["peak_rss_bytes"]) for m in metas)
    if any("peak_gpu_bytes" in m for m in metas):
        cost["train_peak_gpu_bytes"] = max(int(m.get("peak_gpu_bytes", 0)) for m in metas)
    return cost


class LearningCurve:
    """Every epoch a node trained, in order: its Keras logs (loss, accuracy, val_loss,
    val_accuracy, learning_rate, epoch_seconds, ...), the 1-based `epoch` and `fit`, the index of
    the Keras fit call it belongs to (a search trains one model per trial, a node may fine-tune
    twice): epoch 1 starts a new fit."""

    def __init__(self) -> None:
        self.epochs: list[dict[str, float | int]] = []
        self._fit = -1

    def add(self, epoch: int, logs: dict[str, float]) -> None:
        if epoch == 1 or self._fit < 0:
            self._fit += 1
        self.epochs.append({"fit": self._fit, "epoch": epoch, **_finite(logs)})


def _finite(logs: dict[str, float]) -> dict[str, float]:
    """JSON has no NaN: a value Keras could not compute is left out."""
    return {k: float(v) for k, v in logs.items() if np.isfinite(v)}


def _remember_file(artifact: Artifact, folder: Path) -> None:
    """Note where the Keras model just cached now lives, so later saves (the variant's artifact
    folder, a TFLite child keeping it as its source) link the file instead of re-serializing."""
    model = artifact.source if isinstance(artifact, TFLiteModel) else artifact
    if isinstance(model, KerasModel) and model.file is None and (folder / KERAS_FILE).is_file():
        model.file = folder / KERAS_FILE
