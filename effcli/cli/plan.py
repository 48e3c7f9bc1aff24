"""`effdl plan RECIPE`: the variants and the node tree, with what is already cached."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import typer
from rich.table import Table
from rich.tree import Tree

from effcli.cli._common import console, print_warnings, reports_errors


@reports_errors
def plan(
    recipe: Path = typer.Argument(..., help="The recipe YAML file."),
    out: Path | None = typer.Option(
        None, "--out", "-o", help="Run directory to check the cache in (default: results/<name>)."
    ),
) -> None:
    """Show what `effdl run` would do: variants, shared nodes, trainings, cached nodes."""
    from effcli.plan import load_plan
    from effcli.results import ResultsStore, RunDir

    the_plan = load_plan(recipe, require_data=False)
    print_warnings(the_plan.warnings)
    run_dir = RunDir(out or Path("results") / the_plan.name)
    done = ResultsStore(run_dir.results).statuses()

    replicates = the_plan.replicates
    firsts = the_plan.first_replicates()
    title = f"{the_plan.name}: {len(firsts)} variants"
    if replicates > 1:
        title += f" x {replicates} replicates (seeds {_seeds(the_plan.seed, replicates)})"
    table = Table(title=title)
    table.add_column("variant")
    branched = any(v.branch for v in firsts)
    if branched:
        table.add_column("branch")
    table.add_column("pipeline")
    for knob in the_plan.knobs:
        table.add_column(knob.label)
    table.add_column("recorded")
    for variant in firsts:
        cells = [
            "" if variant.knobs.get(k.label) is None else str(variant.knobs[k.label])
            for k in the_plan.knobs
        ]
        lead = [variant.id, variant.branch or ""] if branched else [variant.id]
        pipeline = variant.pipeline + (
            f" (baseline: {variant.baseline})" if variant.baseline else ""
        )
        table.add_row(*lead, pipeline, *cells, _recorded(done, variant.id, replicates))
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
