"""Plan-time rules of the shrink stages and named pipelines: exact messages, no TensorFlow."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from effcli.cli.main import app
from effcli.plan import load_plan
from tests.unit.recipes import error_of, plan_of

ROOT = Path(__file__).resolve().parents[2]


ORDER_CASES = [
    (
        "nothing trains after post-training quantization",
        "name: t\npipeline:\n  - stage: train\n  - stage: quantize\n  - stage: prune\n"
        "    sparsity: 0.5\n",
        "r.yaml:5: pipeline[2].stage: 'prune' cannot follow 'quantize' (it needs keras input, "
        "gets tflite); reorder the pipeline",
    ),
    (
        "qat cannot follow int8",
        "name: t\npipeline:\n  - stage: train\n  - {stage: quantize, mode: int8}\n"
        "  - {stage: quantize, mode: qat}\n",
        "r.yaml:5: pipeline[2].stage: 'quantize' cannot follow 'quantize' (it needs keras input, "
        "gets tflite); reorder the pipeline",
    ),
    (
        "a preserving scheme without what it preserves",
        "name: t\npipeline:\n  - stage: train\n  - {stage: quantize, mode: qat, scheme: pcqat}\n",
        "r.yaml:4: pipeline[1].scheme: scheme pcqat preserves what a cluster and a prune stage "
        "did, but none comes before; use scheme: auto or add the stage",
    ),
    (
        "QAT arguments on a post-training mode",
        "name: t\npipeline:\n  - stage: train\n  - {stage: quantize, mode: int8, epochs: 3}\n",
        "r.yaml:4: pipeline[1]: 'epochs' applies to mode qat only (mode is int8); remove it or "
        "set mode: qat",
    ),
    (
        "calibration on a mode that has none",
        "name: t\npipeline:\n  - stage: train\n  - {stage: quantize, mode: float16, "
        "calibration_samples: 9}\n",
        "r.yaml:4: pipeline[1]: 'calibration_samples' applies to modes int8 and qat (mode is "
        "float16); remove it",
    ),
    (
        "m_by_n with another sparsity",
        "name: t\npipeline:\n  - stage: train\n  - {stage: prune, structure: m_by_n, "
        "sparsity: 0.8}\n",
        "r.yaml:4: pipeline[1]: structure m_by_n [2, 4] fixes the sparsity at 0.5 (got 0.8); "
        "remove 'sparsity' or set it to 0.5",
    ),
    (
        "m_by_n with a schedule",
        "name: t\npipeline:\n  - stage: train\n  - {stage: prune, structure: m_by_n, "
        "ramp_end: 0.5}\n",
        "r.yaml:4: pipeline[1]: 'ramp_end' has no effect with structure m_by_n (the mask is set "
        "at the first step); remove it",
    ),
    (
        "a ramp that ends before it begins",
        "name: t\npipeline:\n  - stage: train\n  - {stage: prune, sparsity: 0.5, ramp_begin: 0.8, "
        "ramp_end: 0.5}\n",
        "r.yaml:4: pipeline[1]: ramp_begin (0.8) must be before ramp_end (0.5)",
    ),
    (
        "unstructured pruning without a target",
        "name: t\npipeline:\n  - stage: train\n  - {stage: prune}\n",
        "r.yaml:4: pipeline[1]: missing required key 'sparsity' (target fraction of zero "
        "weights, e.g. 0.5)",
    ),
    (
        "an unknown layer type",
        "name: t\npipeline:\n  - stage: train\n  - {stage: prune, sparsity: 0.5, layer_types: "
        "[Conv3D]}\n",
        "r.yaml:4: pipeline[1].layer_types[0]: must be one of 'Conv2D', 'Conv1D', 'Dense', "
        "'DepthwiseConv2D' or 'SeparableConv2D' (got 'Conv3D')",
    ),
    (
        "low_rank with both rank rules",
        "name: t\npipeline:\n  - stage: train\n  - {stage: low_rank, rank: 4, energy: 0.9}\n",
        "r.yaml:4: pipeline[1]: give exactly one of 'rank' (e.g. 16) or 'energy' (e.g. 0.9) to "
        "choose the rank",
    ),
    (
        "pipeline and pipelines together",
        "name: t\npipeline:\n  - stage: train\npipelines:\n  a:\n    - stage: train\n",
        "r.yaml:4: pipelines: give either 'pipeline' (one list) or 'pipelines' (named lists), "
        "not both",
    ),
    (
        "an error inside a named pipeline points into it",
        "name: t\npipelines:\n  small:\n    - stage: train\n  pruned:\n    - stage: train\n"
        "    - {stage: prune, sparsity: 1.5}\n",
        "r.yaml:7: pipelines.pruned[1].sparsity: must be < 1.0 (got 1.5); allowed: target "
        "fraction of zero weights in pruned kernels (channels: of filters removed), 0 <= s < 1",
    ),
    (
        "a bad pipeline name",
        "name: t\npipelines:\n  'no spaces':\n    - stage: train\n",
        "r.yaml:3: pipelines.no spaces: invalid pipeline name 'no spaces': use 1-40 letters, "
        "digits, '_' or '-'",
    ),
]


@pytest.mark.parametrize(
    ("text", "message"), [c[1:] for c in ORDER_CASES], ids=[c[0] for c in ORDER_CASES]
)
def test_rule_gives_exact_message(tmp_path: Path, text: str, message: str) -> None:
    assert error_of(tmp_path, text) == message


def test_cluster_after_prune_without_preserve_warns(tmp_path: Path) -> None:
    text = (
        "name: t\npipeline:\n  - stage: train\n  - {stage: prune, sparsity: 0.5}\n"
        "  - stage: cluster\n    clusters: 8\n    preserve_sparsity: false\n"
    )
    plan = plan_of(tmp_path, text)
    assert [w.replace(str(tmp_path) + "/", "") for w in plan.warnings] == [
        "r.yaml:7: pipeline[2].preserve_sparsity: clustering after prune with "
        "preserve_sparsity: false refills the pruned zeros (the sparsity is lost); drop the key "
        "to keep them"
    ]
    path = tmp_path / "r.yaml"
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 0
    assert "warning:" in result.output and "refills the pruned zeros" in result.output
    # Default: zeros kept, no warning.
    assert not plan_of(tmp_path, text.replace("    preserve_sparsity: false\n", "")).warnings


def test_qat_scheme_follows_what_came_before(tmp_path: Path) -> None:
    text = (
        "name: t\npipeline:\n  - stage: train\n"
        "  - {stage: prune, sparsity: 0.5, enabled: {sweep: [false, true]}}\n"
        "  - {stage: cluster, clusters: 8, enabled: {sweep: [false, true]}}\n"
        "  - {stage: quantize, mode: qat}\n"
    )
    plan = plan_of(tmp_path, text)
    schemes = {
        (v.knobs["prune.enabled"], v.knobs["cluster.enabled"]): plan.nodes[v.leaf].resolved[
            "scheme"
        ]
        for v in plan.variants
    }
    assert schemes == {
        (False, False): "default",
        (True, False): "pqat",
        (False, True): "cqat",
        (True, True): "pcqat",
    }
    assert all(plan.nodes[v.leaf].trains for v in plan.variants)  # QAT trains


def test_post_training_quantization_is_not_a_training(tmp_path: Path) -> None:
    plan = plan_of(
        tmp_path,
        "name: t\npipeline:\n  - stage: train\n  - {stage: quantize, mode: {sweep: [dynamic, "
        "float16, int8]}}\n",
    )
    assert [plan.nodes[v.leaf].trains for v in plan.variants] == [False, False, False]
    # Arguments that do not change a mode's output do not change its key.
    keys = {v.knobs["quantize.mode"]: plan.nodes[v.leaf].resolved for v in plan.variants}
    assert "epochs" not in keys["int8"] and "calibration_samples" not in keys["dynamic"]


def test_named_pipelines_share_their_common_prefix(tmp_path: Path) -> None:
    plan = plan_of(
        tmp_path,
        "name: t\npipelines:\n  plain:\n    - &base {stage: train, width_multiplier: 0.5}\n"
        "    - {stage: quantize}\n  pruned:\n    - *base\n"
        "    - {stage: prune, sparsity: {sweep: [0.5, 0.8]}}\n    - {stage: quantize}\n",
    )
    assert [v.branch for v in plan.variants] == ["plain", "pruned", "pruned"]
    roots = {v.nodes[0] for v in plan.variants}
    assert len(roots) == 1  # one training of the base for every pipeline
    assert plan.variants[1].knobs == {"prune.sparsity": 0.5}
    assert [k.label for k in plan.knobs] == ["prune.sparsity"]


def test_shrink_tour_plans_one_base_for_every_technique() -> None:
    plan = load_plan(ROOT / "recipes" / "shrink_tour.yaml")
    assert len({v.nodes[0] for v in plan.variants}) == 1
    kinds = {n.kind for n in plan.nodes.values()}
    assert kinds == {"train", "prune", "cluster", "low_rank", "quantize"}
    modes = {n.resolved["mode"] for n in plan.nodes.values() if n.kind == "quantize"}
    assert modes == {"dynamic", "float16", "int8", "qat"}
    schemes = {n.resolved.get("scheme") for n in plan.nodes.values() if n.kind == "quantize"}
    assert {"default", "pqat", "cqat", "pcqat"} <= schemes
