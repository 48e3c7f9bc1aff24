"""The `--data` argument of `effdl measure`: a recipe, a .npz, or KEY=VALUE pairs -> a test set."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from effcli.errors import UsageError
from effcli.measure.row import TestSet


def _split_pairs(text: str) -> list[str]:
    """Split `a=1,b=[1, 2],c=x` on the commas outside brackets."""
    parts, depth, current = [], 0, ""
    for char in text:
        depth += char in "[{("
        depth -= char in "]})"
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return [p.strip() for p in parts if p.strip()]


def parse_data_spec(text: str) -> tuple[dict[str, Any], int]:
    """`source=npz,path=x.npz,seed=1` -> (data spec, seed); dotted keys nest (`split.test=0.3`)."""
    import yaml

    spec: dict[str, Any] = {}
    for pair in _split_pairs(text):
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(
                f"--data {text}: expected a recipe .yaml, a .npz with x and y, or KEY=VALUE pairs "
                "such as source=digits or source=npz,path=data.npz"
            )
        try:
            parsed = yaml.safe_load(value) if value.strip() else ""
        except yaml.YAMLError:
            parsed = value
        target = spec
        *parents, last = key.strip().split(".")
        for parent in parents:
            target = target.setdefault(parent, {})
        target[last] = parsed
    seed = spec.pop("seed", 0)
    if not isinstance(seed, int):
        raise UsageError(f"--data {text}: seed must be a whole number (got {seed!r})")
    if "source" not in spec:
        raise UsageError(f"--data {text}: name the data source, e.g. source=digits")
    return spec, seed


def _pydantic_line(exc: Exception) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        first = errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        return f"{where}: {first.get('msg')}" if where else str(first.get("msg"))
    return str(exc)


def load_test_split(text: str) -> tuple[TestSet, str]:
    """The test split named by --data, and what it was (for the table title and the `data`
    column): a recipe's data block (its seed, paths relative to it), a .npz with arrays x and y
    (e.g. a run's test.npz, used whole), or KEY=VALUE pairs."""
    import numpy as np
    from pydantic import ValidationError

    from effcli.data.base import load_splits
    from effcli.registry import UnknownName

    path = Path(text).expanduser()
    if path.suffix.lower() in (".yaml", ".yml") and "=" not in text:
        if not path.is_file():
            raise UsageError(f"--data {text}: no such recipe file")
        from effcli.plan import load_plan

        plan = load_plan(path)
        spec, seed, root = dict(plan.data_spec), plan.seed, path.resolve().parent
    elif path.suffix.lower() == ".npz" and "=" not in text:
        if not path.is_file():
            raise UsageError(f"--data {text}: no such file")
        with np.load(path, allow_pickle=False) as arrays:
            if "x" not in arrays or "y" not in arrays:
                raise UsageError(
                    f"--data {text}: the .npz needs arrays x and y (found "
                    f"{', '.join(arrays.files) or 'none'}); for other names use "
                    f"source=npz,path={text},x_key=...,y_key=..."
                )
            x, y = arrays["x"], arrays["y"]
        return TestSet(x.astype(np.float32), y.astype(np.int64)), f"{path} (whole file)"
    else:
        spec, seed = parse_data_spec(text)
        root = Path.cwd()
    source = str(spec["source"])
    try:
        splits = load_splits(spec, root, seed)
    except UnknownName as exc:
        raise UsageError(f"--data {text}: {exc}") from None
    except ValidationError as exc:
        raise UsageError(f"--data {text}: {_pydantic_line(exc)}") from None
    return TestSet(splits.x_test, splits.y_test), f"{source} test split, seed {seed}"
