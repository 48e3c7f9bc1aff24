"""The shape of the code: imports flow one way through the layers, no cycles, no huge modules.

Every `import` statement in `effcli/` counts, wherever it is (module level, inside a function,
under TYPE_CHECKING): a lazy import is still an arrow between two modules. Run it alone with
`python -m pytest tests/unit/test_architecture.py`, or print the graph with
`python tests/unit/test_architecture.py`.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "effcli"
MAX_LINES = 500

# Lower layers never import higher ones; a layer may import its own rank and every rank below.
# The data flow: recipe -> plan -> execute -> stage -> measured row -> results -> frontier/report.
LAYERS: list[tuple[str, ...]] = [
    (
        "effcli",
        "effcli.errors",
        "effcli._native",
        "effcli._tf",
        "effcli._atomic",
        "effcli.registry",
    ),
    ("effcli.recipe",),
    ("effcli.results",),
    ("effcli.artifacts", "effcli.measure"),
    ("effcli.deploy",),  # labels, model card and metadata of an exported file
    ("effcli.data", "effcli.models"),
    ("effcli.stages",),
    ("effcli.plan",),
    ("effcli.execute",),
    ("effcli.frontier",),
    # Readers of finished run directories: the report, trackers, exporting a chosen model.
    ("effcli.report", "effcli.track", "effcli.deploy.export"),
    ("effcli.cli", "effcli.__main__"),
]


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The effcli modules `name` imports (`from a import b` is a.b when a.b is a module)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, *([base] if base else [])])
            for alias in node.names:
                full = f"{base}.{alias.name}"
                found.add(full if full in known else base)
    return {m for m in found if m in known and m != name}


def graph() -> dict[str, set[str]]:
    mods = modules()
    return {name: imports(name, path, set(mods)) for name, path in mods.items()}


def rank(name: str) -> int:
    best = -1, -1  # (length of the matching prefix, rank)
    for level, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (name == prefix or name.startswith(prefix + ".")) and len(prefix) > best[0]:
                best = len(prefix), level
    if best[1] < 0:
        raise AssertionError(f"{name} is in no layer: add it to LAYERS")
    return best[1]


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    sys.setrecursionlimit(max(10_000, sys.getrecursionlimit()))

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_no_import_runs_back_up_the_layers() -> None:
    upward = [
        f"{a} (layer {rank(a)}) imports {b} (layer {rank(b)})"
        for a, targets in graph().items()
        for b in sorted(targets)
        if rank(b) > rank(a)
    ]
    assert not upward, "\n".join(upward)


def test_no_import_cycles() -> None:
    found = cycles(graph())
    assert not found, "\n".join(" <-> ".join(c) for c in found)


def test_no_module_is_over_the_size_limit() -> None:
    big = {
        name: n
        for name, path in modules().items()
        if (n := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert not big, f"modules over {MAX_LINES} lines: {big}"


def string_constants(path: Path) -> list[tuple[int, str]]:
    """(line, text) of every string literal that is not a docstring."""
    tree = ast.parse(path.read_text(), str(path))
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings
    ]


def test_only_rundir_names_the_run_directory_files() -> None:
    """One home for the layout: every other module uses effcli.results.rundir's names."""
    from effcli.results import rundir

    names = {
        value
        for key, value in vars(rundir).items()
        if key.isupper() and isinstance(value, str) and "." in value
    } | {rundir.CACHE, rundir.ARTIFACTS, rundir.STUDIES}  # ("alternatives" is also a meta key)
    assert {"results.csv", "metrics.json", "plan.json", "test.npz", "model.tflite"} <= names
    spelled = [
        f"{name}:{line} spells {text!r}"
        for name, path in modules().items()
        if name != "effcli.results.rundir"
        for line, text in string_constants(path)
        if text in names
    ]
    assert not spelled, "\n".join(spelled)


def test_the_checker_sees_lazy_and_relative_imports(tmp_path: Path) -> None:
    """The walk must count imports inside functions and relative ones, or it checks nothing."""
    code = "def f():\n    from effcli.cli import main\n\nfrom . import errors\n"
    path = tmp_path / "m.py"
    path.write_text(code)
    known = {"effcli.cli", "effcli.cli.main", "effcli.errors"}
    found = imports("effcli.m", path, known)  # as if it were a module directly in effcli/
    assert found == {"effcli.cli.main", "effcli.errors"}
    assert cycles({"a": {"b"}, "b": {"a"}, "c": set()}) == [["a", "b"]]


if __name__ == "__main__":
    for source, targets in sorted(graph().items()):
        print(f"{source} [{rank(source)}] -> {', '.join(sorted(targets)) or '-'}")
