"""`effdl plan RECIPE`: the variants and the node tree, with what is already cached."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.markup import escape
from rich.table import Table
from rich.tree import Tree

from effcli.cli._common import (
    Format,
    console,
    emit_json,
    format_option,
    print_warnings,
    reports_errors,
    results_root,
    set_option,
)

if TYPE_CHECKING:
    from effcli.plan import Plan
    from effcli.results import RunDir


@reports_errors
def plan(
    recipe: Path = typer.Argument(..., help="The recipe YAML file."),
    out: Path | None = typer.Option(
        None,
        "--out",
        "-o",
        help="Run directory to check the cache in (default: results/<name>; $EFFDL_RESULTS "
        "replaces results/).",
    ),
    overrides: list[str] | None = set_option(),
    output: Format = format_option(),
) -> None:
    """Show what `effdl run` would do: variants, shared nodes, trainings, cached nodes.

    --format json: the variants, every node (cached or not) and the counts, on stdout.

    [bold]Examples:[/]

      effdl plan recipes/quickstart.yaml
      effdl plan recipes/quickstart.yaml --set replicates=1 --format json
    """
    from effcli.plan import load_plan
    from effcli.results import ResultsStore, RunDir

    the_plan = load_plan(recipe, require_data=False, overrides=overrides or [])
    warnings = print_warnings(the_plan.warnings)
    run_dir = RunDir(out or results_root() / the_plan.name)
    done = ResultsStore(run_dir.results).statuses()
    if output is Format.json:
        emit_json({**_as_json(the_plan, run_dir, done), "warnings": warnings})
        return

    replicates = the_plan.replicates
    firsts = the_plan.first_replicates()
    title = f"{the_plan.name}: {len(firsts)} variants"
    if replicates > 1:
        title += f" x {replicates} replicates (seeds {_seeds(the_plan.seed, replicates)})"
    # The label says what varies (the knobs' values are in --format json and results.csv).
    table = Table(title=title, title_justify="left")
    table.add_column("label")
    table.add_column("variant")
    branched = any(v.branch for v in firsts)
    if branched:
        table.add_column("branch")
    table.add_column("pipeline")
    table.add_column("recorded")
    for variant in firsts:
        lead = [variant.label, variant.id, *([variant.branch or ""] if branched else [])]
        pipeline = variant.pipeline + (
            f" (baseline: {variant.baseline})" if variant.baseline else ""
        )
        table.add_row(*map(escape, lead), pipeline, _recorded(done, variant.id, replicates))
    console.print(table)

    shown = "" if replicates == 1 else ", replicate 0; every replicate repeats it with its seed"
    tree = Tree(f"[bold]nodes[/] ({run_dir.root}{shown})")

    def add(branch: Tree, parent: str | None) -> None:
        for node in the_plan.children(parent):
            if node.replicate:
                continue
            state = "[green]cached[/]" if run_dir.node_done(node.key) else "[yellow]to run[/]"
            uses = "".join(
                f" [cyan]uses {the_plan.nodes[dep].label} {the_plan.nodes[dep].short}[/]"
                for dep in node.deps
            )
            add(branch.add(f"{node.label} [dim]{node.short}[/] {state}{uses}"), node.key)

    add(tree, None)
    console.print(tree)

    nodes = list(the_plan.nodes.values())
    cached = [n for n in nodes if run_dir.node_done(n.key)]
    by_kind = Counter(n.kind for n in nodes)
    trainings = [n for n in nodes if n.trains]
    users = Counter(dep for n in nodes if n.replicate == 0 for dep in n.deps)
    once = "once per replicate" if replicates > 1 else "once"
    for dep, count in users.items():
        console.print(
            f"{the_plan.nodes[dep].label} {the_plan.nodes[dep].short} is used by {count} "
            f"node(s) and built {once}"
        )
    per = ""
    if replicates > 1:
        per = f" ({len(trainings) // replicates} per replicate x {replicates} replicates)"
    console.print(
        f"{len(nodes)} nodes ({', '.join(f'{c} {k}' for k, c in by_kind.items())}); "
        f"{len(trainings)} trainings{per} "
        f"({', '.join(sorted({n.kind for n in trainings}))} nodes), "
        f"{sum(1 for n in trainings if run_dir.node_done(n.key))} of them cached; "
        f"{len(cached)} nodes cached, {len(nodes) - len(cached)} to run"
    )


def _as_json(the_plan: Plan, run_dir: RunDir, done: dict[tuple[str, int], str]) -> dict[str, Any]:
    """What the table and tree show, for tools: every variant, every node, the counts."""
    from effcli.recipe.schema import replicate_seed

    nodes = list(the_plan.nodes.values())
    cached = {n.key for n in nodes if run_dir.node_done(n.key)}
    trainings = [n for n in nodes if n.trains]
    variants = [
        {
            "id": v.id,
            "label": v.label,
            "branch": v.branch,
            "pipeline": v.pipeline,
            "baseline": v.baseline,
            "knobs": v.knobs,
            # one entry per replicate: "ok", "failed", or null when not in results.csv yet
            "recorded": [done.get((v.id, k)) for k in range(the_plan.replicates)],
            "nodes": list(v.nodes),
        }
        for v in the_plan.first_replicates()
    ]
    return {
        "name": the_plan.name,
        "run_dir": str(run_dir.root),
        "replicates": the_plan.replicates,
        "seeds": [replicate_seed(the_plan.seed, k) for k in range(the_plan.replicates)],
        "knobs": [k.label for k in the_plan.knobs],
        "variants": variants,
        "nodes": [
            {
                "key": n.key,
                "short": n.short,
                "stage": n.kind,
                "label": n.label,
                "parent": n.parent,
                "deps": list(n.deps),
                "replicate": n.replicate,
                "trains": n.trains,
                "cached": n.key in cached,
            }
            for n in nodes
        ],
        "counts": {
            "variants": len(variants),
            "nodes": len(nodes),
            "by_stage": dict(Counter(n.kind for n in nodes)),
            "trainings": len(trainings),
            "trainings_cached": sum(1 for n in trainings if n.key in cached),
            "cached": len(cached),
            "to_run": len(nodes) - len(cached),
        },
    }


def _seeds(seed: int, replicates: int) -> str:
    from effcli.recipe.schema import replicate_seed

    seeds = [replicate_seed(seed, k) for k in range(replicates)]
    return ", ".join(map(str, seeds)) if replicates <= 4 else f"{seeds[0]}..{seeds[-1]}"


def _recorded(done: dict[tuple[str, int], str], variant: str, replicates: int) -> str:
    """`ok`, `failed`, `-` for one replicate; `2 of 3 ok` (and failed ones) for several."""
    statuses = [done.get((variant, k)) for k in range(replicates)]
    if replicates == 1:
        return statuses[0] or "-"
    ok = statuses.count("ok")
    failed = statuses.count("failed")
    return f"{ok} of {replicates} ok" + (f", {failed} failed" if failed else "")
