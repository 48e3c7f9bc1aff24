"""`--help`, `validate` and `plan` never import TensorFlow (it costs seconds)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_fast_commands_do_not_import_tensorflow(tmp_path: Path) -> None:
    quickstart = str(ROOT / "recipes" / "quickstart.yaml")
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from effcli.cli.main import app\n"
        f"for args in (['--help'], ['validate', {quickstart!r}], ['plan', {quickstart!r}, '--out', {str(tmp_path)!r}]):\n"
        "    r = CliRunner().invoke(app, args)\n"
        "    assert r.exit_code == 0, r.output\n"
        "print('tensorflow' in sys.modules, 'tf_keras' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False False"
