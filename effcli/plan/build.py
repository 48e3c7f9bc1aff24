"""Recipe -> plan: expand sweeps, validate every variant, add each replicate's chain of nodes.

Validation runs once per variant; nodes are added once per replicate, each replicate with its
own training seed (`replicate_seed`), so a prefix shared by variants is built once per
replicate. A pipeline that names another (a distillation teacher) is planned after it, and each
replicate of a student learns from the same replicate of its teacher.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from effcli.plan.baseline import baseline_source
from effcli.plan.dag import Node, Plan, Variant, node_key
from effcli.plan.labels import label_variants
from effcli.plan.validate import validate_recipe
from effcli.recipe.branches import branches
from effcli.recipe.schema import Recipe, replicate_seed
from effcli.recipe.source import Loc, RecipeSource, apply_overrides, is_sweep, load_source
from effcli.recipe.sweep import Assignment, Knob, expand, find_knobs
from effcli.stages.base import stages


@dataclass
class _Item:
    """One validated variant of a pipeline, and the pipelines it refers to."""

    assignment: Assignment
    recipe: Recipe
    references: list[str] = field(default_factory=list)


@dataclass
class _Branch:
    """One pipeline of the recipe (None for a single `pipeline:`), validated."""

    name: str | None
    source: RecipeSource
    knobs: list[Knob]
    items: list[_Item]
    baseline: str | None = None


def _knob_values(knobs: list[Knob], choice: dict[Loc, int], recipe: Recipe) -> dict[str, Any]:
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

    The named pipeline a stage refers to must be a single variant ending in a Keras model.
    Without `require_data`, data files missing on this machine are warnings, not errors.
    """
    ordered = _validate(source, require_data)
    first = ordered[0].items[0]
    docs = [item.assignment.doc for branch in ordered for item in branch.items]
    extra = baseline_source(source, docs, first.recipe)
    if extra is not None:
        what, doc_source = extra
        recipe = validate_recipe(doc_source.doc, doc_source, {}, require_data)
        item = _Item(Assignment(doc=doc_source.doc, choice={}), recipe)
        ordered.append(_Branch(None, doc_source, [], [item], baseline=what))
    recipe = first.recipe
    plan = Plan(
        name=recipe.name,
        source=source,
        knobs=[],
        data_spec=recipe.data.spec(),
        seed=recipe.seed,
        save_test=bool(getattr(recipe.data.params, "save_test", True)),
        replicates=recipe.replicates,
        deterministic=recipe.deterministic,
        measure=recipe.measure,
    )
    for branch in ordered:
        known = {k.label for k in plan.knobs}
        plan.knobs.extend(k for k in branch.knobs if k.label not in known)
        for item in branch.items:
            plan.warnings.extend(w for w in item.recipe.warnings if w not in plan.warnings)
    ids: dict[tuple[int, int], str] = {}
    for replicate in range(plan.replicates):
        _add_replicate(plan, ordered, replicate, ids)
    plan.variants = label_variants(plan.variants, plan.knobs)
    plan.index()
    return plan


def _add_replicate(
    plan: Plan, ordered: list[_Branch], replicate: int, ids: dict[tuple[int, int], str]
) -> None:
    """Every variant's chain for one replicate (its teacher's chain of the same replicate).

    `ids` maps (pipeline, variant position) to the variant id replicate 0 gave it: later
    replicates keep that id. (Variants dedupe alike in every replicate: only seeds differ.)"""
    leaves: dict[str, str] = {}  # pipeline name -> its leaf in this replicate
    seen: set[str] = set()
    seed = replicate_seed(plan.seed, replicate)
    for number, branch in enumerate(ordered):
        for position, item in enumerate(branch.items):
            refs = {name: leaves[name] for name in item.references}
            recipe = dataclasses.replace(item.recipe, refs=refs)
            chain = _add_nodes(plan, recipe, replicate, seed)
            if branch.name is not None and position == 0:
                leaves[branch.name] = chain[-1]
            if chain[-1] in seen:  # e.g. a disabled stage's other sweep values
                continue
            seen.add(chain[-1])
            variant_id = ids.setdefault((number, position), chain[-1][:12])
            plan.variants.append(
                Variant(
                    id=variant_id,
                    pipeline=">".join(s.kind for s in recipe.pipeline),
                    knobs=_knob_values(branch.knobs, item.assignment.choice, recipe),
                    nodes=tuple(chain),
                    recipe=recipe,
                    doc=item.assignment.doc,
                    branch=branch.name,
                    replicate=replicate,
                    replicate_seed=seed,
                    baseline=branch.baseline,
                )
            )


