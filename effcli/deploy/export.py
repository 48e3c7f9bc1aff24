"""`effdl export RUN_DIR VARIANT --to DIR`: copy one model's deployable folder out of a run.

The folder gets model.tflite, labels.txt, model_card.md and the records of how it was made and
measured (recipe.yaml, metrics.json, layers.json, nodes.json; model.keras on request). With
replicates, the card is written again with the interval over the variant's replicates (the
two-way bootstrap `effdl frontier` reports), since one replicate alone says little of the recipe.
"""

from __future__ import annotations

import csv
import difflib
import json
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from effcli import _atomic
from effcli.deploy._artifact import write_deploy_files
from effcli.deploy._card import ReplicateAccuracy
from effcli.errors import UsageError
from effcli.results.rundir import (
    KERAS_FILE,
    LAYERS,
    METRICS,
    NODES,
    RECIPE,
    RESULTS,
    TFLITE_FILE,
    ArtifactDir,
    RunDir,
    unit_name,
)

COPIED = (TFLITE_FILE, RECIPE, METRICS, LAYERS, NODES)  # labels.txt and the card are rewritten
QUALITY = "tflite_accuracy"


def _rows(run: RunDir) -> list[dict[str, str]]:
    with open(run.results, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _replicate(row: dict[str, str]) -> int:
    try:
        return int(float(row.get("replicate") or 0))
    except ValueError:
        return 0


def _describe(variant: str, labels: dict[str, str]) -> str:
    label = labels.get(variant)
    return f"{variant} ({label})" if label else variant


def resolve_variant(rows: list[dict[str, str]], wanted: str, where: Path) -> str:
    """The variant id `wanted` names: an id, a row label, or a unique prefix of an id."""
    ids = list(dict.fromkeys(r["variant"] for r in rows if r.get("variant")))
    labels = {r["variant"]: r["label"] for r in rows if r.get("label")}
    if wanted in ids:
        return wanted
    by_label = sorted({v for v, label in labels.items() if label == wanted}) or sorted(
        {v for v, label in labels.items() if label.casefold() == wanted.casefold()}
    )
    if len(by_label) == 1:
        return by_label[0]
    prefixed = [v for v in ids if v.startswith(wanted)] if wanted else []
    if len(prefixed) == 1:
        return prefixed[0]
    matches = by_label or prefixed
    if matches:
        shown = ", ".join(_describe(v, labels) for v in matches[:8])
        more = f" and {len(matches) - 8} more" if len(matches) > 8 else ""
        raise UsageError(
            f"variant '{wanted}' is ambiguous in {where}: {shown}{more}; give a longer id prefix"
        )
    names = ids + sorted(set(labels.values()))
    close = difflib.get_close_matches(wanted, names, n=5, cutoff=0.5)
    close += [n for n in names if wanted.casefold() in n.casefold() and n not in close][:5]
    hint = (
        f"close matches: {', '.join(close[:5])}"
        if close
        else f"its variants: {', '.join(_describe(v, labels) for v in ids[:5])}"
        + (", ..." if len(ids) > 5 else "")
    )
    raise UsageError(f"no variant '{wanted}' in {where}; {hint}")


def _replicate_accuracy(
    run: RunDir, variant: str, rows: list[dict[str, str]]
) -> ReplicateAccuracy | None:
    """tflite_accuracy over the variant's ok replicates, as `effdl frontier` computes it:
    the two-way bootstrap over test samples and replicates from each replicate's predictions
    (a Student-t interval over the replicate accuracies when predictions are missing)."""
    import pandas as pd

    from effcli.frontier.replicates import Uncertainty

    ok = [r for r in rows if r["variant"] == variant and r.get("status") == "ok" and r.get(QUALITY)]
    if len({_replicate(r) for r in ok}) < 2:
        return None
    frame = pd.DataFrame(
        {
            "run": "run",
            "variant": variant,
            "replicate": [_replicate(r) for r in ok],
            QUALITY: [float(r[QUALITY]) for r in ok],
        }
    )
    uncertainty = Uncertainty(frame, QUALITY, {"run": run.root})
    values = tuple(float(v) for v in frame.sort_values("replicate")[QUALITY])
    estimate = uncertainty.estimate(("run", variant))
    if estimate is not None:
        bounds = (estimate.mean, estimate.low, estimate.high, estimate.n_replicates)
        return ReplicateAccuracy(*bounds, uncertainty.method, values)
    from effcli.frontier.stats import replicate_interval

    low, high = replicate_interval(values)
    method = "a 95 % Student-t interval over the replicate accuracies (no per-sample predictions)"
    return ReplicateAccuracy(float(np.mean(values)), low, high, len(values), method, values)


def _split(run: RunDir) -> dict[str, Any] | None:
    return json.loads(run.split_json.read_text()) if run.split_json.is_file() else None


def export_model(
    run_dir: Path,
    variant: str,
    to: Path,
    replicate: int | None = None,
    *,
    include_keras: bool = False,
) -> Path:
    """Copy one model folder of the run at `run_dir` to `to` (which must not exist or be
    empty) and return `to`. `variant` is a variant id, a unique prefix of one, a row label or
    an artifact folder's name (`<id>.r<k>`); without `replicate`, replicate 0 is taken. With
    replicates, the card gets the interval over all of them."""
    run_dir, to = Path(run_dir), Path(to)
    run = RunDir(run_dir)
    if not run_dir.is_dir():
        raise UsageError(f"{run_dir}: no such run directory")
    if not run.results.is_file():
        raise UsageError(f"{run_dir}: no {RESULTS}; give a folder 'effdl run' wrote")
    if to.exists() and (not to.is_dir() or any(to.iterdir())):
        raise UsageError(f"--to {to}: already exists and is not empty; give a new folder")
    rows = _rows(run)
    unit = re.fullmatch(r"(.+)\.r(\d+)", variant)  # an artifact folder's name: <id>.r<k>
    if unit is not None and replicate is None and unit.group(1) in {r["variant"] for r in rows}:
        variant, replicate = unit.group(1), int(unit.group(2))
    row_id = resolve_variant(rows, variant, run_dir)
    ok = [r for r in rows if r["variant"] == row_id and r.get("status") == "ok"]
    if not ok:
        errors = [r.get("error", "") for r in rows if r["variant"] == row_id]
        raise UsageError(f"variant {row_id} has no exported model: it failed ({errors[0]})")
    replicates = sorted({_replicate(r) for r in ok})
    chosen = replicate if replicate is not None else (0 if 0 in replicates else replicates[0])
    if chosen not in replicates:
        shown = ", ".join(str(r) for r in replicates)
        raise UsageError(f"variant {row_id} has no replicate {chosen}; its replicates: {shown}")
    source = run.artifact(unit_name(row_id, chosen))
    if not source.tflite.is_file():
        raise UsageError(f"{source.path}: no {TFLITE_FILE}; rerun 'effdl run' to export it")
    if include_keras and not source.keras.is_file():
        raise UsageError(f"{source.path}: no {KERAS_FILE} (this model has no Keras form)")
    row = next(r for r in ok if _replicate(r) == chosen)
    run_json = json.loads(run.run_json.read_text()) if run.run_json.is_file() else {}
    labels = np.load(run.labels, allow_pickle=False) if run.labels.is_file() else None
    with _atomic.folder(to) as tmp:
        for name in (*COPIED, *((KERAS_FILE,) if include_keras else ())):
            if (source.path / name).is_file():
                shutil.copyfile(source.path / name, tmp / name)
        write_deploy_files(
            ArtifactDir(tmp),
            split=_split(run),
            test_labels=labels,
            label=row.get("label", ""),
            run=str(run_json.get("name", "")),
            source=source,
            replicates=_replicate_accuracy(run, row_id, rows),
        )
    return to
