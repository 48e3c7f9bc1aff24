"""The baseline: a reference variant next to the recipe's own, the simplest model that could do
the job, on the same split with the same export and measurement.

- `linear`: a linear softmax classifier (the `mlp` family with no hidden layer), the default for
  tabular data, where a logistic regression is often hard to beat;
- `smallest`: the recipe's own model family at width multiplier 0.1 (the default for images and
  sequences; a family without a width knob, such as a user's factory, gets `linear` instead).

Either is trained by a plain `train` stage with the recipe's `train` defaults and exported like
the recipe's variants: with the final quantize stage of the first variant that ends in one, else
as float32.
`baseline: true` picks the default for the data kind; `false` (the default for image and
sequence data, and for the `synthetic` source, which is for tests and smoke runs) adds nothing.
"""

from __future__ import annotations

import copy
from typing import Any

from effcli.data.base import datasets
from effcli.models.base import families
from effcli.recipe.schema import Recipe
from effcli.recipe.source import RecipeSource

SMALLEST_WIDTH = 0.1
LINEAR_MODEL = {"family": "mlp", "args": {"hidden": []}}


def baseline_kind(recipe: Recipe) -> str | None:
    """ "linear", "smallest" or None (no baseline) for this recipe's setting and data."""
    setting = recipe.baseline
    dataset = datasets.get(recipe.data.source)
    kind = dataset.data_kind(recipe.data.params, recipe.source_dir or ".")
    if setting is None:
        setting = kind == "tabular" and dataset.baseline_by_default
    if setting is False:
        return None
    if setting is True:
        setting = "linear" if kind == "tabular" else "smallest"
    if setting == "smallest":
        family = families.get(recipe.model.family)
        if "width_multiplier" not in family.Params.model_fields:
            return "linear"  # no smaller member to build
    return str(setting)


def _export_stage(docs: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The final quantize stage of the first variant that ends in one (its arguments)."""
    for doc in docs:
        stages = doc.get("pipeline") or []
        last = stages[-1] if stages and isinstance(stages[-1], dict) else {}
        if last.get("stage") == "quantize" and last.get("enabled", True) is not False:
            return {k: v for k, v in last.items() if k != "enabled"}
    return None


def baseline_source(
    source: RecipeSource, docs: list[dict[str, Any]], recipe: Recipe
) -> tuple[str, RecipeSource] | None:
    """(kind, the baseline's recipe document) for a recipe whose variants' documents are `docs`
    (sweeps chosen) and whose first variant is `recipe`; None when it asks for no baseline."""
    kind = baseline_kind(recipe)
    if kind is None:
        return None
    doc = docs[0]
    base = {k: copy.deepcopy(v) for k, v in doc.items() if k not in ("pipeline", "pipelines")}
    if kind == "linear":
        base["model"] = copy.deepcopy(LINEAR_MODEL)
    else:
        model = dict(base.get("model") or {"family": "cnn"})
        model["args"] = {**(model.get("args") or {}), "width_multiplier": SMALLEST_WIDTH}
        base["model"] = model
    export = _export_stage(docs)
    base["pipeline"] = [{"stage": "train"}, *([export] if export else [])]
    # Errors in it (there should be none) point at the recipe's `baseline` key or its top.
    file, line = source.where(("baseline",))
    return kind, RecipeSource(path=source.path, doc=base, positions={(): (file, line or 1)})
