"""effdl's own speed, measured (`make bench`): writes docs/benchmarks.md and a JSON of raw times.

Every timing is a wall time of a fresh subprocess (what a user waits for), repeated; tables
report medians because this machine is noisy. Sections:

- overhead: `effdl run recipes/quickstart.yaml` (default options, and `--executor local`)
  against benchmarks/plain_script.py, the same work written by hand with TF-MOT, rotating which
  goes first;
- cache: rerunning a finished recipe; a K-variant sweep sharing one base; adding a value;
- CLI latency: --help, validate, plan, and frontier over 100k rows (none imports TensorFlow);
- parallel: an 8-variant recipe (8 independent trainings) with local, process and ray;
- latency stability: coefficient of variation of latency_ms_p50 across measurements;
- numerics: what reproducible numbers cost: the quickstart with `deterministic: true` against
  without, and with 2 TensorFlow threads per node against the default 1, side by side;
- replicates: the frontier over 100k rows of 3 replicates each (intervals for the front).

Not a test: nothing here passes or fails; targets are printed next to the numbers.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import importlib.metadata
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
EFFDL = str(BIN / "effdl")
QUICKSTART_RECIPE = ROOT / "recipes" / "quickstart.yaml"
# The quickstart trained once per variant: what benchmarks/plain_script.py does by hand.
QUICKSTART = Path(tempfile.gettempdir()) / "effdl-bench-quickstart-1.yaml"
QUICKSTART.write_text(
    QUICKSTART_RECIPE.read_text()
    .replace("replicates: 3\n", "")
    .replace("extends: base", f"extends: {ROOT / 'configs' / 'base.yaml'}")
)
HERE = Path(__file__).resolve().parent
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "COLUMNS": "200"}
DONE = re.compile(r"done in ([\d.]+)s: .*nodes: (\d+) ran, (\d+) cached")


def timed(cmd: list[str], check: bool = True) -> tuple[float, str]:
    """Wall seconds of a subprocess, and its stdout."""
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=ENV, cwd=ROOT)
    seconds = time.perf_counter() - start
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stderr[-3000:]}")
    return seconds, proc.stdout


def median(values: list[float]) -> float:
    return statistics.median(values)


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def machine() -> dict[str, Any]:
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {}
    for package in (
        "effdl",
        "tensorflow",
        "tf-keras",
        "tensorflow-model-optimization",
        "ai-edge-litert",
        "ray",
    ):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return {
        "date": dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "versions": versions,
    }


def rows(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "results.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def effdl_run(recipe: Path, out: Path, *extra: str) -> dict[str, Any]:
    seconds, stdout = timed([EFFDL, "run", str(recipe), "--out", str(out), *extra])
    match = DONE.search(" ".join(stdout.split()))
    ran, cached = (int(match.group(2)), int(match.group(3))) if match else (-1, -1)
    return {"seconds": seconds, "nodes_ran": ran, "nodes_cached": cached}


# -- sections --------------------------------------------------------------------------------
def overhead(work: Path, repeats: int) -> dict[str, Any]:
    """The quickstart through effdl (default options: `--executor auto`, and `--executor local`,
    one node at a time) vs by hand, rotating which runs first."""
    # plain1: the script with the one TensorFlow thread effdl gives every node (local's fair
    # comparison); plain: TensorFlow's default, a thread per core, as a user's script runs.
    setups = ("effdl", "local", "plain", "plain1")
    seconds: dict[str, list[float]] = {name: [] for name in setups}
    runs: list[Path] = []
    local_runs: list[Path] = []
    for i in range(repeats):
        shift = i % len(setups)
        for which in setups[shift:] + setups[:shift]:
            if which.startswith("plain"):
                threads = ["--threads", "1"] if which == "plain1" else []
                script = [sys.executable, str(HERE / "plain_script.py")]
                took, _ = timed([*script, "--out", str(work / f"{which}-{i}"), "--quiet", *threads])
            else:
                out = work / f"quickstart-{which}-{i}"
                extra = ("--executor", "local") if which == "local" else ()
                took = effdl_run(QUICKSTART, out, *extra)["seconds"]
                (runs if which == "effdl" else local_runs).append(out)
            seconds[which].append(took)
            log(f"overhead {i + 1}/{repeats} {which}: {took:.1f}s")
    effdl_s, local_s, plain_s = seconds["effdl"], seconds["local"], seconds["plain"]
    pairs = [e / p for e, p in zip(effdl_s, plain_s, strict=True)]
    accuracy = {
        r["variant"]: float(r["tflite_accuracy"]) for r in rows(runs[0]) if r["status"] == "ok"
    }
    return {
        "effdl_s": effdl_s,
        "local_s": local_s,
        "plain_s": plain_s,
        "ratio_of_medians": median(effdl_s) / median(plain_s),
        "local_ratio_of_medians": median(local_s) / median(plain_s),
        "plain1_s": seconds["plain1"],
        "local_vs_plain1": median(local_s) / median(seconds["plain1"]),
        "median_paired_ratio": median(pairs),
        "runs": [str(r) for r in runs],
        "variants_ok": len(accuracy),
        "same_rows_as_local": same_numbers(runs[0], local_runs[0]),
    }


def same_numbers(a: Path, b: Path) -> bool:
    """The same variants with bit-identical numbers, timings and peak memory aside."""
    measured = {"train_seconds", "train_peak_rss_bytes", "throughput_per_s"}

    def numbers(run: Path) -> dict[str, dict[str, str]]:
        return {
            r["variant"]: {
                k: v for k, v in r.items() if k not in measured and not k.startswith("latency_")
            }
            for r in rows(run)
        }

    return numbers(a) == numbers(b)


def cache(work: Path, finished: Path, repeats: int) -> dict[str, Any]:
    """Rerun of a finished run; the nodes a K-variant sweep and one added value really run."""
    reruns = [effdl_run(QUICKSTART, finished) for _ in range(repeats)]
    log(f"cache: rerun {median([r['seconds'] for r in reruns]):.1f}s")
    rebuilt = work / "rebuilt"
    shutil.copytree(finished, rebuilt)
    (rebuilt / "results.csv").unlink()  # rows gone, cache kept: every variant from the cache
    from_cache = effdl_run(QUICKSTART, rebuilt)
    log(f"cache: rows rebuilt from cache {from_cache['seconds']:.1f}s")

    sweep_dir = work / "sweep_k"
    first = effdl_run(HERE / "recipes" / "sweep_k.yaml", sweep_dir)
    kinds: dict[str, int] = {}
    for meta in sweep_dir.glob("cache/*/meta.json"):
        stage = json.loads(meta.read_text())["stage"]
        kinds[stage] = kinds.get(stage, 0) + 1
    extended = work / "sweep_k5.yaml"
    text = (HERE / "recipes" / "sweep_k.yaml").read_text()
    extended.write_text(
        text.replace("[0.2, 0.4, 0.6, 0.8]", "[0.2, 0.4, 0.6, 0.8, 0.9]").replace(
            "extends: ../../configs/base.yaml", f"extends: {ROOT / 'configs' / 'base.yaml'}"
        )
    )
    added = effdl_run(extended, sweep_dir)
    log(f"cache: sweep K=4 {first['seconds']:.1f}s {kinds}; +1 value ran {added['nodes_ran']}")
    return {
        "rerun_s": [r["seconds"] for r in reruns],
        "rerun_nodes_ran": [r["nodes_ran"] for r in reruns],
        "from_cache": from_cache,
        "sweep_first": first,
        "sweep_nodes_by_stage": kinds,
        "sweep_added_value": added,
    }


def synthetic_results(template: Path, out: Path, n: int = 100_000) -> Path:
    """A results.csv of n rows in the real schema (real rows, varied footprints/accuracies)."""
    import numpy as np
    import pandas as pd

    base = pd.read_csv(template / "results.csv", dtype=str)
    rng = np.random.default_rng(0)
    frame = base.sample(n, replace=True, random_state=0).reset_index(drop=True)
    frame["variant"] = [f"{i:012x}" for i in range(n)]
    frame["tflite_bytes"] = rng.integers(5_000, 2_000_000, n).astype(str)
    frame["gzip_bytes"] = rng.integers(3_000, 1_800_000, n).astype(str)
    frame["tflite_accuracy"] = rng.uniform(0.1, 0.99, n).round(4).astype(str)
    frame["latency_ms_p50"] = rng.uniform(0.05, 5.0, n).round(4).astype(str)
    out.mkdir(parents=True, exist_ok=True)
    frame.to_csv(out / "results.csv", index=False)
    return out


def replicated_results(template: Path, out: Path, n: int = 100_000, replicates: int = 3) -> Path:
    """n rows = n / replicates variants x replicates in the real schema, with the per-sample
    predictions (and test labels) a run keeps for the variants on the front of the means."""
    import numpy as np
    import pandas as pd

    frame = pd.read_csv(synthetic_results(template, out, n) / "results.csv", dtype=str)
    variants = n // replicates
    frame = frame.head(variants * replicates).copy()
    frame["variant"] = [f"{i // replicates:012x}" for i in range(len(frame))]
    frame["replicate"] = [str(i % replicates) for i in range(len(frame))]
    frame["replicate_seed"] = frame["replicate"]
    size = frame.groupby("variant")["tflite_bytes"].transform("first")  # fixed per variant
    frame["tflite_bytes"] = size
    frame.to_csv(out / "results.csv", index=False)
    # Predictions for the front variants (what `effdl frontier` reads by default).
    means = frame.assign(q=frame["tflite_accuracy"].astype(float), b=size.astype(float))
    means = means.groupby("variant")[["q", "b"]].mean().sort_values(["b", "q"])
    front = means[means["q"] > means["q"].cummax().shift(fill_value=-1.0)].index
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, 360).astype(np.int32)
    np.save(out / "test_labels.npy", labels)
    for variant in front:
        for k in range(replicates):
            folder = out / "artifacts" / (variant if k == 0 else f"{variant}.r{k}")
            folder.mkdir(parents=True, exist_ok=True)
            guess = np.where(rng.random(360) < means.loc[variant, "q"], labels, (labels + 1) % 10)
            np.save(folder / "predictions.npy", guess.astype(np.int32))
    return out


def numerics(work: Path, repeats: int) -> dict[str, Any]:
    """The quickstart as is, with op determinism, and with 2 threads per node, alternating."""
    recipe = work / "quickstart-deterministic.yaml"
    text = QUICKSTART.read_text().replace(
        "name: quickstart", "name: quickstart\ndeterministic: true"
    )
    recipe.write_text(text.replace("extends: base", f"extends: {ROOT / 'configs' / 'base.yaml'}"))
    setups = {
        "default (1 thread per node)": (QUICKSTART, {}),
        "deterministic: true": (recipe, {}),
        "2 threads per node": (QUICKSTART, {"EFFDL_TF_THREADS": "2"}),
    }
    seconds: dict[str, list[float]] = {name: [] for name in setups}
    accuracy: dict[str, dict[str, str]] = {}
    for i in range(repeats):
        for name, (path, env) in setups.items():
            out = work / f"numerics-{len(seconds[name])}-{abs(hash(name))}"
            start = time.perf_counter()
            proc = subprocess.run(
                [EFFDL, "run", str(path), "--out", str(out), "--executor", "local"],
                capture_output=True,
                text=True,
                env={**ENV, **env},
                cwd=ROOT,
            )
            if proc.returncode != 0:
                raise RuntimeError(f"{name}: {proc.stderr[-2000:]}")
            seconds[name].append(time.perf_counter() - start)
            # By knob values: deterministic nodes have other keys, so other variant ids.
            accuracy[name] = {
                ",".join(str(v) for k, v in sorted(r.items()) if "." in k): r["tflite_accuracy"]
                for r in rows(out)
            }
            log(f"numerics {i + 1}/{repeats} {name}: {seconds[name][-1]:.1f}s")
    return {"seconds": seconds, "accuracy": accuracy}


def cli_latency(work: Path, template: Path, repeats: int) -> dict[str, Any]:
    """Median wall time of the commands that must not import TensorFlow."""
    big = synthetic_results(template, work / "big")
    replicated = replicated_results(template, work / "replicated")
    commands = {
        "effdl --help": [EFFDL, "--help"],
        "effdl validate quickstart": [EFFDL, "validate", str(QUICKSTART)],
        "effdl plan quickstart": [EFFDL, "plan", str(QUICKSTART), "--out", str(work / "none")],
        "effdl frontier (100k rows)": [EFFDL, "frontier", str(big)],
        'effdl frontier (100k rows) --where "tflite_bytes<50KB" --best': [
            EFFDL,
            "frontier",
            str(big),
            "--where",
            "tflite_bytes<50KB",
            "--best",
        ],
        "effdl frontier (100k rows: 33,333 variants x 3 replicates, intervals for the front)": [
            EFFDL,
            "frontier",
            str(replicated),
        ],
        "effdl frontier (the same) --best": [EFFDL, "frontier", str(replicated), "--best"],
        "python -c 'import tensorflow' (reference)": [
            sys.executable,
            "-c",
            "import tensorflow",
        ],
    }
    result = {}
    for name, cmd in commands.items():
        times = [timed(cmd)[0] for _ in range(repeats)]
        result[name] = times
        log(f"cli: {name}: {median(times):.2f}s")
    return result


def parallel(work: Path, repeats: int) -> dict[str, Any]:
    recipe = HERE / "recipes" / "parallel8.yaml"
    setups = {
        "local": ["--executor", "local"],
        "process --jobs 2": ["--executor", "process", "--jobs", "2"],
        "ray --jobs 2": ["--executor", "ray", "--jobs", "2"],
    }
    result: dict[str, Any] = {name: [] for name in setups}
    statuses: dict[str, dict[str, str]] = {}
    for i in range(repeats):
        for name, extra in setups.items():
            out = work / f"parallel-{name.split()[0]}-{i}"
            result[name].append(effdl_run(recipe, out, *extra)["seconds"])
            statuses[name] = {r["variant"]: r["status"] for r in rows(out)}
            log(f"parallel {i + 1}/{repeats} {name}: {result[name][-1]:.1f}s")
    same = all(s == statuses["local"] for s in statuses.values())
    return {"seconds": result, "same_rows": same}


def latency_stability(runs: list[str]) -> dict[str, Any]:
    """CV of each variant's latency_ms_p50 across the repeated quickstart runs (each number is
    effdl's own: the median of 3 timing runs of 200 invokes)."""
    by_variant: dict[str, list[float]] = {}
    for run in runs:
        for row in rows(Path(run)):
            if row["status"] == "ok":
                by_variant.setdefault(row["variant"], []).append(float(row["latency_ms_p50"]))
    cvs = {
        v: statistics.pstdev(xs) / statistics.mean(xs)
        for v, xs in by_variant.items()
        if len(xs) > 1
    }
    return {"latency_ms_p50": by_variant, "cv": cvs}


