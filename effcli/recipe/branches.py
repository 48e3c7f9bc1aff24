"""Named pipelines: `pipelines: {name: [stages...], ...}` instead of one `pipeline:` list.

Each named pipeline is planned as if it were the recipe's only `pipeline` (same data, model,
train defaults and seed); content-hashed node keys make equal prefixes (a YAML anchor reused by
several pipelines, say) one shared node, so a base model trains once for every branch.
Errors still point at `pipelines.<name>[i]` in the file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from effcli.recipe.source import Loc, RecipeSource

BRANCH_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$")


@dataclass
class BranchSource(RecipeSource):
    """A view of a recipe with one named pipeline in place of `pipeline`."""

    branch: str = ""

    def _real(self, loc: Loc) -> Loc:
        if loc[:1] == ("pipeline",):
            return ("pipelines", self.branch, *loc[1:])
        return loc

    def where(self, loc: Loc) -> tuple[str, int | None]:
        return super().where(self._real(loc))

    def error(self, loc: Loc, message: str, shown_loc: Loc | None = None) -> Any:
        return super().error(self._real(loc), message, self._real(shown_loc or loc))


def branches(source: RecipeSource) -> list[tuple[str | None, RecipeSource]]:
    """(name, source) per pipeline: [(None, source)] for a recipe with a single `pipeline`."""
    doc = source.doc
    if "pipelines" not in doc:
        return [(None, source)]
    if "pipeline" in doc:
        raise source.error(
            ("pipelines",),
            "give either 'pipeline' (one list) or 'pipelines' (named lists), not both",
        )
    named = doc["pipelines"]
    if not isinstance(named, dict) or not named:
        raise source.error(
            ("pipelines",),
            "expected a mapping of names to stage lists, e.g. pipelines: {small: [{stage: train}]}",
        )
    out: list[tuple[str | None, RecipeSource]] = []
    for name, stages in named.items():
        if not isinstance(name, str) or not BRANCH_NAME.match(name):
            raise source.error(
                ("pipelines", name),
                f"invalid pipeline name {name!r}: use 1-40 letters, digits, '_' or '-'",
            )
        if not isinstance(stages, list):
            raise source.error(
                ("pipelines", name), "a pipeline is a list of stages, e.g. - {stage: train}"
            )
        view = {k: v for k, v in doc.items() if k != "pipelines"}
        view["pipeline"] = stages
        out.append(
            (
                name,
                BranchSource(path=source.path, doc=view, positions=source.positions, branch=name),
            )
        )
    return out
