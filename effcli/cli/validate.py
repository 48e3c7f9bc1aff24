"""`effdl validate RECIPE`: check a recipe without importing TensorFlow."""

from __future__ import annotations

from pathlib import Path

import typer

from effcli.cli._common import (
    Format,
    console,
    emit_json,
    format_option,
    print_warnings,
    problem,
    reports_errors,
    set_option,
)
from effcli.errors import EffdlError


@reports_errors
def validate(
    recipe: Path = typer.Argument(..., help="The recipe YAML file."),
    overrides: list[str] | None = set_option(),
    output: Format = format_option(),
) -> None:
    """Check a recipe (schema, sweeps, stage order); exit 2 with one line naming the problem.

    --format json: {"ok": true, "variants": N, ...} or {"ok": false, "problems": [...]} (exit 2).

    [bold]Examples:[/]

      effdl validate recipes/quickstart.yaml
      effdl validate recipes/quickstart.yaml --set train.epochs=2 --format json
    """
    from effcli.plan import load_plan

    try:
        plan = load_plan(recipe, require_data=False, overrides=overrides or [])
    except EffdlError as exc:
        if output is not Format.json:
            raise
        emit_json({"ok": False, "recipe": str(recipe), "problems": [problem(exc)]})
        raise typer.Exit(exc.exit_code) from None
    warnings = print_warnings(plan.warnings)
    variants = len(plan.first_replicates())
    if output is Format.json:
        emit_json(
            {
                "ok": True,
                "recipe": str(recipe),
                "name": plan.name,
                "variants": variants,
                "replicates": plan.replicates,
                "nodes": len(plan.nodes),
                "warnings": warnings,
            }
        )
        return
    replicated = f" x {plan.replicates} replicates" if plan.replicates > 1 else ""
    console.print(
        f"[green]ok[/]: {recipe} is valid: {variants} variant(s){replicated}, "
        f"{len(plan.nodes)} node(s)"
    )
