"""`model: {factory: ...}` and `model: {path: ...}`: plan-time errors without importing anything."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from effcli.errors import RecipeError
from effcli.plan import load_plan


def error_of(tmp_path: Path, model: str) -> str:
    path = tmp_path / "r.yaml"
    path.write_text(f"name: t\nmodel: {model}\npipeline: [{{stage: train}}]\n")
    with pytest.raises(RecipeError) as info:
        load_plan(path)
    return (
        str(info.value).replace(str(tmp_path.resolve()) + "/", "").replace(str(tmp_path) + "/", "")
    )


@pytest.mark.parametrize(
    ("model", "message"),
    [
        (
            "{factory: 'nowhere_pkg.models:build'}",
            "r.yaml:2: model.factory: module 'nowhere_pkg.models' not found next to the recipe or "
            "on the Python path; check the name or install the package",
        ),
        (
            "{factory: 'not a callable'}",
            "r.yaml:2: model.factory: invalid value 'not a callable'; allowed: "
            "'package.module:function' returning an uncompiled tf_keras model",
        ),
        (
            "{path: missing.keras}",
            "r.yaml:2: model.path: no model at missing.keras; save one there or fix the path",
        ),
        (
            "{family: cnn, path: m.keras}",
            "r.yaml:2: model: give one of family, factory or path (got family and path)",
        ),
    ],
)
def test_user_model_errors(tmp_path: Path, model: str, message: str) -> None:
    assert error_of(tmp_path, model) == message


def test_factory_module_is_found_but_not_imported_and_its_hash_keys_the_node(
    tmp_path: Path,
) -> None:
    module = tmp_path / "plan_time_only_models.py"
    module.write_text("raise RuntimeError('imported at plan time')\n")
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        "name: t\nmodel: {factory: 'plan_time_only_models:build', args: {units: 8}}\n"
        "pipeline: [{stage: train}]\n"
    )
    first = load_plan(recipe)
    # A name no other test imports: the integration suite runs first in the same process.
    assert "plan_time_only_models" not in sys.modules
    node = first.nodes[first.variants[0].leaf]
    assert node.resolved["model"]["args"]["units"] == 8
    module.write_text("raise RuntimeError('edited')\n")
    second = load_plan(recipe)
    assert second.variants[0].leaf != first.variants[0].leaf  # editing the code reruns it
