"""Replicates -> variants: the rows of one variant (within a run) become one row of means, and
its quality gets an interval from the per-sample predictions each replicate's artifact keeps.

The interval of the headline quality (`tflite_accuracy`: the exported model on the test split)
is a two-way bootstrap over test samples and replicates (stats.py), paired across variants that
share a test set. A quality column without per-sample predictions (the Keras `accuracy`, a
stage's metric) gets a Student-t interval over its replicates, none with one replicate. Rows of
runs made before predictions were kept (no predictions.npy) get no interval.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from effcli.frontier.stats import Bootstrap, Difference, Estimate, correctness, replicate_interval
from effcli.results.rundir import RunDir, unit_name

# Quality columns whose per-sample predictions each artifact folder keeps (predictions.npy).
PREDICTED = ("tflite_accuracy",)
# Columns fixed by the architecture and export: equal in every replicate of a variant, or the
# variant is flagged (gzip_bytes and unique_weights depend on the trained weights and vary).
STRUCTURAL = ("tflite_bytes", "params", "macs", "peak_memory_bytes")
NOT_AVERAGED = {"run", "variant", "replicate", "replicate_seed", "status", "error"}
Key = tuple[str, str]  # (run, variant)


def grouped(ok: pd.DataFrame, quality: str) -> pd.DataFrame:
    """One row per (run, variant) of ok replicate rows: numbers averaged, the rest from the
    first replicate; `<quality>_mean`, `_std` and `n_replicates` added; `footprint_varies`
    names the structural columns that differ between replicates."""
    if "replicate" not in ok.columns:
        ok = ok.assign(replicate=0)
    ok = ok.assign(replicate=pd.to_numeric(ok["replicate"], errors="coerce").fillna(0).astype(int))
    keys = ["run", "variant"]
    single = not ok.duplicated(keys).any()
    if single:  # one replicate each (the common case, and 100k-row files): no groupby needed
        out = ok.reset_index(drop=True)
        out[f"{quality}_mean"] = out[quality]
        out[f"{quality}_std"] = np.nan
        out["n_replicates"] = 1
        out["footprint_varies"] = ""
        return out
    ok = ok.sort_values([*keys, "replicate"], kind="mergesort")
    groups = ok.groupby(keys, sort=False)
    numeric = [
        c
        for c in ok.columns
        if c not in NOT_AVERAGED and "." not in c and pd.api.types.is_numeric_dtype(ok[c])
    ]
    first = groups.first()
    means = groups[numeric].mean()
    out = first.copy()
    out[numeric] = means
    out[f"{quality}_mean"] = means[quality]
    out[f"{quality}_std"] = groups[quality].std(ddof=1)
    out["n_replicates"] = groups.size()
    varies = [c for c in STRUCTURAL if c in ok.columns]
    flagged = np.full(len(out), "", dtype=object)
    if varies:
        spread = groups[varies].nunique(dropna=True).reindex(out.index)
        for column in varies:  # loops only over the (rare) flagged variants
            mask = (spread[column] > 1).to_numpy()
            flagged[mask] = [f"{text},{column}" if text else column for text in flagged[mask]]
    out["footprint_varies"] = flagged
    return out.reset_index()


def replicate_counts(rows: pd.DataFrame) -> pd.DataFrame:
    """Per (run, variant): replicates recorded and how many are ok."""
    status = rows["status"].fillna("")
    frame = pd.DataFrame({"run": rows["run"], "variant": rows["variant"], "ok": status == "ok"})
    counts = frame.groupby(["run", "variant"], sort=False)["ok"].agg(["size", "sum"])
    return counts.rename(columns={"size": "replicates_total", "sum": "replicates_ok"})


@dataclass
class Uncertainty:
    """Intervals and paired differences for the variants of a frontier, loaded lazily from
    their artifacts (only the rows a command shows or compares are read)."""

    ok: pd.DataFrame  # ok replicate rows (with run, variant, replicate)
    quality: str
    run_dirs: dict[str, Path]
    confidence: float = 0.95
    n_boot: int = 2000
    seed: int = 0
    bootstrap: Bootstrap = field(init=False)
    _labels: dict[str, tuple[np.ndarray, str] | None] = field(default_factory=dict)
    _loaded: dict[Key, bool] = field(default_factory=dict)
    _replicates: dict[Key, list[int]] = field(default_factory=dict)
    _values: dict[Key, list[float]] = field(default_factory=dict)
    _dirs: dict[str, RunDir] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.bootstrap = Bootstrap(self.n_boot, self.confidence, self.seed)
        replicate = self.ok.get("replicate", pd.Series(0, index=self.ok.index))
        numbers = pd.to_numeric(replicate, errors="coerce").fillna(0).astype(int).to_numpy()
        values = pd.to_numeric(self.ok[self.quality], errors="coerce").to_numpy(dtype=float)
        runs = self.ok["run"].astype(str).to_numpy()
        variants = self.ok["variant"].astype(str).to_numpy()
        for run, variant, number, value in zip(runs, variants, numbers, values, strict=True):
            key = (run, variant)
            self._replicates.setdefault(key, []).append(int(number))
            self._values.setdefault(key, []).append(float(value))
        for reps in self._replicates.values():
            reps.sort()

    @property
    def method(self) -> str:
        if self.quality in PREDICTED:
            return (
                f"{self.confidence:.0%} two-way bootstrap over test samples and replicates "
                f"(B={self.n_boot}, seed {self.seed})"
            )
        return f"{self.confidence:.0%} Student-t interval over replicates"

    def _run_dir(self, run: str) -> RunDir:
        if run not in self._dirs:
            self._dirs[run] = RunDir(self.run_dirs[run])
        return self._dirs[run]

    def _test_set(self, run: str) -> tuple[np.ndarray, str] | None:
        """The run's test labels and an id of that test set (equal labels: the same set)."""
        if run not in self._labels:
            path = self._run_dir(run).labels if run in self.run_dirs else None
            found = None
            if path is not None and path.is_file():
                labels = np.load(path, allow_pickle=False)
                digest = hashlib.sha256(labels.astype(np.int64).tobytes()).hexdigest()[:16]
                found = labels, f"{len(labels)}:{digest}"
            self._labels[run] = found
        return self._labels[run]

    def _load(self, key: Key) -> bool:
        """Register the variant's predictions with the bootstrap; False when it has none."""
        if key in self._loaded:
            return self._loaded[key]
        run, variant = key
        test = self._test_set(run) if self.quality in PREDICTED else None
        reps = self._replicates.get(key, [])
        ok = test is not None and bool(reps)
        if ok and test is not None:
            folder = self._run_dir(run)
            files = [folder.artifact(unit_name(variant, r)).predictions for r in reps]
            ok = all(f.is_file() for f in files)
            if ok:
                labels, test_set = test
                try:
                    predictions = np.stack([np.load(f, allow_pickle=False) for f in files])
                    self.bootstrap.add(
                        key, correctness(predictions, labels), test_set, replicates=reps
                    )
                except ValueError:  # a damaged or foreign file: no interval, not a crash
                    ok = False
        self._loaded[key] = ok
        return ok

    def estimate(self, key: Key) -> Estimate | None:
        """The variant's interval from its predictions (None without them)."""
        return self.bootstrap.estimate(key) if self._load(key) else None

    def interval(self, key: Key) -> tuple[float, float]:
        """(low, high) of the variant's quality: bootstrap, t over replicates, or NaN."""
        estimate = self.estimate(key)
        if estimate is not None:
            return estimate.low, estimate.high
        return replicate_interval(self._values.get(key, []), self.confidence)

    def difference(self, a: Key, b: Key) -> Difference | None:
        """a - b in quality, paired on shared test samples (None without predictions)."""
        if self._load(a) and self._load(b):
            return self.bootstrap.difference(a, b)
        return None


def add_intervals(rows: pd.DataFrame, uncertainty: Uncertainty) -> pd.DataFrame:
    """`<quality>_ci_low` and `_ci_high` for each row of `rows` (a frontier's variants)."""
    q = uncertainty.quality
    keys = zip(rows["run"].astype(str), rows["variant"].astype(str), strict=True)
    bounds = [uncertainty.interval(key) for key in keys]
    out = rows.copy()
    out[f"{q}_ci_low"] = [b[0] for b in bounds]
    out[f"{q}_ci_high"] = [b[1] for b in bounds]
    return out
