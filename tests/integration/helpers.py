"""Shared by the integration tests: a silent reporter, random splits, running a recipe document."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from effcli.data.base import DataSplits
from effcli.execute import NullReporter, run_plan
from effcli.plan import load_plan

ROOT = Path(__file__).resolve().parents[2]


def random_splits(shape: tuple[int, ...], classes: int = 10, kind: str = "image") -> DataSplits:
    """Seeded random train/val/test arrays (64/32/32) for stage-level tests."""
    rng = np.random.default_rng(0)

    def split(n: int) -> tuple[np.ndarray, np.ndarray]:
        return rng.normal(size=(n, *shape)).astype(np.float32), rng.integers(0, classes, n)

    (xt, yt), (xv, yv), (xs, ys) = split(64), split(32), split(32)
    return DataSplits(xt, yt, xv, yv, xs, ys, num_classes=classes, kind=kind)


def project(folder: Path) -> Path:
    """A project folder with the repository's configs/ (so recipes can `extends: base`)."""
    shutil.copytree(ROOT / "configs", folder / "configs")
    return folder


def run_doc(folder: Path, name: str, doc: dict[str, Any]) -> dict[str, dict[str, str]]:
    """Write `doc` as <name>.yaml, run it into folder/out, return its variants' rows by id."""
    recipe = folder / f"{name}.yaml"
    recipe.write_text(yaml.safe_dump(doc, sort_keys=False))
    plan = load_plan(recipe)
    run_plan(plan, folder / "out", NullReporter())
    with open(folder / "out" / "results.csv", newline="") as handle:
        rows = {r["variant"]: r for r in csv.DictReader(handle)}
    return {v.id: rows[v.id] for v in plan.variants}