# -- report ----------------------------------------------------------------------------------
def fmt_s(values: list[float]) -> str:
    return f"{median(values):.1f} s" + (
        f" ({', '.join(f'{v:.1f}' for v in values)})" if len(values) > 1 else ""
    )


def report(data: dict[str, Any]) -> str:
    m = data["machine"]
    lines = [
        "# Benchmarks",
        "",
        f"Generated by `make bench` (`benchmarks/run.py`) on {m['date']}: {m['cpu']}, "
        f"{m['cores']} cores, Python {m['python']}; "
        + ", ".join(f"{k} {v}" for k, v in m["versions"].items())
        + ". Wall times of fresh processes, medians (every run in parentheses). The machine is "
        "shared and noisy; read differences under ~5 % as noise.",
        "",
    ]
    if "overhead" in data:
        o = data["overhead"]
        ratio = o["ratio_of_medians"]
        verdict = "met" if ratio <= 0.65 else "NOT met"
        local = o.get("local_ratio_of_medians")
        lines += [
            "## The quickstart: effdl vs the same work by hand",
            "",
            "`effdl run recipes/quickstart.yaml` (9 variants: 3 trainings, 6 pruning fine-tunes, "
            "9 int8 exports, each evaluated and timed) against `benchmarks/plain_script.py`, "
            "the same work as a plain TF-MOT script (same data split, models, epochs, early "
            "stopping, pruning schedule, calibration, evaluation and latency timing; no cache, "
            "no CSV, no artifacts besides the .tflite files), one step after another as such a "
            "script runs. effdl with default options (`--executor auto`: worker processes, one "
            "per usable core, when nodes can run side by side) and with `--executor local` (one "
            "node at a time in one process: effdl's own overhead). Fresh run directory each time, "
            "rotating which runs first.",
            "",
            "| | wall time | vs plain script |",
            "|---|---|---|",
            f"| effdl, default options | {fmt_s(o['effdl_s'])} | **{ratio:.3f}x** "
            f"(target <= 0.65x: {verdict}) |",
        ]
        if local is not None:
            met = "met" if local <= 1.05 else "NOT met"
            lines.append(
                f"| effdl --executor local | {fmt_s(o['local_s'])} | {local:.3f}x "
                f"(target <= 1.05x: {met}) |"
            )
        lines.append(f"| plain script | {fmt_s(o['plain_s'])} | 1.00x |")
        if "plain1_s" in o:
            plain1 = median(o["plain1_s"]) / median(o["plain_s"])
            lines += [
                f"| plain script, 1 TensorFlow thread | {fmt_s(o['plain1_s'])} | {plain1:.3f}x |",
                "",
                "effdl trains every node with one TensorFlow thread (so a node's numbers do not "
                "depend on the executor); the plain script uses TensorFlow's default, a thread "
                "per core. With the same single thread, `--executor local` takes "
                f"**{o['local_vs_plain1']:.3f}x** the plain script's time: that is effdl's own "
                "overhead; the rest of the local row is the second core the script's training "
                "uses and local does not.",
            ]
        lines += [
            "",
            f"Median of paired ratios (default vs plain): {o['median_paired_ratio']:.3f}x. "
            "Same rows (variants and every number but timings and peak memory) with default "
            f"options as with `--executor local`: {o.get('same_rows_as_local', 'not checked')}.",
            "",
        ]
    if "cache" in data:
        c = data["cache"]
        k = c["sweep_nodes_by_stage"]
        lines += [
            "## Cache",
            "",
            "| what | wall time | nodes run |",
            "|---|---|---|",
            f"| rerun of the finished quickstart (all 9 rows recorded) | {fmt_s(c['rerun_s'])} | "
            f"{max(c['rerun_nodes_ran'])} |",
            f"| quickstart with results.csv deleted, cache kept (rows rebuilt: export, evaluate, "
            f"time) | {c['from_cache']['seconds']:.1f} s | {c['from_cache']['nodes_ran']} "
            f"({c['from_cache']['nodes_cached']} cached) |",
            f"| K = 4 pruned variants sharing one base (`benchmarks/recipes/sweep_k.yaml`) | "
            f"{c['sweep_first']['seconds']:.1f} s | {c['sweep_first']['nodes_ran']}: "
            + ", ".join(f"{n} {s}" for s, n in sorted(k.items()))
            + " |",
            f"| the same sweep with a fifth value added | {c['sweep_added_value']['seconds']:.1f} s "
            f"| {c['sweep_added_value']['nodes_ran']} (the new prune and quantize) |",
            "",
            f"The base model trains {k.get('train', 0)} time(s) for K = 4 variants (a script "
            "without a cache trains it K times or keeps it by hand); adding a sweep value runs "
            "only the new nodes.",
            "",
        ]
    if "cli" in data:
        lines += ["## CLI latency", "", "| command | wall time |", "|---|---|"]
        for name, times in data["cli"].items():
            lines.append(f"| `{name}` | {median(times):.2f} s |")
        lines += [
            "",
            "None of the effdl commands above imports TensorFlow; the last row is what each "
            "would cost if it did. The frontier rows are 100,000 synthetic rows in the real "
            "results.csv schema.",
            "",
        ]
    if "numerics" in data:
        n = data["numerics"]["seconds"]
        base = median(n["default (1 thread per node)"])
        acc = data["numerics"]["accuracy"]
        same = {
            name: sum(acc[name][v] == acc["default (1 thread per node)"][v] for v in acc[name])
            for name in acc
        }
        lines += [
            "## What reproducible numbers cost",
            "",
            "The quickstart (fresh run directory each time, alternating): as is (every node "
            "trains with 1 TensorFlow intra-op thread, under every executor, so a node's numbers "
            "do not depend on where it ran), with `deterministic: true` (TensorFlow op "
            "determinism), and with `EFFDL_TF_THREADS=2`.",
            "",
            "| setup | wall time | vs default | variants with the default's tflite_accuracy |",
            "|---|---|---|---|",
        ]
        for name, times in n.items():
            lines.append(
                f"| {name} | {fmt_s(times)} | {median(times) / base:.2f}x | "
                f"{same[name]} of {len(acc[name])} |"
            )
        lines += [""]
    if "parallel" in data:
        p = data["parallel"]["seconds"]
        local = median(p["local"])
        lines += [
            "## Parallel executors",
            "",
            "`benchmarks/recipes/parallel8.yaml`: 8 independent trainings (no shared node), "
            "each exported int8. Fresh run directory each time.",
            "",
            "| executor | wall time | speed-up over local |",
            "|---|---|---|",
        ]
        for name, times in p.items():
            lines.append(f"| {name} | {fmt_s(times)} | {local / median(times):.2f}x |")
        lines += [
            "",
            f"Same rows and statuses with every executor: {data['parallel']['same_rows']}.",
            "",
        ]
    if "latency" in data:
        cvs = data["latency"]["cv"]
        if cvs:
            values = sorted(cvs.values())
            lines += [
                "## Latency stability",
                "",
                f"Coefficient of variation of each quickstart variant's `latency_ms_p50` across "
                f"the {len(next(iter(data['latency']['latency_ms_p50'].values())))} overhead "
                f"runs (each value is already the median of 3 timing runs of 200 invokes): "
                f"median {median(values) * 100:.1f} %, max {values[-1] * 100:.1f} % over "
                f"{len(values)} variants.",
                "",
            ]
    for name, error in data.get("errors", {}).items():
        lines += [f"**{name}: not measured** ({error})", ""]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs per measurement")
    parser.add_argument("--parallel-repeats", type=int, default=2)
    parser.add_argument(
        "--only",
        nargs="*",
        default=["overhead", "cache", "cli", "parallel", "numerics"],
        help="sections to run (cache, cli and latency need overhead's runs)",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument(
        "--template",
        type=Path,
        help="a finished run directory whose results.csv seeds the 100k-row frontier (default: "
        "the first overhead run); lets `--only cli` run alone",
    )
    parser.add_argument(
        "--merge", action="store_true", help="keep the other sections of the existing JSON"
    )
    args = parser.parse_args()
    data: dict[str, Any] = {"machine": machine(), "errors": {}}
    previous = args.out.with_suffix(".json")
    if args.merge and previous.exists():
        data = {**json.loads(previous.read_text()), **data}
        data["errors"] = {}

    def section(name: str, compute: Any) -> None:
        """Run one section; a failure is recorded and the others still run. The report is
        rewritten after each section, so a long run keeps what it measured."""
        try:
            data[name] = compute()
        except Exception as exc:  # a benchmark harness: report, never lose the other sections
            data["errors"][name] = f"{type(exc).__name__}: {exc}"
            log(f"{name} failed: {data['errors'][name]}")
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(report(data))
        args.out.with_suffix(".json").write_text(json.dumps(data, indent=2, default=str))

    with tempfile.TemporaryDirectory(prefix="effdl-bench-") as tmp:
        work = Path(tmp)
        if "overhead" in args.only:
            section("overhead", lambda: overhead(work, args.repeats))
        runs = data.get("overhead", {}).get("runs", []) if "overhead" in args.only else []
        if runs:
            section("latency", lambda: latency_stability(runs))
            if "cache" in args.only:
                section("cache", lambda: cache(work, Path(runs[0]), args.repeats))
        template = args.template or (Path(runs[0]) if runs else None)
        if "cli" in args.only and template:
            section("cli", lambda: cli_latency(work, template, max(args.repeats, 5)))
        if "parallel" in args.only:
            section("parallel", lambda: parallel(work, args.parallel_repeats))
        if "numerics" in args.only:
            section("numerics", lambda: numerics(work, args.parallel_repeats))
    log(f"wrote {args.out} and {args.out.with_suffix('.json')}")


if __name__ == "__main__":
    main()
