"""Third-party plug-ins (entry points): a broken one is one warning line, effdl keeps working."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from effcli import registry
from effcli.stages.base import stages

ROOT = Path(__file__).resolve().parents[2]


def installed_plugin(site: Path, group: str, target: str, code: str) -> None:
    """A distribution on `site` whose entry point `broken` in `group` is `target`."""
    dist = site / "effdl_broken_plugin-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: effdl-broken-plugin\nVersion: 0.1\n"
    )
    (dist / "entry_points.txt").write_text(f"[{group}]\nbroken = {target}\n")
    module = target.split(":")[0]
    (site / f"{module}.py").write_text(code)


def run_effdl(site: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": f"{site}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    return subprocess.run(
        [sys.executable, "-m", "effcli", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("group", "code"),
    [
        ("effdl.stages", "raise ImportError('needs a package that is not installed')\n"),
        ("effdl.data", "import not_a_module_anywhere\n"),
        ("effdl.models", "x = 1 / 0\n"),
    ],
)
def test_a_broken_plugin_is_one_warning_and_validate_still_works(
    tmp_path: Path, group: str, code: str
) -> None:
    installed_plugin(tmp_path, group, "effdl_broken_mod:Plugin", code)
    result = run_effdl(tmp_path, "validate", "recipes/quickstart.yaml")
    assert result.returncode == 0, result.stderr
    assert "is valid: 9 variant(s)" in result.stdout
    warnings = [line for line in result.stderr.splitlines() if "plug-in 'broken'" in line]
    assert len(warnings) == 1, result.stderr
    assert "failed to load and is ignored" in warnings[0] and "Traceback" not in result.stderr


def test_a_plugin_that_does_not_subclass_the_base_is_refused_in_one_line(tmp_path: Path) -> None:
    code = (
        "from effcli.stages.base import stages\n"
        "@stages.register('not_a_stage')\n"
        "class Plugin:\n"
        "    pass\n"
    )
    installed_plugin(tmp_path, "effdl.stages", "effdl_broken_mod:Plugin", code)
    result = run_effdl(tmp_path, "validate", "recipes/quickstart.yaml")
    assert result.returncode == 0, result.stderr
    (line,) = [x for x in result.stderr.splitlines() if "plug-in 'broken'" in x]
    assert "TypeError" in line and "must subclass Stage" in line


def test_registry_records_a_failed_entry_point_and_still_lists_the_built_ins(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class BrokenEntryPoint:
        name, value = "broken", "somewhere:Thing"

        def load(self) -> None:
            raise ModuleNotFoundError("No module named 'somewhere'")

    monkeypatch.setattr(registry, "entry_points", lambda group: [BrokenEntryPoint()])
    monkeypatch.setattr(stages, "_discovered", False)  # discover again, entry points included
    registry.plugin_problems()  # start clean
    assert {"train", "prune", "quantize"} <= set(stages.names())
    (problem,) = registry.plugin_problems()
    assert problem.startswith("stage plug-in 'broken' (somewhere:Thing, entry point group ")
    assert problem.endswith("ModuleNotFoundError: No module named 'somewhere'")
    assert registry.plugin_problems() == []  # reported once
