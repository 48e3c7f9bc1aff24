"""`effdl frontier` through the CLI: output formats, errors, and no TensorFlow import."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from effcli.cli.main import app

CSV = """variant,pipeline,status,error,train.width_multiplier,tflite_accuracy,tflite_bytes,latency_ms_p50
small,train>quantize,ok,,0.25,0.95,50000,0.01
mid,train>quantize,ok,,0.5,0.94,120000,0.02
big,train>quantize,ok,,1.0,0.98,400000,0.03
bad,train>quantize,failed,train: diverged,2.0,,,
"""


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "results.csv").write_text(CSV)
    return tmp_path / "run"


def test_table_lists_the_frontier(run_dir: Path) -> None:
    result = CliRunner().invoke(app, ["frontier", str(run_dir)])
    assert result.exit_code == 0, result.output
    assert "2 of 3 ok variants; 1 failed" in result.output
    assert "small" in result.output and "big" in result.output and "mid" not in result.output
    assert "50.0 KB" in result.output


def test_all_marks_frontier_rows(run_dir: Path) -> None:
    result = CliRunner().invoke(app, ["frontier", str(run_dir), "--all"])
    assert result.exit_code == 0
    marked = [line for line in result.output.splitlines() if "★" in line]
    assert len(marked) == 2 and "mid" in result.output


def test_csv_and_json_formats(run_dir: Path) -> None:
    as_csv = CliRunner().invoke(app, ["frontier", str(run_dir), "--format", "csv"])
    assert as_csv.exit_code == 0
    lines = as_csv.output.strip().splitlines()
    assert lines[0].startswith("run,variant,pipeline") and len(lines) == 3
    as_json = CliRunner().invoke(
        app,
        [
            "frontier",
            str(run_dir),
            "--all",
            "--format",
            "json",
            "-f",
            "tflite_bytes",
            "-f",
            "latency_ms_p50",
        ],
    )
    records = json.loads(as_json.output)
    assert {r["variant"]: r["on_frontier"] for r in records} == {
        "small": True,
        "mid": False,
        "big": True,
    }


def test_bad_column_is_one_line_exit_2(run_dir: Path) -> None:
    result = CliRunner().invoke(app, ["frontier", str(run_dir), "--quality", "tflite_acc"])
    assert result.exit_code == 2
    assert (
        "error: --quality tflite_acc: no such column (did you mean 'tflite_accuracy'?)"
        in result.output
    )
    assert "Traceback" not in result.output


def test_frontier_does_not_import_tensorflow(run_dir: Path) -> None:
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from effcli.cli.main import app\n"
        f"r = CliRunner().invoke(app, ['frontier', {str(run_dir)!r}])\n"
        "assert r.exit_code == 0, r.output\n"
        "print('tensorflow' in sys.modules, 'tf_keras' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False False"
