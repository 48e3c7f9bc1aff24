"""Sweep expansion, content-hashed node keys and prefix sharing (no TensorFlow)."""

from __future__ import annotations

import hashlib
import textwrap
from pathlib import Path
from typing import Any

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
    assert len(plan.variants) == 9 * plan.replicates and plan.replicates == 3
    kinds = [n.kind for n in plan.nodes.values() if n.replicate == 0]
    assert (kinds.count("train"), kinds.count("prune"), kinds.count("quantize")) == (3, 6, 9)
    assert len(plan.nodes) == 18 * 3  # each replicate its own chains
    by_width: dict[tuple[float, int], set[str]] = {}
    for variant in plan.variants:
        width = variant.knobs["train.width_multiplier"]
        by_width.setdefault((width, variant.replicate), set()).add(variant.nodes[0])
    assert all(len(train_keys) == 1 for train_keys in by_width.values())  # once per replicate
    assert len(by_width) == 3 * 3


def test_disabled_stage_variants_are_not_duplicated() -> None:
    plan = load_plan(QUICKSTART)
    unpruned = [v for v in plan.first_replicates() if v.pipeline == "train>quantize"]
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


# Keys of the quickstart as effdl computed them before replicates existed (commit 87d2605):
# a run with one replicate must find every node those versions cached.
QUICKSTART_VARIANTS = [
    "9662f2c4c3e8",
    "767f7a710f89",
    "eb398df32bfd",
    "7bedb92bd3a6",
    "4a4645d3601a",
    "96bdf01627d6",
    "64e6a9107aeb",
    "2e1fb37dfceb",
    "9784ee6af228",
]
QUICKSTART_NODES_SHA256 = "dfe33337e1781e9db33a35ff97b0f90db7d8fa0dd871a1b4d35e868c79c4dc1b"
SHRINK_TOUR_NODES_SHA256 = "a99ca82095c681e2dc43d205fbc9f591e06a20d41bcbd6cfe482560afbc6417c"


def nodes_digest(plan: Any) -> str:
    return hashlib.sha256(",".join(sorted(plan.nodes)).encode()).hexdigest()


def test_one_replicate_keeps_the_keys_of_runs_before_replicates(tmp_path: Path) -> None:
    one = tmp_path / "configs"
    one.mkdir()
    (one / "base.yaml").write_text((ROOT / "configs" / "base.yaml").read_text())
    single = tmp_path / "quickstart.yaml"
    single.write_text(QUICKSTART.read_text().replace("replicates: 3\n", ""))
    plan = load_plan(single)
    assert plan.replicates == 1 and [v.id for v in plan.variants] == QUICKSTART_VARIANTS
    assert nodes_digest(plan) == QUICKSTART_NODES_SHA256
    # The replicated quickstart's replicate 0 is exactly those nodes.
    replicated = load_plan(QUICKSTART)
    first = {k: n for k, n in replicated.nodes.items() if n.replicate == 0}
    assert hashlib.sha256(",".join(sorted(first)).encode()).hexdigest() == QUICKSTART_NODES_SHA256
    tour = load_plan(ROOT / "recipes" / "shrink_tour.yaml")
    assert len(tour.nodes) == 17 and nodes_digest(tour) == SHRINK_TOUR_NODES_SHA256


def test_replicates_share_prefixes_per_replicate_and_keep_variant_ids(tmp_path: Path) -> None:
    one = recipe(tmp_path)
    three = tmp_path / "three.yaml"
    three.write_text(one.read_text().replace("seed: 0\n", "seed: 0\nreplicates: 3\n"))
    four = tmp_path / "four.yaml"
    four.write_text(one.read_text().replace("seed: 0\n", "seed: 0\nreplicates: 4\n"))
    p1, p3, p4 = load_plan(one), load_plan(three), load_plan(four)
    assert len(p3.variants) == 3 * len(p1.variants) and p3.replicates == 3
    # Replicate 0 is exactly the run without replicates; later ones add their own nodes.
    assert set(p1.nodes) <= set(p3.nodes) <= set(p4.nodes)
    assert len(p3.nodes) == 3 * len(p1.nodes)
    assert len(set(p4.nodes) - set(p3.nodes)) == len(p1.nodes)  # only replicate 3 is new
    ids = {v.id for v in p1.variants}
    assert {v.id for v in p3.variants} == ids  # one id per variant, for every replicate
    assert sorted({(v.replicate, v.replicate_seed) for v in p3.variants}) == [
        (0, 0),
        (1, 1),
        (2, 2),
    ]
    trains = [n for n in p3.nodes.values() if n.kind == "train"]
    assert sorted(n.seed for n in trains) == [0, 0, 1, 1, 2, 2]  # 2 widths x 3 replicates
    for variant in p3.variants:  # every node of a replicate's chain trains with its seed
        assert {p3.nodes[k].seed for k in variant.nodes} == {variant.replicate_seed}


def test_teachers_are_replicated_with_their_students(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(
        textwrap.dedent("""\
        name: t
        replicates: 2
        pipelines:
          wide: [{stage: train, width_multiplier: 0.5}]
          student: [{stage: distill, teacher: wide, width_multiplier: 0.25}]
        """)
    )
    plan = load_plan(path)
    for variant in plan.variants:
        node = plan.nodes[variant.leaf]
        if node.kind == "distill":
            (teacher,) = node.deps
            assert plan.nodes[teacher].replicate == variant.replicate


def test_deterministic_changes_every_key_only_when_on(tmp_path: Path) -> None:
    plain = recipe(tmp_path)
    on = tmp_path / "on.yaml"
    on.write_text(plain.read_text().replace("seed: 0\n", "seed: 0\ndeterministic: true\n"))
    off = tmp_path / "off.yaml"
    off.write_text(plain.read_text().replace("seed: 0\n", "seed: 0\ndeterministic: false\n"))
    assert set(load_plan(off).nodes) == set(load_plan(plain).nodes)
    deterministic = load_plan(on)
    assert not set(deterministic.nodes) & set(load_plan(plain).nodes)
    assert all(n.deterministic for n in deterministic.nodes.values())
