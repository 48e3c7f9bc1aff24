"""Shared by the unit tests: plan a recipe text, or get the one-line error it raises."""

from __future__ import annotations

from pathlib import Path

import pytest

from effcli.errors import RecipeError
from effcli.plan import Plan, load_plan


def plan_of(tmp_path: Path, text: str) -> Plan:
    """Write `text` as tmp_path/r.yaml and plan it."""
    path = tmp_path / "r.yaml"
    path.write_text(text)
    return load_plan(path)


def error_of(tmp_path: Path, text: str) -> str:
    """The RecipeError the text raises, with the temporary folder cut from paths."""
    with pytest.raises(RecipeError) as info:
        plan_of(tmp_path, text)
    return str(info.value).replace(str(tmp_path) + "/", "")
