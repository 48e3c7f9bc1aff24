"""`effdl data RECIPE`: loads like a run (paths relative to the recipe), prints the splits,
fails with one line, and never imports TensorFlow."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from effcli.cli.data import data
from tests.unit.test_data_sources import write_cifar

app = typer.Typer()
app.callback()(lambda: None)  # a group, so the command is invoked by name as in effdl
app.command("data")(data)


def recipe(folder: Path, data_yaml: str) -> Path:
    path = folder / "r.yaml"
    path.write_text(textwrap.dedent(f"name: t\ndata: {data_yaml}\npipeline: [{{stage: train}}]\n"))
    return path


@pytest.fixture
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run from a folder that is not the recipe's, so relative paths must follow the recipe."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    return tmp_path


def test_data_prints_source_shapes_classes_and_splits(elsewhere: Path) -> None:
    write_cifar(elsewhere / "cifar")
    path = recipe(
        elsewhere, "{source: cifar10, path: cifar, split: {train: 0.5, val: 0.3, test: 0.2}}"
    )
    result = CliRunner().invoke(app, ["data", str(path)])
    assert result.exit_code == 0, result.output
    lines = [line.strip() for line in result.output.splitlines()]
    assert lines[:4] == [
        "t: data source cifar10, seed 0",
        "kind: image; input shape: (32, 32, 3) float32",
        "classes: 10: airplane, automobile, bird, cat, deer, dog, frog, horse, ship, truck",
        "splits: test is the source's own 'test_batch'; train/val 0.625/0.375 of "
        "'data_batch_1..5' (stratified)",
    ]
    rows = {line.split()[1]: line.split() for line in lines if line.startswith("│ ")}
    assert rows["train"][3:8] == ["62", "│", "0", "│", "1"]
    assert rows["val"][3] == "38" and rows["test"][3] == "20"
    assert "2 2 2 2 2 2 2 2 2 2" in " ".join(rows["test"])  # test_batch: 2 per class


def test_data_error_is_one_line_exit_2(elsewhere: Path) -> None:
    """Found while validating the recipe, so it names the recipe file and line too."""
    path = recipe(elsewhere, "{source: cifar10, path: nowhere}")
    result = CliRunner().invoke(app, ["data", str(path)])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        f"error: {path}:2: data.path: {elsewhere / 'nowhere'} does not exist; put the CIFAR-10 "
        "python "
        "version (the extracted cifar-10-batches-py folder with data_batch_1..5 and "
        "test_batch) there, or fix data.path"
    ]


def test_data_command_does_not_import_tensorflow(tmp_path: Path) -> None:
    write_cifar(tmp_path / "cifar", per_batch=20)
    synthetic = recipe(tmp_path, "{source: synthetic, num_samples: 60, classes: 3}")
    cifar = tmp_path / "c.yaml"
    cifar.write_text("name: c\ndata: {source: cifar10, path: cifar}\npipeline: [{stage: train}]\n")
    code = (
        "import sys, typer\n"
        "from typer.testing import CliRunner\n"
        "from effcli.cli.data import data\n"
        "app = typer.Typer()\n"
        "app.callback()(lambda: None)\n"
        "app.command('data')(data)\n"
        f"for path in ({str(synthetic)!r}, {str(cifar)!r}):\n"
        "    r = CliRunner().invoke(app, ['data', path])\n"
        "    assert r.exit_code == 0, r.output\n"
        "print('tensorflow' in sys.modules, 'tf_keras' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False False"
