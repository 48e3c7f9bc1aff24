"""Read a recipe file: YAML (safe_load only) with the file and line of every value, `extends`,
and the command line's `--set KEY=VALUE` overrides.

Every later error points back here, so each value's position is kept beside the merged document
(an overridden value's position is its `--set`).
"""

from __future__ import annotations

import copy
import dataclasses
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from effcli.errors import RecipeError

Loc = tuple[str | int, ...]
# (file, line) of each value; an overridden value's "file" is its `--set ...` and has no line.
Positions = dict[Loc, tuple[str, int | None]]

# A recipe is a few levels deep; these bound what a malformed or hostile file can make us walk
# (a YAML alias that contains itself, or aliases of aliases expanding exponentially).
MAX_DEPTH = 32
MAX_VALUES = 100_000


def printable(text: str) -> str:
    """`text` on one line: newlines and other control characters shown escaped (\\n)."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def format_loc(loc: Loc) -> str:
    """('pipeline', 1, 'sparsity') -> 'pipeline[1].sparsity'."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return printable(out)


@dataclass
class RecipeSource:
    """A recipe as read from disk: the merged document and where each value came from."""

    path: Path
    doc: dict[str, Any]
    positions: Positions = field(default_factory=dict)

    def where(self, loc: Loc) -> tuple[str, int | None]:
        """File and line of the deepest known prefix of `loc`."""
        for end in range(len(loc), -1, -1):
            hit = self.positions.get(tuple(loc[:end]))
            if hit:
                return hit
        return str(self.path), None

    def error(self, loc: Loc, message: str, shown_loc: Loc | None = None) -> RecipeError:
        file, line = self.where(loc)
        return RecipeError(
            printable(message), file=file, line=line, path=format_loc(shown_loc or loc) or None
        )


def _display(path: Path) -> str:
    try:
        return printable(str(path.resolve().relative_to(Path.cwd().resolve())))
    except (ValueError, OSError, RuntimeError):
        return printable(str(path))


def _walk(
    node: yaml.Node,
    loc: Loc,
    positions: Positions,
    file: str,
    above: tuple[int, ...] = (),
    count: list[int] | None = None,
) -> None:
    """Record the line of every mapping key and sequence item below `node`.

    `above` holds the ids of the nodes containing this one (an alias to one of them is a
    cycle); `count` the values walked so far (aliases are walked each time they are used)."""
    count = [0] if count is None else count
    count[0] += 1
    line = node.start_mark.line + 1
    if id(node) in above:
        raise RecipeError(
            "this value contains itself through a YAML alias (*name inside its own &name); "
            "remove the alias",
            file=file,
            line=line,
            path=format_loc(loc) or None,
        )
    if len(above) > MAX_DEPTH or count[0] > MAX_VALUES:
        too = (
            f"nested more than {MAX_DEPTH} levels deep"
            if len(above) > MAX_DEPTH
            else f"more than {MAX_VALUES:,} values once its YAML aliases are expanded"
        )
        raise RecipeError(
            f"the recipe is {too}; simplify it", file=file, line=line, path=format_loc(loc) or None
        )
    above = (*above, id(node))
    if isinstance(node, yaml.MappingNode):
        seen: dict[Any, int] = {}
        for key_node, value_node in node.value:
            key = key_node.value
            line = key_node.start_mark.line + 1
            if key in seen:
                raise RecipeError(
                    printable(
                        f"duplicate key '{key}' (first at line {seen[key]}); keep one of them"
                    ),
                    file=file,
                    line=line,
                    path=format_loc(loc + (key,)),
                )
            seen[key] = line
            positions[loc + (key,)] = (file, line)
            _walk(value_node, loc + (key,), positions, file, above, count)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            positions[loc + (i,)] = (file, item.start_mark.line + 1)
            _walk(item, loc + (i,), positions, file, above, count)


