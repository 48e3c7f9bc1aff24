"""Learning curves: every epoch a node trains is kept (meta.json, nodes.json) and drawn in the
report per variant."""

from __future__ import annotations

import json
import math
from pathlib import Path

from typer.testing import CliRunner

from effcli.cli.main import app
from effcli.execute.workspace import LearningCurve
from effcli.report._curves import has_curves, render_curves
from tests.unit.test_cli_measure_report import fake_run


def test_a_new_fit_starts_at_epoch_one_and_nan_is_left_out() -> None:
    curve = LearningCurve()
    for epoch in (1, 2, 3, 1, 2):  # two fits in one node, e.g. two trials of a search
        curve.add(epoch, {"loss": 1.0 / epoch, "val_accuracy": math.nan, "epoch_seconds": 0.5})
    assert [(e["fit"], e["epoch"]) for e in curve.epochs] == [
        (0, 1),
        (0, 2),
        (0, 3),
        (1, 1),
        (1, 2),
    ]
    assert all("val_accuracy" not in e for e in curve.epochs)
    assert curve.epochs[1]["loss"] == 0.5
    json.dumps(curve.epochs, allow_nan=False)  # strict JSON: no NaN written


def history(epochs: int) -> list[dict[str, float]]:
    return [
        {"fit": 0, "epoch": e, "loss": 2.0 / e, "accuracy": 0.5 + e / 20, "val_loss": 2.2 / e,
         "val_accuracy": 0.45 + e / 20, "learning_rate": 1e-3, "epoch_seconds": 0.4}
        for e in range(1, epochs + 1)
    ]  # fmt: skip


def test_curves_render_as_a_png() -> None:
    nodes = [
        {"stage": "train", "history": history(5)},
        {"stage": "prune", "history": history(3)},
        {"stage": "quantize", "history": []},
    ]
    assert has_curves(nodes) and not has_curves([{"stage": "quantize", "history": []}])
    assert render_curves(nodes).startswith(b"\x89PNG")


def test_report_draws_each_variants_curves(tmp_path: Path) -> None:
    run_dir = fake_run(tmp_path / "run")
    nodes_file = run_dir / "artifacts" / "v1" / "nodes.json"
    nodes = json.loads(nodes_file.read_text())
    result = CliRunner().invoke(app, ["report", str(run_dir)])
    assert result.exit_code == 0, result.output
    html = (run_dir / "report.html").read_text()
    assert "<h3>Learning curves</h3>" in html and "no per-epoch history" in html
    nodes[0]["history"] = history(4)
    nodes_file.write_text(json.dumps(nodes))
    CliRunner().invoke(app, ["report", str(run_dir)])
    html = (run_dir / "report.html").read_text()
    assert 'alt="learning curves of v1" src="data:image/png;base64,iVBORw0KGgo' in html
