"""The plan: every variant (and each of its replicates) is a chain of nodes; equal chain
prefixes are one node.

A node's key hashes what decides its output: stage kind and resolved arguments, the parent's key,
the data spec and the seed, and for replicates after the first their training seed. So a rerun
finds every finished node, a new sweep value adds only the nodes that differ, and raising
`replicates` adds only the new replicates' nodes. (build.py builds a plan from a recipe.)
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from effcli.recipe.schema import MeasureSpec, Recipe
from effcli.recipe.source import RecipeSource
from effcli.recipe.sweep import Knob
from effcli.results.rundir import unit_name

CACHE_VERSION = 1  # bump when a change makes old cached nodes wrong


def _digest(payload: Any) -> str:
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def node_key(
    kind: str,
    resolved: dict[str, Any],
    parent: str | None,
    data: dict[str, Any],
    seed: int,
    stage_version: int = 1,
    *,
    replicate_seed: int | None = None,
    deterministic: bool = False,
) -> str:
    """Content hash of everything that decides a node's output (and the stage code's version).

    Fields that were added later enter the hash only when they differ from what a node cached
    before them meant, so those nodes keep their keys: `replicate_seed` only for replicates after
    the first (replicate 0 trains with `seed`), `deterministic` only when on."""
    content: dict[str, Any] = {
        "v": CACHE_VERSION,
        "stage": kind,
        "resolved": resolved,
        "parent": parent,
        "data": data,
        "seed": seed,
    }
    if stage_version != 1:  # version 1 keeps the keys of nodes cached before versions existed
        content["stage_version"] = stage_version
    if replicate_seed is not None:
        content["replicate_seed"] = replicate_seed
    if deterministic:
        content["deterministic"] = True
    return _digest(content)


@dataclass(frozen=True)
class Node:
    key: str
    kind: str
    index: int  # position of the stage in the recipe's pipeline
    label: str
    params: BaseModel = field(compare=False, repr=False)
    resolved: dict[str, Any] = field(compare=False)
    parent: str | None = None
    trains: bool = False
    deps: tuple[str, ...] = ()  # other nodes it needs built first (a teacher)
    seed: int = 0  # what it trains, calibrates and samples with: its replicate's seed
    replicate: int = 0
    deterministic: bool = False  # TensorFlow op determinism while it runs

    @property
    def needs(self) -> list[str]:
        """The nodes that must be built before this one: its parent, then its dependencies."""
        return ([self.parent] if self.parent else []) + list(self.deps)

    @property
    def short(self) -> str:
        return self.key[:12]


@dataclass(frozen=True)
class Variant:
    """One replicate of one variant: the chain of nodes that makes one results row.

    `id` is the variant's (replicate 0's leaf key, shortened), the same for all its replicates;
    `unit` names this replicate alone (`<id>`, `<id>.r1`, ...) and its artifact folder."""

    id: str
    pipeline: str
    knobs: dict[str, Any]
    nodes: tuple[str, ...]
    recipe: Recipe
    doc: dict[str, Any]
    branch: str | None = None  # the named pipeline it comes from (`pipelines:` recipes)
    replicate: int = 0
    replicate_seed: int = 0
    baseline: str | None = None  # the reference variant: "linear" or "smallest"
    # What a person reads: the pipeline's steps and the knobs that vary in this run
    # (`w0.25 prune50% int8`), unique within the plan; `id` stays the stable name.
    label: str = ""

    @property
    def leaf(self) -> str:
        return self.nodes[-1]

    @property
    def unit(self) -> str:
        return unit_name(self.id, self.replicate)


@dataclass
class Plan:
    name: str
    source: RecipeSource
    knobs: list[Knob]
    data_spec: dict[str, Any]
    seed: int
    save_test: bool = True  # keep test.npz in the run folder (data.save_test; not in any key)
    replicates: int = 1
    deterministic: bool = False
    measure: MeasureSpec = MeasureSpec()  # recipe `measure:`: how exports are timed (no key)
    nodes: dict[str, Node] = field(default_factory=dict)  # parents before children
    variants: list[Variant] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # plan-time advice, each line once

    @property
    def data_key(self) -> str:
        return _digest({"data": self.data_spec, "seed": self.seed})

    _children: dict[str | None, list[Node]] = field(default_factory=dict, repr=False)
    _leaves: dict[str, list[Variant]] = field(default_factory=dict, repr=False)
    _ids: dict[str, Variant] = field(default_factory=dict, repr=False)

    def index(self) -> None:
        """Build the lookups the executors walk by (called once the plan is complete)."""
        self._children, self._leaves = {}, {}
        for node in self.nodes.values():
            self._children.setdefault(node.parent, []).append(node)
        for variant in self.variants:
            self._leaves.setdefault(variant.leaf, []).append(variant)
        self._ids = {variant.unit: variant for variant in self.variants}

    def children(self, key: str | None) -> list[Node]:
        """Nodes whose parent is `key` (None: the roots), in plan order."""
        return self._children.get(key, [])

    def variants_ending_at(self, key: str) -> list[Variant]:
        return self._leaves.get(key, [])

    def variant(self, unit: str) -> Variant:
        """The replicate of a variant named `unit` (Variant.unit); KeyError when there is none."""
        return self._ids[unit]

    def first_replicates(self) -> list[Variant]:
        """Each variant once (its replicate 0), in plan order."""
        return [v for v in self.variants if v.replicate == 0]

    def closure(self, keys: set[str]) -> set[str]:
        """The nodes, their ancestors, and (recursively) the nodes they depend on."""
        out: set[str] = set()
        stack = list(keys)
        while stack:
            key = stack.pop()
            if key in out:
                continue
            out.add(key)
            node = self.nodes[key]
            if node.parent:
                stack.append(node.parent)
            stack.extend(node.deps)
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "data": self.data_spec,
            "seed": self.seed,
            "replicates": self.replicates,
            "deterministic": self.deterministic,
            "knobs": [k.label for k in self.knobs],
            "nodes": [
                {
                    "key": n.key,
                    "stage": n.kind,
                    "label": n.label,
                    "parent": n.parent,
                    "deps": list(n.deps),
                    "resolved": n.resolved,
                    "seed": n.seed,
                    "replicate": n.replicate,
                }
                for n in self.nodes.values()
            ],
            "variants": [
                {
                    "variant": v.id,
                    "label": v.label,
                    "branch": v.branch,
                    "pipeline": v.pipeline,
                    "knobs": v.knobs,
                    "nodes": list(v.nodes),
                    "replicate": v.replicate,
                    "replicate_seed": v.replicate_seed,
                    "baseline": v.baseline,
                }
                for v in self.variants
            ],
        }