def read_yaml(path: Path) -> tuple[Any, Positions]:
    """Parse one YAML file safely, returning its data and the position of every value."""
    file = _display(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RecipeError("file not found; check the path", file=file) from None
    except (IsADirectoryError, PermissionError, UnicodeDecodeError) as exc:
        raise RecipeError(f"cannot read the file ({exc.__class__.__name__})", file=file) from None
    bad = yaml.reader.Reader.NON_PRINTABLE.search(text)  # PyYAML's own message spans lines
    if bad:
        raise RecipeError(
            f"invalid YAML: the control character {bad.group()!r} is not allowed; remove it",
            file=file,
            line=text.count("\n", 0, bad.start()) + 1,
        )
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except RecursionError:
        raise RecipeError(
            f"invalid YAML: nested too deeply to read (a recipe needs at most {MAX_DEPTH} levels); "
            "simplify it",
            file=file,
            line=loader.line + 1,
        ) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        problem = (exc.problem or exc.context or "syntax error").strip()
        if exc.problem and exc.context and exc.context_mark:
            problem += f" ({exc.context.strip()} at line {exc.context_mark.line + 1})"
        fix = (
            "indent with spaces: YAML does not allow tabs for indentation"
            if "'\\t'" in problem
            else "check indentation, colons and quoting"
        )
        raise RecipeError(
            printable(f"invalid YAML: {problem}; {fix}"),
            file=file,
            line=line,
        ) from None
    except yaml.YAMLError as exc:
        raise RecipeError(printable(f"invalid YAML: {exc}"), file=file) from None
    finally:
        loader.dispose()
    positions: Positions = {(): (file, 1)}
    if node is not None:
        _walk(node, (), positions, file)
    return data, positions


def is_sweep(value: Any) -> bool:
    return isinstance(value, dict) and "sweep" in value


def deep_merge(base: Any, override: Any) -> Any:
    """Mappings merge key by key; anything else (lists, scalars, sweeps) is replaced whole."""
    if isinstance(base, dict) and isinstance(override, dict) and not is_sweep(override):
        merged = dict(base)
        for key, value in override.items():
            merged[key] = deep_merge(base[key], value) if key in base else value
        return merged
    return override


def _find_preset(name: str, recipe_path: Path) -> Path | None:
    """`extends: base` or `extends: configs/base.yaml`: next to the recipe, else in a configs/
    folder of the recipe's directory or any parent of it (so recipes/ can reach ../configs/)."""
    candidates = [name] if name.endswith((".yaml", ".yml")) else [f"{name}.yaml", f"{name}.yml"]
    here = recipe_path.parent
    for cand in candidates:
        if (here / cand).is_file():
            return here / cand
    for folder in [here, *here.resolve().parents]:
        for cand in candidates:
            for base in (folder, folder / "configs"):
                if (base / cand).is_file():
                    return base / cand
    return None


def load_source(path: str | Path, _chain: tuple[Path, ...] = ()) -> RecipeSource:
    """Load a recipe file and everything it `extends`, deep-merged (the recipe wins)."""
    path = Path(path)
    data, positions = read_yaml(path)
    file = _display(path)
    if data is None:
        raise RecipeError(
            "the file is empty; a recipe needs name, data, model and pipeline", file=file
        )
    if not isinstance(data, dict):
        raise RecipeError(
            f"a recipe must be a mapping of keys (name, data, model, train, pipeline), "
            f"not a {type(data).__name__}",
            file=file,
            line=1,
        )
    extends = data.pop("extends", None)
    own = RecipeSource(path=path, doc=data, positions=positions)
    if extends is None:
        return own
    names = [extends] if isinstance(extends, str) else extends
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise own.error(("extends",), "must be a preset name or a list of them, e.g. extends: base")
    merged_doc: dict[str, Any] = {}
    merged_pos: Positions = {}
    chain = (*_chain, path.resolve())
    for i, name in enumerate(names):
        loc: Loc = ("extends",) if isinstance(extends, str) else ("extends", i)
        preset = _find_preset(name, path)
        if preset is None:
            raise own.error(
                loc,
                f"preset '{name}' not found next to the recipe or in a configs/ folder above it; "
                "create it or fix the name",
            )
        if preset.resolve() in chain:
            raise own.error(
                loc,
                f"preset '{name}' extends itself through {' -> '.join(p.name for p in chain)}; "
                "remove the cycle",
            )
        base = load_source(preset, chain)
        merged_doc = deep_merge(merged_doc, base.doc)
        merged_pos.update(base.positions)
    merged_pos.update(positions)
    return RecipeSource(path=path, doc=deep_merge(merged_doc, data), positions=merged_pos)


# --- `--set KEY=VALUE`: one run's changes to the merged document ---------------------------------

OVERRIDE = "--set"  # an overridden value's position (in errors) is `--set KEY=VALUE`
_INDEX = re.compile(r"\[(\d+)\]")


@dataclass(frozen=True)
class Override:
    """One `--set`: the key path as written, the value (parsed as YAML) and how it applies.

    `mode` follows Hydra: "set" (`KEY=VALUE`) changes a key the recipe has, "add" (`+KEY=VALUE`)
    adds one it has not, "put" (`++KEY=VALUE`) does either. So a typo cannot add a key silently.
    """

    text: str
    keys: tuple[str, ...]
    value: Any
    mode: str

    @property
    def origin(self) -> str:
        return f"{OVERRIDE} {printable(self.text)}"

    @property
    def shown(self) -> str:
        """The key path as errors print it: `pipeline[1].sparsity`."""
        return format_loc(tuple(int(k) if k.isdigit() else k for k in self.keys))


def parse_override(text: str) -> Override:
    """`train.epochs=2`, `pipeline[1].sparsity=0.5` or `pipeline.1.sparsity=0.5`, `+data.x=1`."""
    key, sep, raw = text.partition("=")
    origin = f"{OVERRIDE} {printable(text)}"
    mode = "put" if key.startswith("++") else "add" if key.startswith("+") else "set"
    path = _INDEX.sub(r".\1", key.lstrip("+").strip())
    keys = tuple(part.strip() for part in path.split("."))
    if not sep or not all(keys):
        raise RecipeError(
            "expected KEY=VALUE with a dotted key, e.g. --set train.epochs=2 or "
            "--set pipeline.1.sparsity=0.5 (add a new key with --set +data.max_samples=300)",
            file=origin,
        )
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or "syntax error"
        raise RecipeError(
            printable(f"the value is not valid YAML ({problem}); quote it, e.g. {key}='...'"),
            file=origin,
        ) from None
    return Override(text=text, keys=keys, value=value, mode=mode)


def _step(container: Any, key: str) -> str | int | None:
    """The key or index `key` names in `container`, or None when it has no such entry."""
    if isinstance(container, dict):
        if key in container:
            return key
        if key.lstrip("-").isdigit() and int(key) in container:  # YAML `1: x` keys are ints
            return int(key)
    elif isinstance(container, list) and key.isdigit() and int(key) < len(container):
        return int(key)
    return None


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _holds(value: Any) -> bool:
    """A mapping or a list: something a key path can go into (not narrowed: `value` stays Any)."""
    return isinstance(value, (dict, list))


def _apply(doc: dict[str, Any], item: Override) -> Loc:
    """Apply one override to `doc` in place; returns the location it set."""
    from effcli.registry import did_you_mean

    def fail(message: str) -> RecipeError:
        return RecipeError(printable(message), file=item.origin, path=item.shown)

    if item.keys[0] == "extends":
        raise fail(
            "presets are merged before --set applies; override the values they set instead, "
            "e.g. --set train.epochs=2"
        )
    target: Any = doc  # a dict or a list at each step (checked)
    loc: Loc = ()
    for depth, key in enumerate(item.keys):
        last = depth == len(item.keys) - 1
        if not _holds(target):
            raise fail(f"{format_loc(loc)} is {_short(target)}, not a mapping or a list")
        step = _step(target, key)
        if step is not None and last and item.mode == "add":
            raise fail(
                f"already in the recipe (it is {_short(target[step])}); to change it, write "
                f"--set {printable(item.text.lstrip('+'))}"
            )
        if step is None and not isinstance(target, dict):  # a list
            appends = last and item.mode != "set" and key.isdigit() and int(key) == len(target)
            if not appends:
                hint = f"; add one at the end with --set +{format_loc(loc)}.{len(target)}=..."
                raise fail(
                    f"{format_loc(loc)} has {len(target)} item(s), numbered from 0"
                    + (hint if last else "")
                )
            target.append(item.value)
            return (*loc, len(target) - 1)
        if step is None:
            if item.mode == "set":
                siblings = [str(k) for k in target]
                raise fail(
                    f"not in the recipe{did_you_mean(key, siblings)}; to add a key, write "
                    f"--set +{printable(item.text)}"
                )
            step = key
            if not last:
                target[step] = {}
        loc = (*loc, step)
        if last:
            target[step] = item.value
        else:
            target = target[step]
    return loc


def apply_overrides(source: RecipeSource, overrides: Sequence[str]) -> RecipeSource:
    """`source` with `--set KEY=VALUE` overrides applied in order to (a copy of) its merged
    document, after `extends`. Each overridden value's position becomes its `--set`, so errors
    in it name the override instead of a line of the file it replaced."""
    if not overrides:
        return source
    doc = copy.deepcopy(source.doc)
    positions = dict(source.positions)
    for text in overrides:
        item = parse_override(text)
        loc = _apply(doc, item)
        for known in [k for k in positions if k[: len(loc)] == loc]:
            del positions[known]
        positions[loc] = (item.origin, None)
    return dataclasses.replace(source, doc=doc, positions=positions)
