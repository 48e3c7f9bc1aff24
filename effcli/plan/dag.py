"""Build the plan: every variant is a chain of nodes; equal chains prefixes are one node.

A node's key hashes what decides its output: stage kind and resolved arguments, the parent's key,
the data spec and the seed. So a rerun finds every finished node, and a new sweep value adds only
the nodes that differ.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from effcli.plan.validate import validate_recipe
from effcli.recipe.branches import branches
from effcli.recipe.schema import Recipe
from effcli.recipe.source import RecipeSource, load_source
from effcli.recipe.sweep import Knob, expand, find_knobs
from effcli.stages.base import stages

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
) -> str:
    """Content hash of everything that decides a node's output (and the stage code's version)."""
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

    @property
    def short(self) -> str:
        return self.key[:12]


@dataclass(frozen=True)
class Variant:
    id: str
    pipeline: str
    knobs: dict[str, Any]
    nodes: tuple[str, ...]
    recipe: Recipe
    doc: dict[str, Any]
    branch: str | None = None  # the named pipeline it comes from (`pipelines:` recipes)

    @property
    def leaf(self) -> str:
        return self.nodes[-1]


@dataclass
class Plan:
    name: str
    source: RecipeSource
    knobs: list[Knob]
    data_spec: dict[str, Any]
    seed: int
    save_test: bool = True  # keep test.npz in the run folder (data.save_test; not in any key)
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
        self._ids = {variant.id: variant for variant in self.variants}

    def children(self, key: str | None) -> list[Node]:
        """Nodes whose parent is `key` (None: the roots), in plan order."""
        return self._children.get(key, [])

    def variants_ending_at(self, key: str) -> list[Variant]:
        return self._leaves.get(key, [])

    def variant(self, variant_id: str) -> Variant:
        """The variant with this id; KeyError when the plan has none."""
        return self._ids[variant_id]

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
            "knobs": [k.label for k in self.knobs],
            "nodes": [
                {
                    "key": n.key,
                    "stage": n.kind,
                    "label": n.label,
                    "parent": n.parent,
                    "deps": list(n.deps),
                    "resolved": n.resolved,
                }
                for n in self.nodes.values()
            ],
            "variants": [
                {
                    "variant": v.id,
                    "branch": v.branch,
                    "pipeline": v.pipeline,
                    "knobs": v.knobs,
                    "nodes": list(v.nodes),
                }
                for v in self.variants
            ],
        }


def _knob_values(
    knobs: list[Knob], choice: dict[tuple[Any, ...], int], recipe: Recipe
) -> dict[str, Any]:
    """Each knob's value in this variant; empty when its stage is disabled in this variant."""
    enabled = {stage.index for stage in recipe.pipeline}
    values: dict[str, Any] = {}
    for knob in knobs:
        loc = knob.loc
        off = loc[0] == "pipeline" and loc[1] not in enabled and loc[2:] != ("enabled",)
        values[knob.label] = None if off else knob.values[choice[loc]]
    return values


def build_plan(source: RecipeSource, *, require_data: bool = True) -> Plan:
    """Expand sweeps, validate every variant, and share nodes between equal prefixes.

    A pipeline that names another (a distillation teacher) is planned after it; the named
    pipeline must be a single variant ending in a model the stage accepts. Without
    `require_data`, data files missing on this machine are warnings, not errors.
    """
    plan: Plan | None = None
    seen_leaves: set[str] = set()
    named = branches(source)
    names = [name for name, _ in named if name is not None]
    leaves: dict[str, list[Variant]] = {}
    pending = list(named)
    while pending:
        deferred = []
        for branch, branch_source in pending:
            planned = _plan_branch(
                branch, branch_source, names, leaves, plan, seen_leaves, require_data
            )
            if planned is None:
                deferred.append((branch, branch_source))
                continue
            plan = planned
            if branch is not None:
                leaves[branch] = [v for v in plan.variants if v.branch == branch]
        if len(deferred) == len(pending):
            cycle = " -> ".join(str(b) for b, _ in deferred)
            raise source.error(
                ("pipelines",),
                f"pipelines refer to each other in a cycle ({cycle}); a teacher cannot depend "
                "on its student",
            )
        pending = deferred
    assert plan is not None  # expand() always yields at least one assignment
    plan.index()
    return plan


