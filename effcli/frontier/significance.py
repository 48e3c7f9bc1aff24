"""Which differences on a frontier are real: paired comparisons of variants on the same test
samples over all replicates (the paired bootstrap of stats.py).

- `front_steps`: each frontier point against the next smaller one: is its extra quality
  significant, or within noise?
- `robust_set`: the variants that no other variant beats *significantly* in quality at no larger
  footprint (every footprint column): the honest candidates, of which the smallest within noise of
  the best is the one to take.
- `compare`: the paired difference of two variants, its interval and p-value.
- `runners_up`: the variants within noise of a chosen best one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from effcli.errors import UsageError
from effcli.frontier.query import Frontier
from effcli.frontier.replicates import Uncertainty
from effcli.frontier.stats import Difference
from effcli.registry import did_you_mean

Key = tuple[str, str]
RUNNERS_UP_CHECKED = 50  # --best: the next variants by mean quality that are tested


def key_of(row: pd.Series) -> Key:
    return str(row["run"]), str(row["variant"])


def keys_of(rows: pd.DataFrame) -> list[Key]:
    return list(zip(rows["run"].astype(str), rows["variant"].astype(str), strict=True))


def _require(frontier: Frontier) -> Uncertainty:
    if frontier.uncertainty is None:
        raise UsageError("no run directory to read predictions from; pass run directories")
    return frontier.uncertainty


def _difference_columns(
    rows: pd.DataFrame, differences: list[Difference | None], prefix: str
) -> pd.DataFrame:
    """`<prefix>_mean/_low/_high`, `<prefix>_p` and `<prefix>_significant` (None: untested)."""
    out = rows.copy()
    out[f"{prefix}_mean"] = [d.mean if d else np.nan for d in differences]
    out[f"{prefix}_low"] = [d.low if d else np.nan for d in differences]
    out[f"{prefix}_high"] = [d.high if d else np.nan for d in differences]
    out[f"{prefix}_p"] = [d.p_value if d else np.nan for d in differences]
    out[f"{prefix}_significant"] = [d.significant if d else None for d in differences]
    return out


def front_steps(frontier: Frontier, front: pd.DataFrame | None = None) -> pd.DataFrame:
    """The frontier rows (by the first footprint) with `vs_smaller_*`: each point's quality
    minus that of the next smaller frontier point, and whether that gain is significant."""
    front = frontier.front if front is None else front
    differences: list[Difference | None] = [None]
    uncertainty = frontier.uncertainty
    keys = keys_of(front)
    for smaller, point in zip(keys, keys[1:], strict=False):
        differences.append(uncertainty.difference(point, smaller) if uncertainty else None)
    return _difference_columns(front, differences[: len(front)], "vs_smaller")


@dataclass(frozen=True)
class RobustSet:
    """The candidates (rows, by the first footprint, with `vs_best_*` columns), the best by
    mean quality, and the one to take: the smallest within noise of the best."""

    candidates: pd.DataFrame
    best: Key
    take: Key
    untested: int  # variants without predictions: kept as candidates, never tested
    baseline: Key | None  # the recipe's reference variant, if present
    beats_baseline: int | None  # variants significantly better than it (None: no baseline)


def robust_set(frontier: Frontier) -> RobustSet:
    """Variants no other variant significantly beats in quality at no larger footprint."""
    uncertainty = _require(frontier)
    rows = frontier.rows.reset_index(drop=True)
    if rows.empty:
        raise UsageError("no variant to choose from (every ok variant was filtered out)")
    keys = keys_of(rows)
    quality = rows[frontier.quality].to_numpy(dtype=float)
    sizes = rows[frontier.footprints].to_numpy(dtype=float)
    beaten = np.zeros(len(rows), dtype=bool)
    untested = 0
    for j, key in enumerate(keys):
        if uncertainty.estimate(key) is None:
            untested += 1
            continue
        # Rivals: no larger in every footprint and better on average (one row at a time, so
        # memory stays linear in the number of variants).
        rivals = np.flatnonzero((sizes <= sizes[j]).all(axis=1) & (quality > quality[j]))
        for i in rivals[np.argsort(-quality[rivals], kind="stable")]:  # likeliest first
            difference = uncertainty.difference(keys[i], key)
            if difference is not None and difference.significant:
                beaten[j] = True
                break
    candidates = rows[~beaten]
    best_index = int(candidates[frontier.quality].to_numpy(dtype=float).argmax())
    best = key_of(candidates.iloc[best_index])
    versus = [
        uncertainty.difference(key, best) if key != best else None for key in keys_of(candidates)
    ]
    marked = _difference_columns(candidates, versus, "vs_best")
    take = best
    for key, difference in zip(keys_of(marked), versus, strict=True):  # by footprint
        if key == best or (difference is not None and not difference.significant):
            take = key
            break
    baseline, beats = _baseline(rows, keys, uncertainty)
    return RobustSet(marked, best, take, untested, baseline, beats)


def _baseline(
    rows: pd.DataFrame, keys: list[Key], uncertainty: Uncertainty
) -> tuple[Key | None, int | None]:
    """The baseline variant and how many others are significantly better than it."""
    if "baseline" not in rows.columns:
        return None, None
    marked = [k for k, flag in zip(keys, rows["baseline"].notna(), strict=True) if flag]
    if not marked:
        return None, None
    base = marked[0]
    wins = 0
    for key in keys:
        if key in marked:
            continue
        difference = uncertainty.difference(key, base)
        wins += bool(difference is not None and difference.significant)
    return base, wins


def find_variant(frontier: Frontier, text: str) -> Key:
    """A variant named on the command line: its id, a unique prefix of it, its label, or
    RUN:ID."""
    run, _, variant = text.rpartition(":")
    failures = frontier.failures
    broken = failures[failures["variant"].astype(str) == variant]
    if run:
        broken = broken[broken["run"].astype(str) == run]
    if len(broken):
        row = broken.iloc[0]
        raise UsageError(
            f"--compare {text}: variant {row['variant']} has no ok replicate "
            f"({int(row['replicates'])} failed: {row['error']}); fix it and rerun with "
            "--retry-failed, or compare another"
        )
    everything = pd.concat([frontier.rows, frontier.rejected], ignore_index=True)
    pick = everything["variant"].astype(str).str.startswith(variant)
    if "label" in everything.columns:  # a readable label names it as well as its id
        pick |= everything["label"].astype(str) == variant
    if run:
        pick &= everything["run"].astype(str) == run
    found = everything[pick]
    exact = found[found["variant"].astype(str) == variant]
    found = exact if len(exact) else found
    if found.empty:
        ids = sorted(set(everything["variant"].astype(str)))
        raise UsageError(
            f"--compare {text}: no ok variant with that id{did_you_mean(variant, ids)}; "
            "give an id from `effdl frontier --all` (RUN:ID when several runs have it)"
        )
    if len(found) > 1:
        shown = ", ".join(f"{r}:{v}" for r, v in zip(found["run"], found["variant"], strict=True))
        raise UsageError(f"--compare {text}: several variants match ({shown}); write RUN:ID")
    return key_of(found.iloc[0])


@dataclass(frozen=True)
class Comparison:
    a: Key
    b: Key
    difference: Difference
    n_samples: int
    replicates: tuple[int, int]


def compare(frontier: Frontier, a: Key, b: Key) -> Comparison:
    """The paired difference a - b of two variants."""
    uncertainty = _require(frontier)
    if a == b:
        raise UsageError(f"--compare: {a[1]} is compared with itself; name two variants")
    estimates = [uncertainty.estimate(k) for k in (a, b)]
    difference = uncertainty.difference(a, b)
    missing = [k[1] for k, e in zip((a, b), estimates, strict=True) if e is None]
    if difference is None or missing:
        raise UsageError(
            f"--compare: no per-sample predictions for {', '.join(missing)} (predictions.npy "
            "in its artifact folder); rerun it with this version of effdl to compare it"
        )
    ea, eb = estimates
    assert ea is not None and eb is not None
    return Comparison(a, b, difference, ea.n_samples, (ea.n_replicates, eb.n_replicates))


def runners_up(frontier: Frontier, best: pd.DataFrame) -> pd.DataFrame:
    """The variants (next by mean quality, up to RUNNERS_UP_CHECKED) within noise of `best`,
    with their `vs_best_*` difference columns."""
    uncertainty = frontier.uncertainty
    if uncertainty is None or best.empty:
        return best.iloc[0:0]
    top = key_of(best.iloc[0])
    rows = frontier.rows
    same = (rows["run"].astype(str) == top[0]) & (rows["variant"].astype(str) == top[1])
    others = rows[~same].sort_values(frontier.quality, ascending=False, kind="mergesort")
    checked = others.head(RUNNERS_UP_CHECKED)
    differences = [uncertainty.difference(key, top) for key in keys_of(checked)]
    within = [d is not None and not d.significant for d in differences]
    marked = _difference_columns(checked, differences, "vs_best")
    return marked[within]
