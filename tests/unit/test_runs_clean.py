"""`effdl runs` and `effdl clean --cache-only` on run directories built by hand (no TensorFlow):
what is listed, what is freed and what stays, the run lock, and a clean cut short."""

from __future__ import annotations

import csv
import fcntl
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from effcli import _atomic
from effcli.cli.main import app
from effcli.cli.runs import ago, format_size
from effcli.results import RunDir
from effcli.results.inventory import clean_cache, describe, find_run_dirs

MODEL = b"k" * 5000  # a model.keras: the cache entry's file, hard-linked from the artifact
ALT = b"a" * 3000  # a cache-only file (an intermediate node's model)


def make_run(
    root: Path,
    name: str = "tiny",
    rows: tuple[tuple[str, str, int], ...] = (("v1", "ok", 0), ("v2", "failed", 0)),
    planned: tuple[str, ...] = ("v1", "v2"),
    replicates: int = 1,
) -> RunDir:
    """A run directory as `effdl run` leaves it: results, recipe, plan, run.json, split, test
    set, two cache entries (one linked from an artifact), one artifact folder, a study."""
    run = RunDir(root)
    root.mkdir(parents=True)
    columns = ["variant", "pipeline", "status", "error", "replicate"]
    with open(run.results, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for variant, status, replicate in rows:
            writer.writerow([variant, "train", status, "", replicate])
    run.recipe.write_text(f"name: {name}\n")
    run.plan.write_text(json.dumps({"name": name, "variants": [{"variant": v} for v in planned]}))
    run.run_json.write_text(json.dumps({"name": name, "replicates": replicates}))
    run.split_json.write_text("{}")
    run.run_lock.touch()  # every `effdl run` session leaves it
    run.test_npz.write_bytes(b"t" * 700)
    run.labels.write_bytes(b"l" * 100)
    for key, payload in (("leaf", MODEL), ("base", ALT)):
        node = run.node(key)
        node.mkdir(parents=True)
        (node / "meta.json").write_text("{}")
        (node / "model.keras").write_bytes(payload)
    artifact = run.artifact("v1").path
    artifact.mkdir(parents=True)
    os.link(run.node("leaf") / "model.keras", artifact / "model.keras")
    (artifact / "model.tflite").write_bytes(b"f" * 400)
    run.studies.mkdir()
    (run.studies / "study.sqlite").write_bytes(b"s" * 200)
    return run


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_runs_lists_every_run_directory_with_counts_and_sizes(tmp_path: Path) -> None:
    make_run(tmp_path / "a" / "tiny")
    make_run(
        tmp_path / "b",
        name="reps",
        rows=(("v1", "ok", 0), ("v1", "ok", 1), ("v1", "ok", 2)),
        planned=("v1", "v2"),
        replicates=3,
    )
    measured = tmp_path / "measured"
    measured.mkdir()
    (measured / "results.csv").write_text("variant,pipeline,status,error\nm,measure,ok,\n")
    code, output = invoke("runs", str(tmp_path), "--format", "json")
    assert code == 0, output
    listed = {Path(r["path"]).name: r for r in json.loads(output)}
    assert set(listed) == {"tiny", "b", "measured"}  # artifacts/ and cache/ are not searched
    tiny = listed["tiny"]
    assert (tiny["name"], tiny["kind"], tiny["rows"], tiny["ok"], tiny["failed"]) == (
        "tiny",
        "run",
        2,
        1,
        1,
    )
    assert tiny["recipe"] == str(tmp_path / "a" / "tiny" / "recipe.yaml")
    # The linked model.keras counts once in the total, and not in what a clean frees.
    assert tiny["cache_bytes"] == len(ALT) + 2 * len("{}")
    small = sum(len(p.read_bytes()) for p in (tmp_path / "a" / "tiny").rglob("*") if p.is_file())
    assert tiny["total_bytes"] == small - len(MODEL)
    reps = listed["b"]
    assert (reps["rows"], reps["variants"], reps["planned_variants"], reps["replicates"]) == (
        3,
        1,
        2,
        3,
    )
    assert listed["measured"]["kind"] == "measure" and listed["measured"]["recipe"] is None
    assert tiny["last_change"].startswith(time.strftime("%Y-%m-%d"))

    code, output = invoke("runs", str(tmp_path))
    assert code == 0, output
    assert "3 run directories" in output and "1 of 2" in output
    assert "measured (effdl measure)" in output
    assert " s ago)" in output


def test_runs_of_an_empty_or_missing_folder(tmp_path: Path) -> None:
    assert invoke("runs", str(tmp_path)) == (
        0,
        f"no run directories under {tmp_path} (a run directory holds a results.csv)\n",
    )
    assert invoke("runs", str(tmp_path), "--format", "json") == (0, "[]\n")
    code, output = invoke("runs", str(tmp_path / "nope"))
    assert code == 2
    assert output.strip() == (
        f"error: {tmp_path / 'nope'}: no such folder (runs are written to results/<name>/)"
    )


def test_ago() -> None:
    assert [ago(1000.0 - s, now=1000.0) for s in (5, 300, 3 * 3600, 5 * 86400)] == [
        "5 s ago",
        "5 min ago",
        "3 h ago",
        "5 d ago",
    ]


def test_runs_and_clean_do_not_import_tensorflow(tmp_path: Path) -> None:
    make_run(tmp_path / "r")
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from effcli.cli.main import app\n"
        f"for args in (['runs', {str(tmp_path)!r}], ['clean', {str(tmp_path / 'r')!r}, "
        "'--cache-only']):\n"
        "    r = CliRunner().invoke(app, args)\n"
        "    assert r.exit_code == 0, r.output\n"
        "print(*(m in sys.modules for m in ('tensorflow', 'tf_keras', 'pandas')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False False False"


def test_clean_frees_the_cache_and_keeps_everything_else(tmp_path: Path) -> None:
    run = make_run(tmp_path / "r")
    before = tree(run.root)
    code, output = invoke("clean", str(run.root), "--cache-only", "--dry-run")
    assert code == 0, output
    assert tree(run.root) == before  # a dry run touches nothing
    assert "would remove cache/ (2 nodes, 8.0 KB; 5.0 KB of it stays, linked from artifacts/)" in (
        output
    )
    assert "would free 3.0 KB" in output

    code, output = invoke("clean", str(run.root), "--cache-only")
    assert code == 0, output
    after = tree(run.root)
    assert not run.cache.exists()
    assert {k: v for k, v in before.items() if not k.startswith("cache/")} == after
    assert after["artifacts/v1/model.keras"] == MODEL  # the hard link kept the bytes
    kept = format_size(sum(len(v) for v in after.values()))  # what is really left
    assert output.splitlines() == [
        "remove cache/ (2 nodes, 8.0 KB; 5.0 KB of it stays, linked from artifacts/)",
        f"free 3.0 KB, keep {kept}: results.csv, artifacts/ (1), recipe.yaml, plan.json, "
        "run.json, split.json, test.npz, test_labels.npy, studies/",
        "a rerun of this recipe trains nothing: its 2 recorded variants are skipped; variants "
        "you add later (or --retry-failed) retrain the shared nodes they would have found in "
        "the cache",
    ]

    code, output = invoke("clean", str(run.root), "--cache-only")
    assert code == 0
    assert output.startswith(f"nothing to free in {run.root}: no cache/ (kept {kept}: ")


def test_clean_is_refused_while_a_run_holds_the_lock(tmp_path: Path) -> None:
    run = make_run(tmp_path / "r")
    with open(run.run_lock, "a") as lock:  # as effcli.execute.workspace.Workspace.session
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        for extra in ((), ("--dry-run",)):
            code, output = invoke("clean", str(run.root), "--cache-only", *extra)
            assert code == 2
            assert output.strip() == (
                f"error: {run.root}: an effdl run is using this directory; clean it after the "
                "run ends"
            )
        fcntl.flock(lock, fcntl.LOCK_UN)
    assert run.cache.is_dir()
    assert invoke("clean", str(run.root), "--cache-only")[0] == 0


@pytest.mark.parametrize(
    ("setup", "args", "message"),
    [
        ("run", (), "effdl clean: only --cache-only is supported (deletes cache/, keeps results "
         "and artifacts); to delete the whole run, remove {root} yourself"),
        ("missing", ("--cache-only",), "{root}: no such run directory"),
        ("empty", ("--cache-only",), "{root}: not a run directory (no run.json); give a folder "
         "'effdl run' wrote, e.g. results/<name>"),
        ("measure", ("--cache-only",), "{root}: results of 'effdl measure --out' (no cache to "
         "free); give a folder 'effdl run' wrote, e.g. results/<name>"),
    ],
)  # fmt: skip
def test_clean_refusals_are_one_line(
    tmp_path: Path, setup: str, args: tuple[str, ...], message: str
) -> None:
    root = tmp_path / "r"
    if setup == "run":
        make_run(root)
    elif setup in ("empty", "measure"):
        root.mkdir()
        if setup == "measure":
            (root / "results.csv").write_text("variant,pipeline,status,error\n")
    code, output = invoke("clean", str(root), *args)
    assert code == 2
    assert output.strip() == "error: " + message.format(root=root)
    if setup == "run":
        assert (root / "cache").is_dir()


def test_a_clean_cut_short_leaves_only_a_temporary_the_next_one_sweeps(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = make_run(tmp_path / "r")
    real_rmtree = shutil.rmtree

    def killed(path: str | Path, *args: object, **kwargs: object) -> None:
        if ".tmp-clean" in str(path) and not kwargs.get("ignore_errors"):
            raise KeyboardInterrupt  # killed while deleting
        real_rmtree(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(shutil, "rmtree", killed)
    with pytest.raises(KeyboardInterrupt):
        clean_cache(run.root)
    monkeypatch.setattr(shutil, "rmtree", real_rmtree)
    # At once without its cache: nothing half-deleted under cache/ for a run to mistake.
    assert not run.cache.exists()
    (leftover,) = run.root.glob(_atomic.TEMP_GLOB)
    assert leftover.name == f".cache.{os.getpid()}.tmp-clean"
    assert describe(run.root).total_bytes > 0

    result = clean_cache(run.root)
    assert result.leftovers == [leftover] and result.leftover_bytes == len(ALT) + 2 * len("{}")
    assert not leftover.exists()
    assert (run.artifact("v1").keras).read_bytes() == MODEL


def test_find_run_dirs_skips_hidden_folders_and_takes_a_run_itself(tmp_path: Path) -> None:
    make_run(tmp_path / "r")
    hidden = tmp_path / ".r.123.tmp"
    hidden.mkdir()
    (hidden / "results.csv").write_text("variant,status\n")
    assert find_run_dirs(tmp_path) == [tmp_path / "r"]
    assert find_run_dirs(tmp_path / "r") == [tmp_path / "r"]  # PATH may be the run itself


def test_runs_searches_effdl_results_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_run(tmp_path / "elsewhere" / "tiny")
    monkeypatch.setenv("EFFDL_RESULTS", str(tmp_path / "elsewhere"))
    code, output = invoke("runs", "--format", "json")
    assert code == 0, output
    assert [r["name"] for r in json.loads(output)] == ["tiny"]
