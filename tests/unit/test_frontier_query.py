"""`--where` parsing and units, filtering before the front, `--best`, many runs, the fast Pareto
sweep (checked against the definition), plots and the no-TensorFlow promise (no TensorFlow)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from effcli.cli.main import app
from effcli.errors import UsageError
from effcli.frontier import load_results, pareto_mask
from effcli.frontier import pareto as pareto_module
from effcli.frontier.constraints import NoMatch, apply_constraints, parse_constraint
from effcli.frontier.query import compute_frontier

# -- parsing ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "column", "op", "number"),
    [
        ("tflite_bytes<100KB", "tflite_bytes", "<", 100_000),
        ("gzip_bytes < 1.5MB", "gzip_bytes", "<", 1_500_000),
        ("gzip_bytes<=64KiB", "gzip_bytes", "<=", 65_536),
        ("peak_memory_bytes>1GB", "peak_memory_bytes", ">", 1e9),
        ("tflite_bytes<2mib", "tflite_bytes", "<", 2 * 1024**2),
        ("tflite_bytes<=5000", "tflite_bytes", "<=", 5000),
        ("latency_ms_p50<=2", "latency_ms_p50", "<=", 2.0),
        ("latency_ms_p50<=2ms", "latency_ms_p50", "<=", 2.0),
        ("latency_ms_p95<0.003s", "latency_ms_p95", "<", 3.0),
        ("latency_ms_p50<500us", "latency_ms_p50", "<", 0.5),
        ("train_seconds<2min", "train_seconds", "<", 120.0),
        ("train_seconds<=1500ms", "train_seconds", "<=", 1.5),
        ("tflite_accuracy>=0.95", "tflite_accuracy", ">=", 0.95),
        ("tflite_accuracy>=95%", "tflite_accuracy", ">=", 0.95),
        ("kernel_sparsity>= 50 %", "kernel_sparsity", ">=", 0.5),
        ("prune.sparsity==0.8", "prune.sparsity", "==", 0.8),
        ("train.width_multiplier!=1", "train.width_multiplier", "!=", 1.0),
        ("macs<1e6", "macs", "<", 1e6),
        ("params = 1_000", "params", "==", 1000),
    ],
)
def test_parse_numbers_and_units(expression: str, column: str, op: str, number: float) -> None:
    constraint = parse_constraint(expression)
    assert (constraint.column, constraint.op) == (column, op)
    assert constraint.number == pytest.approx(number, rel=1e-12)


@pytest.mark.parametrize(
    ("expression", "column", "op", "text"),
    [
        ("pipeline==train>prune>quantize", "pipeline", "==", "train>prune>quantize"),
        ("pipeline!=train>quantize", "pipeline", "!=", "train>quantize"),
        ("pipeline=='train > quantize'", "pipeline", "==", "train > quantize"),
        ('variant=="12"', "variant", "==", "12"),
        ("prune.enabled==true", "prune.enabled", "==", "true"),
        ("branch==pcqat*", "branch", "==", "pcqat*"),
    ],
)
def test_parse_text(expression: str, column: str, op: str, text: str) -> None:
    constraint = parse_constraint(expression)
    assert (constraint.column, constraint.op, constraint.text, constraint.number) == (
        column,
        op,
        text,
        None,
    )


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        (
            "tflite_bytes 100KB",
            '--where "tflite_bytes 100KB": expected COLUMN OP VALUE with OP one of < <= > >= == != '
            "(e.g. --where 'tflite_bytes<100KB')",
        ),
        (
            "tflite_bytes<",
            '--where "tflite_bytes<": expected COLUMN OP VALUE with OP one of < <= > >= == != '
            "(e.g. --where 'tflite_bytes<100KB')",
        ),
        (
            "tflite_accuracy>=5KB",
            '--where "tflite_accuracy>=5KB": unit KB does not fit tflite_accuracy, a fraction; '
            "write a plain number (0.95) or a percentage (95%)",
        ),
        (
            "tflite_bytes<2ms",
            '--where "tflite_bytes<2ms": unit ms does not fit tflite_bytes, a size in bytes; use '
            "B, KB, MB, GB (1000-based) or KiB, MiB, GiB (1024-based)",
        ),
        (
            "latency_ms_p50<1MB",
            '--where "latency_ms_p50<1MB": unit MB does not fit latency_ms_p50, a time in '
            "milliseconds; use us, ms, s, min or h",
        ),
        (
            "params<5%",
            '--where "params<5%": unit % does not fit params, a plain number; write it without '
            "a unit",
        ),
        (
            "tflite_bytes<5XB",
            '--where "tflite_bytes<5XB": unit XB does not fit tflite_bytes, a size in bytes; use '
            "B, KB, MB, GB (1000-based) or KiB, MiB, GiB (1024-based)",
        ),
        (
            "tflite_accuracy>=95",
            '--where "tflite_accuracy>=95": tflite_accuracy is a fraction (1.0 = 100 %); write '
            "0.95 or 95%",
        ),
        (
            "pipeline<train",
            "--where \"pipeline<train\": 'train' is not a number; text compares only with == or !=",
        ),
    ],
)
def test_parse_errors_are_exact(expression: str, message: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_constraint(expression)
    assert str(caught.value) == message


def test_unknown_column_suggests_before_checking_units() -> None:
    columns = ["variant", "status", "tflite_bytes", "tflite_accuracy"]
    with pytest.raises(UsageError) as caught:
        parse_constraint("tflite_byte<100KB", columns)
    assert str(caught.value) == (
        "--where \"tflite_byte<100KB\": no such column tflite_byte (did you mean 'tflite_bytes'?)"
    )
    with pytest.raises(UsageError) as caught:
        parse_constraint("zzz>1", columns)
    assert str(caught.value) == (
        '--where "zzz>1": no such column zzz; columns: status, tflite_accuracy, tflite_bytes, '
        "variant"
    )


# -- filtering -------------------------------------------------------------------------------


def frame(rows: list[dict[str, object]], run: str = "r") -> pd.DataFrame:
    df = pd.DataFrame(rows)
    df.insert(0, "run", run)
    return df


ROWS = [
    # variant, pipeline, width, prune.enabled, accuracy, bytes, gzip, latency
    ("a", "train>quantize", 0.25, False, 0.90, 50_000, 45_000, 0.01),
    ("b", "train>prune>quantize", 0.25, True, 0.93, 50_000, 20_000, 0.01),
    ("c", "train>quantize", 0.5, False, 0.95, 120_000, 110_000, 0.02),
    ("d", "train>prune>quantize", 0.5, True, 0.96, 120_000, 50_000, 0.02),
    ("e", "train>quantize", 1.0, False, 0.99, 400_000, 380_000, 0.05),
    ("f", "train>prune>quantize", 1.0, True, 0.97, 400_000, 150_000, 0.05),
]


def results(run: str = "r") -> pd.DataFrame:
    keys = (
        "variant",
        "pipeline",
        "train.width_multiplier",
        "prune.enabled",
        "tflite_accuracy",
        "tflite_bytes",
        "gzip_bytes",
        "latency_ms_p50",
    )
    rows = [{**dict(zip(keys, r, strict=True)), "status": "ok"} for r in ROWS]
    return frame(rows, run)


def where(*expressions: str, df: pd.DataFrame | None = None) -> list:
    df = results() if df is None else df
    return [parse_constraint(e, list(df.columns)) for e in expressions]


def test_constraints_filter_before_the_front() -> None:
    df = results()
    # Unconstrained, e (0.99, 400 KB) is on the front and f (0.97, 400 KB) is not ...
    assert compute_frontier(df).front["variant"].tolist() == ["b", "d", "e"]
    # ... but once e is excluded, f is the best of the big models and joins the front.
    result = compute_frontier(df, where=where("pipeline==train>prune>quantize"))
    assert result.front["variant"].tolist() == ["b", "d", "f"]
    assert result.filtered == 3 and len(result.rows) == 3


def test_numeric_units_text_globs_and_booleans() -> None:
    df = results()

    def kept(*expressions: str) -> list[str]:
        return sorted(apply_constraints(df, where(*expressions))["variant"])

    assert kept("tflite_bytes<=120KB") == ["a", "b", "c", "d"]
    assert kept("tflite_bytes<0.12MB") == ["a", "b"]
    assert kept("gzip_bytes<48.9KiB") == ["a", "b", "d"]  # 48.9 KiB = 50,073.6 B
    assert kept("gzip_bytes<48.9KB") == ["a", "b"]
    assert kept("latency_ms_p50<15us") == ["a", "b"]
    assert kept("tflite_accuracy>=96%", "latency_ms_p50<=0.02") == ["d"]
    assert kept("pipeline!=train>quantize") == ["b", "d", "f"]
    assert kept("pipeline==train>p*") == ["b", "d", "f"]
    assert kept("prune.enabled==TRUE") == ["b", "d", "f"]
    assert kept("train.width_multiplier==0.5") == ["c", "d"]
    assert kept("variant==a") == ["a"]


def test_object_column_of_numbers_and_missing_values() -> None:
    df = results()
    df["prune.sparsity"] = pd.Series([None, "0.5", None, "0.8", None, "0.8"], dtype=object)
    kept = apply_constraints(df, where("prune.sparsity>=0.8", df=df))
    assert kept["variant"].tolist() == ["d", "f"]  # rows without the value never satisfy it
    kept = apply_constraints(df, where("prune.sparsity!=0.8", df=df))
    assert kept["variant"].tolist() == ["b"]


def test_type_mismatch_messages() -> None:
    df = results()
    with pytest.raises(UsageError) as caught:
        apply_constraints(df, where("tflite_bytes==big"))
    assert str(caught.value) == (
        "--where \"tflite_bytes==big\": tflite_bytes is numeric; 'big' is not a number"
    )
    with pytest.raises(UsageError) as caught:
        apply_constraints(df, where("pipeline<5"))
    assert str(caught.value) == (
        '--where "pipeline<5": pipeline is text; compare it with == or != (globs * ? [] allowed)'
    )


def test_no_match_names_what_each_constraint_keeps() -> None:
    df = results()
    with pytest.raises(NoMatch) as caught:
        compute_frontier(df, where=where("tflite_bytes<10KB"))
    assert caught.value.exit_code == 1
    assert str(caught.value) == (
        'no ok variant satisfies --where "tflite_bytes<10KB" (the smallest tflite_bytes is 50.0 KB)'
    )
    with pytest.raises(NoMatch) as caught:
        compute_frontier(df, where=where("tflite_bytes<100KB", "tflite_accuracy>0.995"))
    assert str(caught.value) == (
        'no ok variant satisfies every --where: "tflite_bytes<100KB" keeps 2 of 6, '
        '"tflite_accuracy>0.995" keeps 0 of 6 (the largest tflite_accuracy is 99.00 %)'
    )


# -- best ------------------------------------------------------------------------------------


def test_best_is_highest_quality_then_smallest_footprint_then_variant() -> None:
    df = frame(
        [
            {"variant": "z", "status": "ok", "tflite_accuracy": 0.97, "tflite_bytes": 100},
            {"variant": "y", "status": "ok", "tflite_accuracy": 0.97, "tflite_bytes": 90},
            {"variant": "x", "status": "ok", "tflite_accuracy": 0.97, "tflite_bytes": 90},
            {"variant": "w", "status": "ok", "tflite_accuracy": 0.90, "tflite_bytes": 10},
            {"variant": "v", "status": "failed", "tflite_accuracy": 1.0, "tflite_bytes": 1},
        ]
    )
    assert compute_frontier(df).best()["variant"].tolist() == ["x"]
    constrained = compute_frontier(df, where=where("tflite_bytes<95", df=df))
    assert constrained.best()["variant"].tolist() == ["x"]
    constrained = compute_frontier(df, where=where("tflite_bytes<50", df=df))
    assert constrained.best()["variant"].tolist() == ["w"]


def test_best_through_the_cli(tmp_path: Path) -> None:
    results().drop(columns="run").to_csv(tmp_path / "results.csv", index=False)
    runner = CliRunner()
    out = runner.invoke(app, ["frontier", str(tmp_path), "--best", "-w", "gzip_bytes<100KB"])
    assert out.exit_code == 0, out.output
    assert "Best: max tflite_accuracy, then min tflite_bytes" in out.output
    assert "best of 3 ok variants; 3 outside --where" in out.output
    body = [line for line in out.output.splitlines() if line.startswith("│")]
    assert len(body) == 1 and "│ d " in body[0]
    as_json = runner.invoke(
        app, ["frontier", str(tmp_path), "--best", "--format", "json", "-w", "tflite_bytes<1MB"]
    )
    record = json.loads(as_json.output)
    assert record["variant"] == "e" and "on_frontier" not in record
    as_csv = runner.invoke(app, ["frontier", str(tmp_path), "--best", "--format", "csv"])
    lines = as_csv.output.strip().splitlines()
    assert len(lines) == 2 and ",e," in lines[1]  # header + one row
    both = runner.invoke(app, ["frontier", str(tmp_path), "--best", "--all"])
    assert both.exit_code == 2 and "--best and --all cannot be combined" in both.output
    nothing = runner.invoke(app, ["frontier", str(tmp_path), "--best", "-w", "tflite_bytes<1KB"])
    assert nothing.exit_code == 1
    assert nothing.output.strip().startswith("error: no ok variant satisfies")
    typo = runner.invoke(app, ["frontier", str(tmp_path), "-w", "gzip_byte<1KB"])
    assert typo.exit_code == 2 and "(did you mean 'gzip_bytes'?)" in typo.output
    assert len(typo.output.strip().splitlines()) == 1


# -- several runs, several axes, stable order ------------------------------------------------


def test_several_runs_in_one_table_with_stable_order(tmp_path: Path) -> None:
    one, two = results("one").drop(columns="run"), results("two").drop(columns="run")
    two["tflite_accuracy"] = two["tflite_accuracy"] + 0.005  # run two is slightly better
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    one.to_csv(tmp_path / "one" / "results.csv", index=False)
    two.sample(frac=1.0, random_state=3).to_csv(tmp_path / "two" / "results.csv", index=False)
    df = load_results([tmp_path], warn=lambda _: None)
    result = compute_frontier(df, footprints=["gzip_bytes", "latency_ms_p50"])
    assert result.display_columns(False)[0] == "run"
    front = list(zip(result.front["run"], result.front["variant"], strict=True))
    assert front == [("two", "b"), ("two", "d"), ("two", "f"), ("two", "e")]
    shuffled = compute_frontier(
        df.sample(frac=1.0, random_state=7), footprints=["gzip_bytes", "latency_ms_p50"]
    )
    assert shuffled.rows[["run", "variant"]].equals(result.rows[["run", "variant"]])


def test_equal_rows_stay_together_in_a_fixed_order() -> None:
    rows = [
        {"variant": v, "status": "ok", "tflite_accuracy": 0.9, "tflite_bytes": 10} for v in "cab"
    ]
    df = pd.concat([frame(rows, "y"), frame(rows, "x")], ignore_index=True)
    result = compute_frontier(df)
    assert result.front["variant"].tolist() == ["a", "a", "b", "b", "c", "c"]
    assert result.front["run"].tolist() == ["x", "y", "x", "y", "x", "y"]


# -- the Pareto sweep against its definition --------------------------------------------------


def brute_force(values: np.ndarray, maximize: list[bool]) -> np.ndarray:
    """The definition, pair by pair (the old O(n^2) implementation)."""
    cost = values * np.where(np.asarray(maximize), -1.0, 1.0)
    valid = ~np.isnan(cost).any(axis=1)
    mask = np.zeros(len(cost), dtype=bool)
    c = cost[valid]
    if len(c):
        no_worse = (c[:, None, :] <= c[None, :, :]).all(axis=2)
        better = (c[:, None, :] < c[None, :, :]).any(axis=2)
        mask[np.flatnonzero(valid)] = ~(no_worse & better).any(axis=0)
    return mask


@settings(max_examples=150, deadline=None)
@given(
    st.integers(1, 3), st.lists(st.lists(st.integers(0, 4), min_size=4, max_size=4), max_size=40)
)
def test_sweep_matches_the_definition_with_ties(dims: int, rows: list[list[int]]) -> None:
    values = np.array(rows, dtype=float).reshape(len(rows), 4)[:, : dims + 1]
    if len(values) > 2:
        values[1, 0] = np.nan  # a row with a missing value is never on the front
    maximize = [True, *[False] * dims]
    assert pareto_mask(values, maximize).tolist() == brute_force(values, maximize).tolist()


def test_block_sweep_across_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pareto_module, "_BLOCK", 7)
    monkeypatch.setattr(pareto_module, "_FRONT_CHUNK", 5)
    rng = np.random.default_rng(1)
    values = rng.integers(0, 6, size=(300, 4)).astype(float)
    maximize = [True, False, False, True]
    assert pareto_mask(values, maximize).tolist() == brute_force(values, maximize).tolist()


def test_single_objective_keeps_every_best_row() -> None:
    assert pareto_mask(np.array([[1.0], [3.0], [3.0]]), [True]).tolist() == [False, True, True]


def test_100k_rows_front_is_correct(tmp_path: Path) -> None:
    """Correctness at scale only; the time is measured outside the tests."""
    rng = np.random.default_rng(0)
    n = 100_000
    size = rng.integers(10_000, 2_000_000, n)
    accuracy = np.round(0.5 + 0.45 * np.log(size) / np.log(2e6) + rng.normal(0, 0.03, n), 4)
    pd.DataFrame(
        {
            "variant": [f"v{i:06d}" for i in range(n)],
            "pipeline": np.where(rng.random(n) < 0.5, "train>quantize", "train>prune>quantize"),
            "status": np.where(rng.random(n) < 0.01, "failed", "ok"),
            "error": "",
            "tflite_accuracy": accuracy,
            "tflite_bytes": size,
        }
    ).to_csv(tmp_path / "results.csv", index=False)
    result = compute_frontier(load_results([tmp_path], warn=lambda _: None))
    rows = result.rows[["tflite_accuracy", "tflite_bytes"]].to_numpy(dtype=float)
    front = result.front[["tflite_accuracy", "tflite_bytes"]].to_numpy(dtype=float)
    assert 0 < len(front) < 200
    # Nothing dominates a front row ...
    no_worse = (rows[:, None, 0] >= front[None, :, 0]) & (rows[:, None, 1] <= front[None, :, 1])
    better = (rows[:, None, 0] > front[None, :, 0]) | (rows[:, None, 1] < front[None, :, 1])
    assert not (no_worse & better).any()
    # ... and a front row dominates every other row.
    others = result.rows[~result.rows["on_frontier"]][["tflite_accuracy", "tflite_bytes"]]
    o = others.to_numpy(dtype=float)
    covers = (front[None, :, 0] >= o[:, None, 0]) & (front[None, :, 1] <= o[:, None, 1])
    strictly = (front[None, :, 0] > o[:, None, 0]) | (front[None, :, 1] < o[:, None, 1])
    assert (covers & strictly).any(axis=1).all()
    # The front, sorted by size, climbs strictly in accuracy.
    assert (np.diff(front[:, 0]) > 0).all() and (np.diff(front[:, 1]) > 0).all()


# -- plots -----------------------------------------------------------------------------------

PNG = b"\x89PNG\r\n\x1a\n"


def test_plot_file_is_a_png(tmp_path: Path) -> None:
    results().drop(columns="run").to_csv(tmp_path / "results.csv", index=False)
    target = tmp_path / "plots" / "frontier.png"
    out = CliRunner().invoke(
        app,
        ["frontier", str(tmp_path), "--plot", str(target), "--log-x", "-w", "tflite_bytes<1MB"],
    )
    assert out.exit_code == 0, out.output
    assert target.read_bytes()[:8] == PNG and target.stat().st_size > 10_000
    bad = CliRunner().invoke(app, ["frontier", str(tmp_path), "--plot", str(tmp_path / "x.gif")])
    assert bad.exit_code == 2 and "must end in .png, .svg or .pdf" in bad.output


def test_point_labels_name_the_differing_knobs() -> None:
    from effcli.frontier.plot import point_labels

    labels = point_labels(results().iloc[:2])
    assert labels == ["no prune", "prune"]
    assert point_labels(results().iloc[[0, 3]]) == ["width=0.25, no prune", "width=0.5, prune"]


def test_point_labels_merge_a_knob_swept_in_two_pipelines_and_shorten_mappings() -> None:
    import pandas as pd

    from effcli.frontier.plot import point_labels

    rows = pd.DataFrame(
        {
            "variant": ["a", "b", "c"],
            "branch": ["plain", "distilled", "distilled"],
            "train.width_multiplier": [0.5, None, None],
            "train.augment": ["{}", None, None],
            "distill.width_multiplier": [None, 0.25, 0.25],
            "distill.augment": [None, "{}", "{'translate': 0.1, 'noise': 0.05}"],
        }
    )
    assert point_labels(rows) == [
        "plain, width=0.5, augment=none",
        "distilled, width=0.25, augment=none",
        "distilled, width=0.25, augment=translate 0.1+noise 0.05",
    ]


def test_frontier_imports_neither_tensorflow_nor_matplotlib_unless_plotting(
    tmp_path: Path,
) -> None:
    results().drop(columns="run").to_csv(tmp_path / "results.csv", index=False)
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from effcli.cli.main import app\n"
        f"r = CliRunner().invoke(app, ['frontier', {str(tmp_path)!r}, '-w', 'gzip_bytes<1MB',"
        " '--best'])\n"
        "assert r.exit_code == 0, r.output\n"
        "print('tensorflow' in sys.modules, 'matplotlib' in sys.modules)\n"
        f"r = CliRunner().invoke(app, ['frontier', {str(tmp_path)!r}, '--plot',"
        f" {str(tmp_path / 'f.png')!r}])\n"
        "assert r.exit_code == 0, r.output\n"
        "print('tensorflow' in sys.modules, 'matplotlib' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False", "False", "True"]


def test_best_without_any_placeable_row(tmp_path: Path) -> None:
    (tmp_path / "results.csv").write_text(
        "variant,pipeline,status,error,tflite_accuracy,tflite_bytes\na,m,ok,,,100\n"
    )
    out = CliRunner().invoke(app, ["frontier", str(tmp_path), "--best"])
    assert out.exit_code == 1
    assert out.output.strip() == (
        "error: no ok variant has both tflite_accuracy and tflite_bytes "
        "(1 excluded for missing values)"
    )
