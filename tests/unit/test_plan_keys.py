"""Sweep expansion, content-hashed node keys and prefix sharing (no TensorFlow)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from effcli.errors import RecipeError
from effcli.plan import load_plan, node_key
from effcli.recipe.source import load_source
from effcli.recipe.sweep import MAX_VARIANTS, expand, find_knobs

ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = ROOT / "recipes" / "quickstart.yaml"

BASE = """\
name: t
seed: {seed}
pipeline:
  - stage: train
    width_multiplier: {{sweep: {widths}}}
  - stage: prune
    sparsity: {{sweep: [0.5, 0.8]}}
  - stage: quantize
    calibration_samples: {calibration}
"""


def recipe(
    tmp_path: Path,
    widths: str = "[0.25, 0.5]",
    seed: int = 0,
    calibration: int = 256,
    name: str = "r.yaml",
) -> Path:
    path = tmp_path / name
    path.write_text(BASE.format(widths=widths, seed=seed, calibration=calibration))
    return path


def keys_by_stage(path: Path) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for node in load_plan(path).nodes.values():
        out.setdefault(node.kind, set()).add(node.key)
    return out


def test_quickstart_shares_prefixes() -> None:
    plan = load_plan(QUICKSTART)
    assert len(plan.variants) == 9
    kinds = [n.kind for n in plan.nodes.values()]
    assert (kinds.count("train"), kinds.count("prune"), kinds.count("quantize")) == (3, 6, 9)
    by_width: dict[float, set[str]] = {}
    for variant in plan.variants:
        by_width.setdefault(variant.knobs["train.width_multiplier"], set()).add(variant.nodes[0])
    assert all(len(train_keys) == 1 for train_keys in by_width.values())
    assert len(by_width) == 3


def test_disabled_stage_variants_are_not_duplicated() -> None:
    plan = load_plan(QUICKSTART)
    unpruned = [v for v in plan.variants if v.pipeline == "train>quantize"]
    assert len(unpruned) == 3
    assert all(
        v.knobs["prune.sparsity"] is None and v.knobs["prune.enabled"] is False for v in unpruned
    )
    assert len({v.id for v in plan.variants}) == 9


def test_keys_are_deterministic(tmp_path: Path) -> None:
    assert keys_by_stage(recipe(tmp_path)) == keys_by_stage(recipe(tmp_path, name="b.yaml"))


def test_changing_a_late_stage_changes_only_its_keys(tmp_path: Path) -> None:
    a = keys_by_stage(recipe(tmp_path))
    b = keys_by_stage(recipe(tmp_path, calibration=64, name="b.yaml"))
    assert a["train"] == b["train"] and a["prune"] == b["prune"]
    assert not a["quantize"] & b["quantize"]


def test_changing_the_seed_changes_every_key(tmp_path: Path) -> None:
    a = keys_by_stage(recipe(tmp_path))
    b = keys_by_stage(recipe(tmp_path, seed=1, name="b.yaml"))
    assert all(not a[kind] & b[kind] for kind in a)


def test_train_defaults_are_part_of_the_train_key(tmp_path: Path) -> None:
    a = recipe(tmp_path)
    b = tmp_path / "b.yaml"
    b.write_text(a.read_text() + "train: {learning_rate: 0.01}\n")
    assert not keys_by_stage(a)["train"] & keys_by_stage(b)["train"]


def test_adding_a_sweep_value_keeps_existing_variant_ids(tmp_path: Path) -> None:
    old = {v.id for v in load_plan(recipe(tmp_path)).variants}
    new = {
        v.id for v in load_plan(recipe(tmp_path, widths="[0.25, 0.5, 1.0]", name="b.yaml")).variants
    }
    assert old < new and len(new - old) == 2


def test_node_key_depends_on_every_input() -> None:
    base = node_key("prune", {"sparsity": 0.5}, "p", {"source": "digits"}, 0)
    assert (
        len(
            {
                base,
                node_key("train", {"sparsity": 0.5}, "p", {"source": "digits"}, 0),
                node_key("prune", {"sparsity": 0.6}, "p", {"source": "digits"}, 0),
                node_key("prune", {"sparsity": 0.5}, "q", {"source": "digits"}, 0),
                node_key("prune", {"sparsity": 0.5}, "p", {"source": "other"}, 0),
                node_key("prune", {"sparsity": 0.5}, "p", {"source": "digits"}, 1),
            }
        )
        == 6
    )


def test_knob_labels_and_cartesian_product(tmp_path: Path) -> None:
    path = tmp_path / "k.yaml"
    path.write_text(
        textwrap.dedent("""\
        name: k
        train: {learning_rate: {sweep: [0.001, 0.01]}}
        pipeline:
          - stage: train
          - stage: prune
            sparsity: {sweep: [0.5, 0.8, 0.9]}
          - stage: prune
            sparsity: {sweep: [0.95]}
        """)
    )
    source = load_source(path)
    knobs = find_knobs(source)
    assert [k.label for k in knobs] == ["train.learning_rate", "prune.sparsity", "prune2.sparsity"]
    assignments = expand(source, knobs)
    assert len(assignments) == 2 * 3 * 1
    assignments[0].doc["pipeline"][1]["sparsity"] = 0.1  # deep copies: no leaks between variants
    assert assignments[1].doc["pipeline"][1]["sparsity"] == 0.8


def test_too_many_variants_is_an_error(tmp_path: Path) -> None:
    values = list(range(1, 102))
    path = tmp_path / "big.yaml"
    path.write_text(
        f"name: big\ntrain: {{epochs: {{sweep: {values}}}, batch_size: {{sweep: {values}}}}}\n"
        "pipeline: [{stage: train}]\n"
    )
    with pytest.raises(RecipeError, match=f"the limit is {MAX_VARIANTS:,}"):
        load_plan(path)


def test_a_stage_version_bump_changes_only_that_stages_keys() -> None:
    spec = {"source": "digits"}
    assert node_key("quantize", {}, "p", spec, 0) == node_key("quantize", {}, "p", spec, 0, 1)
    assert node_key("quantize", {}, "p", spec, 0) != node_key("quantize", {}, "p", spec, 0, 2)
