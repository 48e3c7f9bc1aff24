"""Sweeps: any argument written `{sweep: [a, b, ...]}`; variants are the cartesian product."""

from __future__ import annotations

import copy
import itertools
import json
from collections import Counter
from dataclasses import dataclass
from typing import Any

from effcli.recipe.source import Loc, RecipeSource, format_loc, is_sweep

MAX_VARIANTS = 10_000

# Sweeping these would change what every variant is compared on (data, split, seed) or the
# shape of the pipeline itself; one recipe per value is the honest way to do that.
_FIXED_ROOTS = {"name", "description", "seed", "data", "pipeline", "extends"}
# Settings of the run itself: one value per recipe.
_RUN_SETTINGS = {
    "replicates": "replicates cannot be swept (every variant is trained that many times); set "
    "one count: raising it later runs only the new replicates",
    "deterministic": "deterministic cannot be swept (it decides how every node runs); write "
    "one recipe per value",
    "baseline": "baseline cannot be swept (it adds one reference variant); set true or false",
    "measure": "measure settings cannot be swept (they decide how every variant is timed, not "
    "what it is); set one value (latency_threads takes several thread counts)",
}
_FIXED_ROOTS |= set(_RUN_SETTINGS)


@dataclass(frozen=True)
class Knob:
    """One swept argument: where it is, its values, and its column name in results."""

    loc: Loc
    values: tuple[Any, ...]
    label: str


@dataclass(frozen=True)
class Assignment:
    """One point of the sweep: the concrete document and which value each knob took."""

    doc: dict[str, Any]
    choice: dict[Loc, int]


def _check_sweep(source: RecipeSource, loc: Loc, node: dict[str, Any]) -> list[Any]:
    extra = sorted((k for k in node if k != "sweep"), key=str)  # keys may be numbers too
    if extra:
        raise source.error(
            loc + (extra[0],), f"a sweep takes only the key 'sweep' (found '{extra[0]}')"
        )
    values = node["sweep"]
    if not isinstance(values, list) or not values:
        raise source.error(
            loc + ("sweep",), "a sweep needs a non-empty list of values, e.g. {sweep: [0.5, 0.8]}"
        )
    seen: set[str] = set()
    for i, value in enumerate(values):
        if _contains_sweep(value):
            raise source.error(loc + ("sweep", i), "sweeps cannot be nested; flatten the values")
        try:
            key = json.dumps(value, sort_keys=True, default=str)
        except (TypeError, ValueError):  # keys of mixed types cannot be sorted: compare as written
            key = repr(value)
        if key in seen:
            raise source.error(loc + ("sweep", i), f"value {value!r} appears twice in the sweep")
        seen.add(key)
    return values


def _contains_sweep(value: Any) -> bool:
    if is_sweep(value):
        return True
    if isinstance(value, dict):
        return any(_contains_sweep(v) for v in value.values())
    if isinstance(value, list):
        return any(_contains_sweep(v) for v in value)
    return False


def _sweepable(doc: dict[str, Any], loc: Loc) -> bool:
    root = loc[0]
    if root == "pipeline":  # a stage's arguments may be swept, not the list or the stage kind
        return len(loc) >= 3 and loc[2] != "stage"
    if loc == ("model", "family"):
        return False
    return root not in _FIXED_ROOTS


def _label(doc: dict[str, Any], loc: Loc) -> str:
    index = loc[1] if len(loc) > 1 else None
    if loc[0] == "pipeline" and isinstance(doc["pipeline"], list) and isinstance(index, int):
        stages = doc["pipeline"]  # (anything else is refused by validation)
        kind = stages[index].get("stage", "stage") if isinstance(stages[index], dict) else "stage"
        nth = sum(1 for s in stages[: index + 1] if isinstance(s, dict) and s.get("stage") == kind)
        head = f"{kind}{nth if nth > 1 else ''}"
        return ".".join([head, *map(str, loc[2:])])
    return ".".join(map(str, loc))


def _not_sweepable(loc: Loc) -> str:
    """Why a sweep is refused here, and what to do instead."""
    if loc[:1] and loc[0] in _RUN_SETTINGS:
        return _RUN_SETTINGS[str(loc[0])]
    if loc in (("model", "family"), ("model", "factory"), ("model", "path")):
        return (
            f"{loc[-1]} cannot be swept (each model takes its own arguments); write one recipe "
            "per model (they can share a preset with `extends:`) and compare them with "
            "`effdl frontier results/`"
        )
    if loc[:1] == ("data",):
        return (
            "data cannot be swept (results on different data are not comparable); write one "
            "recipe per dataset"
        )
    return (
        "this cannot be swept; sweep stage, model or train arguments, or write one recipe per value"
    )


def find_knobs(source: RecipeSource) -> list[Knob]:
    """Every sweep in the document, in document order, checked for shape and place."""
    found: list[tuple[Loc, list[Any]]] = []

    def walk(value: Any, loc: Loc) -> None:
        if is_sweep(value):
            if not loc or not _sweepable(source.doc, loc):
                raise source.error(loc, _not_sweepable(loc))
            found.append((loc, _check_sweep(source, loc, value)))
        elif isinstance(value, dict):
            for key, item in value.items():
                walk(item, loc + (key,))
        elif isinstance(value, list):
            for i, item in enumerate(value):
                walk(item, loc + (i,))

    walk(source.doc, ())
    labels = [_label(source.doc, loc) for loc, _ in found]
    clashes = {name for name, n in Counter(labels).items() if n > 1}
    return [
        Knob(loc=loc, values=tuple(values), label=format_loc(loc) if label in clashes else label)
        for (loc, values), label in zip(found, labels, strict=True)
    ]


def _set(doc: Any, loc: Loc, value: Any) -> None:
    for part in loc[:-1]:
        doc = doc[part]
    doc[loc[-1]] = value


def expand(source: RecipeSource, knobs: list[Knob]) -> list[Assignment]:
    """The cartesian product of all knobs (one assignment when nothing is swept)."""
    total = 1
    for knob in knobs:
        total *= len(knob.values)
    if total > MAX_VARIANTS:
        raise source.error(
            knobs[0].loc,
            f"the sweeps expand to {total:,} variants; the limit is {MAX_VARIANTS:,} "
            "(split the recipe or sweep fewer values)",
        )
    out: list[Assignment] = []
    for picks in itertools.product(*(range(len(k.values)) for k in knobs)):
        doc = copy.deepcopy(source.doc)
        for knob, pick in zip(knobs, picks, strict=True):
            _set(doc, knob.loc, copy.deepcopy(knob.values[pick]))
        out.append(
            Assignment(doc=doc, choice={k.loc: p for k, p in zip(knobs, picks, strict=True)})
        )
    return out