def _plan_branch(
    branch: str | None,
    source: RecipeSource,
    names: list[str],
    leaves: dict[str, list[Variant]],
    plan: Plan | None,
    seen_leaves: set[str],
    require_data: bool,
) -> Plan | None:
    """Plan every variant of one pipeline; None when a pipeline it names is not planned yet."""
    knobs = find_knobs(source)
    recipes = []
    for assignment in expand(source, knobs):
        recipe = validate_recipe(assignment.doc, source, assignment.choice, require_data)
        refs: dict[str, str] = {}
        for stage in recipe.pipeline:
            cls = stages.get(stage.kind)
            for argument, name in cls.references(stage.params):
                loc = ("pipeline", stage.index, argument)
                if name not in names:
                    others = [n for n in names if n != branch]
                    if others:
                        hint = f"choose one of: {', '.join(others)}"
                    elif names:
                        hint = f"add a pipeline named '{name}' under `pipelines:`"
                    else:
                        hint = "name pipelines with `pipelines: {name: [...]}` to refer to them"
                    raise source.error(loc, f"no pipeline named '{name}'; {hint}")
                if name == branch:
                    raise source.error(loc, f"pipeline '{name}' cannot use itself as {argument}")
                if name not in leaves:
                    return None  # plan that pipeline first
                refs[name] = _single_leaf(source, loc, name, leaves[name])
        recipes.append((assignment, dataclasses.replace(recipe, refs=refs)))
    for assignment, recipe in recipes:
        if plan is None:
            plan = Plan(
                name=recipe.name,
                source=source,
                knobs=[],
                data_spec=recipe.data.spec(),
                seed=recipe.seed,
                save_test=bool(getattr(recipe.data.params, "save_test", True)),
            )
        plan.warnings.extend(w for w in recipe.warnings if w not in plan.warnings)
        chain = _add_nodes(plan, recipe)
        if chain[-1] in seen_leaves:  # e.g. a disabled stage's other sweep values
            continue
        seen_leaves.add(chain[-1])
        plan.variants.append(
            Variant(
                id=chain[-1][:12],
                pipeline=">".join(s.kind for s in recipe.pipeline),
                knobs=_knob_values(knobs, assignment.choice, recipe),
                nodes=tuple(chain),
                recipe=recipe,
                doc=assignment.doc,
                branch=branch,
            )
        )
    assert plan is not None
    known = {k.label for k in plan.knobs}
    plan.knobs.extend(k for k in knobs if k.label not in known)
    return plan


def _single_leaf(source: RecipeSource, loc: tuple[Any, ...], name: str, variants: list[Any]) -> str:
    """The one leaf node of a referenced pipeline, which must end in a Keras model."""
    if len(variants) != 1:
        raise source.error(
            loc,
            f"pipeline '{name}' has {len(variants)} variants (it sweeps); a teacher must be one "
            "model: remove its sweeps or split it into one pipeline per value",
        )
    variant = variants[0]
    last = variant.recipe.pipeline[-1]
    if stages.get(last.kind).output_kind(last.params) != "keras":
        raise source.error(
            loc,
            f"pipeline '{name}' ends in a .tflite ({last.kind}); a teacher must be a Keras "
            "model: end that pipeline before its export stage",
        )
    return variant.leaf


def _add_nodes(plan: Plan, recipe: Recipe) -> list[str]:
    """Add the recipe's chain of nodes (existing keys are shared); returns their keys."""
    parent: str | None = None
    chain: list[str] = []
    for stage in recipe.pipeline:
        cls = stages.get(stage.kind)
        resolved = cls.resolve(stage, recipe)
        key = node_key(stage.kind, resolved, parent, plan.data_spec, plan.seed, cls.version)
        if key not in plan.nodes:
            plan.nodes[key] = Node(
                key=key,
                kind=stage.kind,
                index=stage.index,
                label=cls.describe(stage.params),
                params=stage.params,
                resolved=resolved,
                parent=parent,
                trains=cls.is_training(stage.params),
                deps=tuple(cls.dependencies(resolved)),
            )
        chain.append(key)
        parent = key
    return chain


def load_plan(path: str | Path, *, require_data: bool = True) -> Plan:
    """Read, validate and plan a recipe file; raises RecipeError on any problem.

    `require_data=False` (validate, plan) checks a recipe written for data kept elsewhere:
    a missing data path is then a warning; `effdl run` and `effdl data` require it."""
    return build_plan(load_source(path), require_data=require_data)
