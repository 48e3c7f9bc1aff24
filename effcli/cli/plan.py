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

    table = Table(title=f"{the_plan.name}: {len(the_plan.variants)} variants")
    table.add_column("variant")
    branched = any(v.branch for v in the_plan.variants)
    if branched:
        table.add_column("branch")
    table.add_column("pipeline")
    for knob in the_plan.knobs:
        table.add_column(knob.label)
    table.add_column("recorded")
    for variant in the_plan.variants:
        cells = [
            "" if variant.knobs.get(k.label) is None else str(variant.knobs[k.label])
            for k in the_plan.knobs
        ]
        lead = [variant.id, variant.branch or ""] if branched else [variant.id]
        table.add_row(*lead, variant.pipeline, *cells, done.get(variant.id, "-"))
    console.print(table)

    tree = Tree(f"[bold]nodes[/] ({run_dir.root})")

    def add(branch: Tree, parent: str | None) -> None:
        for node in the_plan.children(parent):
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
    users = Counter(dep for n in nodes for dep in n.deps)
    for dep, count in users.items():
        console.print(
            f"{the_plan.nodes[dep].label} {the_plan.nodes[dep].short} is used by {count} "
            f"node(s) and built once"
        )
    console.print(
        f"{len(nodes)} nodes ({', '.join(f'{c} {k}' for k, c in by_kind.items())}); "
        f"{len(trainings)} trainings ({', '.join(sorted({n.kind for n in trainings}))} nodes), "
        f"{sum(1 for n in trainings if run_dir.node_done(n.key))} of them cached; "
        f"{len(cached)} nodes cached, {len(nodes) - len(cached)} to run"
    )
