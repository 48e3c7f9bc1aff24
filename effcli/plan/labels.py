"""Readable variant names: `w0.25 prune50% int8` instead of `767f7a710f89`.

A label is built from the variant's pipeline (each stage's own token: `prune50%`, `int8`,
`distill(T4)`) and the knobs that vary in this run (`w0.25`, `lr0.01`); the train stage appears
only through what varies in it, since every variant trains. Labels are unique within a plan: on a
clash the short id is added. `Variant.id` stays the stable name every file uses.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Mapping
from typing import Any

from effcli.recipe.sweep import Knob
from effcli.stages._label import token
from effcli.stages.base import stages


def _stage_varying(knobs: list[Knob], values: Mapping[str, Any], index: int) -> dict[str, Any]:
    """The arguments of the stage at `index` that vary in the run, and their values here."""
    out: dict[str, Any] = {}
    for knob in knobs:
        loc = knob.loc
        here = loc[0] == "pipeline" and loc[1] == index and loc[2:] != ("enabled",)
        if here and values.get(knob.label) is not None:
            out[".".join(map(str, loc[2:]))] = values[knob.label]
    return out


def variant_label(variant: Any, knobs: list[Knob]) -> str:
    """The readable label of one variant from its knobs and stages ('' when nothing in it is
    particular: a single training, say); branch names are added by `label_variants`."""
    parts: list[str] = []
    if variant.baseline:
        parts.append(f"baseline({variant.baseline})")
    # Knobs outside the pipeline (the model, the recipe's train defaults) come first.
    for knob in knobs:
        if knob.loc[0] != "pipeline" and variant.knobs.get(knob.label) is not None:
            parts.append(token(".".join(map(str, knob.loc[1:])), variant.knobs[knob.label]))
    for stage in variant.recipe.pipeline:
        varying = _stage_varying(knobs, variant.knobs, stage.index)
        parts.append(stages.get(stage.kind).label_token(stage.params, varying))
    return " ".join(p for p in parts if p)


def label_variants(variants: list[Any], knobs: list[Knob]) -> list[Any]:
    """The variants with `label` set, unique across the plan; every replicate of a variant gets
    its label. A named pipeline's name is added where its variants would otherwise read alike
    (or say nothing); on any remaining clash, the short id."""
    firsts = [v for v in variants if v.replicate == 0]
    labels = {v.id: variant_label(v, knobs) for v in firsts}
    branches_of: dict[str, set[str | None]] = {}
    for v in firsts:
        branches_of.setdefault(labels[v.id], set()).add(v.branch)
    for v in firsts:
        own = labels[v.id]
        if v.branch and (not own or len(branches_of[own]) > 1):
            labels[v.id] = f"{v.branch} {own}".strip()
        elif not own:
            labels[v.id] = v.pipeline.replace(">", " ")
    counts = Counter(labels.values())
    unique = {
        vid: (f"{label} [{vid[:6]}]" if counts[label] > 1 else label)
        for vid, label in labels.items()
    }
    return [dataclasses.replace(v, label=unique.get(v.id, v.id)) for v in variants]
