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
    assert lines[0].startswith("run,variant,label,pipeline") and len(lines) == 3
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


WIDE = (
    "variant,label,pipeline,status,error,train.width_multiplier,prune.enabled,prune.sparsity,"
    "quantize.mode,accuracy,tflite_accuracy,tflite_bytes,gzip_bytes,latency_ms_p50,params,"
    "sparsity\n"
    "a1b2c3d4e5f6,w0.25 prune50% int8,train>prune>quantize,ok,,0.25,True,0.5,int8,0.9,0.91,"
    "20000,12000,0.01,9000,0.5\n"
    "f6e5d4c3b2a1,w1.0 int8,train>quantize,ok,,1.0,False,,int8,0.97,0.96,90000,60000,0.03,"
    "60000,0.0\n"
)


def header_names(lines: list[str]) -> list[str]:
    """The table's column names: its header lines (a statistic's suffix sits on a second line,
    `tflite_accuracy` / `ci`) joined per column with `_`."""
    top = next(i for i, line in enumerate(lines) if line.startswith("┏"))
    end = next(i for i, line in enumerate(lines) if line.startswith("┡"))
    rows = [[c.strip() for c in line.strip("┃").split("┃")] for line in lines[top + 1 : end]]
    return ["_".join(part for part in parts if part) for parts in zip(*rows, strict=True)]


@pytest.fixture
def wide_run(tmp_path: Path) -> Path:
    (tmp_path / "wide").mkdir()
    (tmp_path / "wide" / "results.csv").write_text(WIDE)
    return tmp_path / "wide"


@pytest.mark.parametrize("width", [80, 100, 160])
def test_table_fits_the_terminal_and_says_what_it_left_out(
    wide_run: Path, width: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    from effcli.cli import _common

    monkeypatch.setattr(_common.console, "width", width)
    result = CliRunner().invoke(app, ["frontier", str(wide_run)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert max(len(line) for line in lines) <= width
    table = [line for line in lines if line[:1] in "┏┃┡│└"]
    assert table and all(line[-1] in "┓┃┩│┘" for line in table)  # whole, not cropped
    assert "w0.25 prune50% int8" in result.output and "a1b2c3d4e5f6" not in lines[2]
    shown = header_names(lines)
    # Headers are whole names (never `prune.enabl ed`); what did not fit is listed.
    assert shown[:2] == ["label", "tflite_accuracy"]
    names = {*WIDE.splitlines()[0].split(","), "tflite_accuracy_ci", "vs_smaller"}
    assert all(c in names for c in shown), shown
    if width < 160:
        assert "not shown (terminal width" in result.output and "prune.enabled" in result.output


def test_columns_chooses_what_the_table_shows(wide_run: Path) -> None:
    result = CliRunner().invoke(app, ["frontier", str(wide_run), "--columns", "label,gzip_bytes"])
    assert result.exit_code == 0, result.output
    assert header_names(result.output.splitlines()) == ["label", "gzip_bytes"]
    assert "12.0 KB" in result.output and "not shown" not in result.output
    bad = CliRunner().invoke(app, ["frontier", str(wide_run), "--columns", "label,gzip_byte"])
    assert bad.exit_code == 2
    assert "--columns: no column 'gzip_byte' (did you mean 'gzip_bytes'?)" in bad.output


def test_rows_without_labels_read_by_their_id(run_dir: Path) -> None:
    result = CliRunner().invoke(app, ["frontier", str(run_dir), "--format", "csv"])
    header, first = result.output.splitlines()[:2]
    assert header.split(",")[:3] == ["run", "variant", "label"]
    assert first.split(",")[1] == first.split(",")[2] == "small"


def test_compare_accepts_labels(wide_run: Path) -> None:
    result = CliRunner().invoke(
        app, ["frontier", str(wide_run), "--compare", "w1.0 int8", "w0.25 prune50% int8"]
    )
    # No per-sample predictions in this folder: the comparison itself is refused, by name.
    assert "no column" not in result.output and "no ok variant" not in result.output
