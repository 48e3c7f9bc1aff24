"""What a tracker logs, read from a run directory alone (results.csv, artifacts/, plan.json,
cache metas, run.json): plain data, no tracking library, so it is tested without one.

A row's *unit* is its artifact folder's name (rundir.unit_name): the variant id, `<id>.r<k>` for
replicate k, `<id>-<alternative>[.r<k>]` for a search's other kept models. Each row is one
tracked run: params are what the row *is* (knobs, pipeline, label, variant, branch, alternative;
not the replicate, so replicates of one variant share their params and group together), metrics
what was measured, histories the per-epoch logs of each training node.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from effcli.results import ResultsStore, RunDir
from effcli.results.rundir import (
    LABELS_TXT,
    LAYERS,
    METRICS,
    MODEL_CARD,
    NODES,
    RECIPE,
    TFLITE_FILE,
    unit_name,
)
from effcli.results.store import FIXED_COLUMNS, IDENTITY_COLUMNS, row_key

# Logged as artifacts when present: what a person downloads to deploy or to check a row.
# (model.keras and predictions.npy stay in the run directory: large, and re-derivable there.)
ARTIFACT_FILES = (TFLITE_FILE, LAYERS, RECIPE, NODES, METRICS, LABELS_TXT, MODEL_CARD)
# Columns that are neither knobs nor measurements.
_NOT_METRICS = {*FIXED_COLUMNS, *IDENTITY_COLUMNS, "label", "alternative"}
_PARAM_COLUMNS = ("pipeline", "label", "variant", "branch", "baseline", "alternative")
_BAD_NAME = re.compile(r"[^\w./\- ]")  # what MLflow (and most stores) refuse in a key


@dataclass(frozen=True)
class Row:
    """One results.csv row and where it belongs."""

    values: dict[str, str]

    @property
    def variant(self) -> str:
        return self.values["variant"]

    @property
    def replicate(self) -> int:
        return row_key(self.values)[1]

    @property
    def has_replicate(self) -> bool:
        """Whether the run has replicates (the column is empty with one)."""
        return self.values.get("replicate", "") != ""

    @property
    def alternative(self) -> str:
        return self.values.get("alternative", "")

    @property
    def unit(self) -> str:
        return unit_name(self.variant, self.replicate)

    @property
    def owner_variant(self) -> str:
        """The variant whose leaf kept this row: its own id, or an alternative's variant's."""
        suffix = f"-{self.alternative}"
        if self.alternative and self.variant.endswith(suffix):
            return self.variant[: -len(suffix)]
        return self.variant

    @property
    def owner(self) -> str:
        """The unit (Variant.unit) whose finishing wrote this row."""
        return unit_name(self.owner_variant, self.replicate)

    @property
    def status(self) -> str:
        return self.values.get("status", "")

    @property
    def error(self) -> str:
        return self.values.get("error", "")

    @property
    def name(self) -> str:
        """The tracked run's display name: the readable label (else the id), `#k` per replicate."""
        base = self.values.get("label") or self.variant
        if self.alternative and self.values.get("label"):
            base = f"{base} {self.alternative}"
        return f"{base} #{self.replicate}" if self.has_replicate else base

    @property
    def digest(self) -> str:
        """What the row holds (empty cells left out: adding a column elsewhere rewrites the CSV
        with empty cells, which must not count as a change; a retried row does)."""
        filled = {k: v for k, v in self.values.items() if v not in ("", None)}
        text = json.dumps(filled, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def read_rows(run: RunDir) -> list[Row]:
    """Every row of results.csv, in file order."""
    return [Row(values) for values in ResultsStore(run.results).rows()]


def key(name: str) -> str:
    """A param/metric key every store accepts: odd characters become `_`."""
    return _BAD_NAME.sub("_", name).strip("/") or "_"


def number(value: Any) -> float | None:
    """A finite number, else None (empty cells, text, booleans, NaN)."""
    if isinstance(value, bool) or value is None or value == "":
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def params(row: Row) -> dict[str, str]:
    """The knobs (columns with a dot) and the identity of the row; empty cells left out."""
    out = {c: row.values[c] for c in _PARAM_COLUMNS if row.values.get(c)}
    out.update({c: v for c, v in row.values.items() if "." in c and c not in _NOT_METRICS and v})
    return {key(k): v for k, v in out.items()}


def metrics(row: Row) -> dict[str, float]:
    """Every numeric measured column (not the knobs, not the identity columns)."""
    out: dict[str, float] = {}
    for column, value in row.values.items():
        if column in _NOT_METRICS or "." in column:
            continue
        found = number(value)
        if found is not None:
            out[key(column)] = found
    return out


def chain(run: RunDir, row: Row) -> list[dict[str, Any]]:
    """The metas of the nodes that made the row, root first: its artifact folder's nodes.json;
    for a row without one (failed), the nodes of its plan that finished, from the cache."""
    nodes_json = run.artifact(row.unit).nodes
    if nodes_json.is_file():
        metas = json.loads(nodes_json.read_text(encoding="utf-8"))
        return [m for m in metas if isinstance(m, dict)]
    out = []
    for node in plan_nodes(run, row):
        if run.node_done(node):
            out.append(json.loads(run.node_meta(node).read_text(encoding="utf-8")))
    return out


def plan_nodes(run: RunDir, row: Row) -> list[str]:
    """The node keys of the row's variant replicate in plan.json ([] without one)."""
    if not run.plan.is_file():
        return []
    plan = json.loads(run.plan.read_text(encoding="utf-8"))
    for variant in plan.get("variants", []):
        if variant.get("variant") == row.owner_variant and variant.get("replicate", 0) == (
            row.replicate
        ):
            return [str(k) for k in variant.get("nodes", [])]
    return []


def node_keys(run: RunDir, row: Row, metas: list[dict[str, Any]]) -> list[str]:
    """The chain's node keys: from plan.json when the run has one, else from the metas."""
    return plan_nodes(run, row) or [str(m["key"]) for m in metas if m.get("key")]


def histories(metas: list[dict[str, Any]]) -> dict[str, list[tuple[int, float]]]:
    """Per-epoch curves of every training node: `<stage>/<metric>` -> [(epoch, value)].

    A stage kind that appears twice in the chain is numbered like a knob (`prune`, `prune2`).
    A node with several fits (a tune stage's trials, each its own Keras fit) logs every fit under
    `<stage>/fit<i>/<metric>`: the history does not say which fit made the kept model, and
    finding out would need knowledge of that stage here; all fits also let trials be compared."""
    curves: dict[str, list[tuple[int, float]]] = {}
    seen: dict[str, int] = {}
    for meta in metas:
        stage = str(meta.get("stage", "node"))
        seen[stage] = seen.get(stage, 0) + 1
        prefix = stage if seen[stage] == 1 else f"{stage}{seen[stage]}"
        epochs = [e for e in meta.get("history") or [] if isinstance(e, dict)]
        fits = {e.get("fit", 0) for e in epochs}
        for position, epoch in enumerate(epochs, start=1):
            step = epoch.get("epoch", position)
            head = f"{prefix}/fit{epoch.get('fit', 0)}" if len(fits) > 1 else prefix
            for name, value in epoch.items():
                found = number(value)
                if name in ("fit", "epoch") or found is None:
                    continue
                curves.setdefault(key(f"{head}/{name}"), []).append((int(step), found))
    return curves


def artifact_files(run: RunDir, row: Row) -> list[Path]:
    """The files of the row's artifact folder that are logged (none for a failed row)."""
    folder = run.artifact(row.unit).path
    return [folder / name for name in ARTIFACT_FILES if (folder / name).is_file()]


def run_record(run: RunDir) -> dict[str, Any]:
    """run.json ({} for an `effdl measure --out` folder)."""
    if not run.run_json.is_file():
        return {}
    data = json.loads(run.run_json.read_text(encoding="utf-8"))
    return data if isinstance(data, dict) else {}


def experiment_name(run: RunDir) -> str:
    """The recipe's name (run.json), else the folder's name."""
    return str(run_record(run).get("name") or run.root.resolve().name)


def flatten(prefix: str, value: Any) -> dict[str, str]:
    """{"data": {"source": "digits"}} -> {"data.source": "digits"} (params of the parent run)."""
    if isinstance(value, dict):
        out: dict[str, str] = {}
        for k, v in value.items():
            out.update(flatten(f"{prefix}.{k}" if prefix else str(k), v))
        return out
    if value is None or value == "":
        return {}
    text = json.dumps(value) if isinstance(value, list) else str(value)
    return {key(prefix): text}