def _validate(source: RecipeSource, require_data: bool) -> list[_Branch]:
    """Every pipeline validated, those that others refer to first."""
    named = branches(source)
    names = [name for name, _ in named if name is not None]
    done: dict[str, _Branch] = {}
    ordered: list[_Branch] = []
    pending = list(named)
    while pending:
        deferred = []
        for name, branch_source in pending:
            branch = _validate_branch(name, branch_source, names, done, require_data)
            if branch is None:
                deferred.append((name, branch_source))
                continue
            ordered.append(branch)
            if name is not None:
                done[name] = branch
        if len(deferred) == len(pending):
            cycle = " -> ".join(str(b) for b, _ in deferred)
            raise source.error(
                ("pipelines",),
                f"pipelines refer to each other in a cycle ({cycle}); a teacher cannot depend "
                "on its student",
            )
        pending = deferred
    return ordered


def _validate_branch(
    name: str | None,
    source: RecipeSource,
    names: list[str],
    done: dict[str, _Branch],
    require_data: bool,
) -> _Branch | None:
    """Validate every variant of one pipeline; None when a pipeline it names is not done yet."""
    knobs = find_knobs(source)
    items = []
    for assignment in expand(source, knobs):
        recipe = validate_recipe(assignment.doc, source, assignment.choice, require_data)
        references: list[str] = []
        for stage in recipe.pipeline:
            cls = stages.get(stage.kind)
            for argument, other in cls.references(stage.params):
                loc = ("pipeline", stage.index, argument)
                if other not in names:
                    rest = [n for n in names if n != name]
                    if rest:
                        hint = f"choose one of: {', '.join(rest)}"
                    elif names:
                        hint = f"add a pipeline named '{other}' under `pipelines:`"
                    else:
                        hint = "name pipelines with `pipelines: {name: [...]}` to refer to them"
                    raise source.error(loc, f"no pipeline named '{other}'; {hint}")
                if other == name:
                    raise source.error(loc, f"pipeline '{other}' cannot use itself as {argument}")
                if other not in done:
                    return None  # validate that pipeline first
                _check_single(source, loc, other, done[other])
                references.append(other)
        items.append(_Item(assignment, recipe, references))
    return _Branch(name, source, knobs, items)


def _check_single(source: RecipeSource, loc: Loc, name: str, branch: _Branch) -> None:
    """A referenced pipeline must be one variant ending in a Keras model."""
    if len(branch.items) != 1:
        raise source.error(
            loc,
            f"pipeline '{name}' has {len(branch.items)} variants (it sweeps); a teacher must be "
            "one model: remove its sweeps or split it into one pipeline per value",
        )
    last = branch.items[0].recipe.pipeline[-1]
    if stages.get(last.kind).output_kind(last.params) != "keras":
        raise source.error(
            loc,
            f"pipeline '{name}' ends in a .tflite ({last.kind}); a teacher must be a Keras "
            "model: end that pipeline before its export stage",
        )


def _add_nodes(plan: Plan, recipe: Recipe, replicate: int, seed: int) -> list[str]:
    """Add the recipe's chain of nodes for one replicate (existing keys are shared)."""
    parent: str | None = None
    chain: list[str] = []
    for stage in recipe.pipeline:
        cls = stages.get(stage.kind)
        resolved = cls.resolve(stage, recipe)
        key = node_key(
            stage.kind,
            resolved,
            parent,
            plan.data_spec,
            plan.seed,
            cls.version,
            replicate_seed=seed if replicate else None,
            deterministic=plan.deterministic,
        )
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
                seed=seed,
                replicate=replicate,
                deterministic=plan.deterministic,
            )
        chain.append(key)
        parent = key
    return chain


def load_plan(
    path: str | Path, *, require_data: bool = True, overrides: Sequence[str] = ()
) -> Plan:
    """Read, validate and plan a recipe file; raises RecipeError on any problem.

    `require_data=False` (validate, plan) checks a recipe written for data kept elsewhere:
    a missing data path is then a warning; `effdl run` and `effdl data` require it.
    `overrides` are `--set KEY=VALUE` texts, applied after `extends` (see apply_overrides)."""
    source = apply_overrides(load_source(path), overrides)
    if is_sweep(source.doc.get("tracking")):  # where rows are logged, not what a variant is
        raise source.error(("tracking",), "tracking cannot be swept; set mlflow or none")
    return build_plan(source, require_data=require_data)
