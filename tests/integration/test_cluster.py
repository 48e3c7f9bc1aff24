"""The cluster stage really limits distinct weights, and keeps a pruned model's zeros."""

from __future__ import annotations

import csv
import shutil
import textwrap
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from effcli.cli.main import app
from effcli.errors import RecipeError
from effcli.plan import load_plan

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]

RECIPE = """\
name: clustered
extends: base
train: {epochs: 4, early_stopping: {enabled: false}}
pipeline:
  - stage: train
    width_multiplier: 0.125
  - stage: prune
    enabled: {sweep: [false, true]}
    sparsity: 0.5
    epochs: 3
  - stage: cluster
    clusters: 8
    epochs: 1
"""


def test_cluster_stage_limits_unique_weights_and_keeps_sparsity(tmp_path: Path) -> None:
    from effcli._tf import keras

    shutil.copytree(ROOT / "configs", tmp_path / "configs")
    recipe = tmp_path / "clustered.yaml"
    recipe.write_text(RECIPE)
    plan = load_plan(recipe)
    preserve = {
        v.knobs["prune.enabled"]: plan.nodes[v.leaf].resolved["preserve_sparsity"]
        for v in plan.variants
    }
    assert preserve == {False: False, True: True}  # decided at plan time, part of the key

    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["run", str(recipe), "--out", str(out)])
    assert result.exit_code == 0, result.output
    with open(out / "results.csv", newline="") as handle:
        rows = {r["prune.enabled"]: r for r in csv.DictReader(handle)}
    for pruned, row in rows.items():
        model = keras.models.load_model(
            out / "artifacts" / row["variant"] / "model.keras", compile=False
        )
        kernels = [layer.kernel.numpy() for layer in model.layers if hasattr(layer, "kernel")]
        inner = kernels[1:-1]  # first and last layers are left alone by default
        allowed = 8 + (1 if pruned == "True" else 0)  # zero is kept beside the centroids
        assert max(len(np.unique(k)) for k in inner) <= allowed
        assert int(row["cluster_max_unique_weights"]) == max(len(np.unique(k)) for k in inner)
        if pruned == "True":
            zeros = sum(int((k == 0).sum()) for k in inner) / sum(k.size for k in inner)
            assert zeros == pytest.approx(0.5, abs=0.02)
    # Clustering shows in compressed size, not raw size.
    assert int(rows["False"]["gzip_bytes"]) < int(rows["False"]["tflite_bytes"]) * 0.8


def test_preserve_sparsity_without_prune_is_refused(tmp_path: Path) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        textwrap.dedent("""\
        name: r
        pipeline:
          - stage: train
          - stage: cluster
            clusters: 8
            preserve_sparsity: true
        """)
    )
    with pytest.raises(RecipeError, match="preserve_sparsity needs a prune stage earlier"):
        load_plan(recipe)
