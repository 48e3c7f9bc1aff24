"""`effdl validate RECIPE`: check a recipe without importing TensorFlow."""

from __future__ import annotations

from pathlib import Path

import typer

from effcli.cli._common import console, print_warnings, reports_errors


@reports_errors
def validate(recipe: Path = typer.Argument(..., help="The recipe YAML file.")) -> None:
    """Check a recipe (schema, sweeps, stage order); exit 2 with one line naming the problem."""
    from effcli.plan import load_plan

    plan = load_plan(recipe, require_data=False)
    print_warnings(plan.warnings)
    replicated = f" x {plan.replicates} replicates" if plan.replicates > 1 else ""
    console.print(
        f"[green]ok[/]: {recipe} is valid: {len(plan.first_replicates())} variant(s)"
        f"{replicated}, {len(plan.nodes)} node(s)"
    )
