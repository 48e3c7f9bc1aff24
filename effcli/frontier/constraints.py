"""`--where` constraints: parse `COLUMN OP VALUE` with units, then filter rows before the front.

Units follow the column's name, the same convention the table uses to display it: `*_bytes`
columns are bytes (KB/MB/GB are 1000-based like the table, KiB/MiB/GiB 1024-based), `*_ms*`
columns milliseconds and `*_seconds` columns seconds (us, ms, s, min, h convert), fractions
(`*accuracy`, `*sparsity`, `*_kept`, `*_ok`) take a plain number or a percentage. Text columns
(`pipeline`, `variant`, `run`, ...) compare with == and != (globs * ? [] allowed).

Parsing (`parse_constraint`) needs only the expression, so it is a pure function; checking the
column exists and filtering (`apply_constraints`) needs the rows.
"""

from __future__ import annotations

import fnmatch
import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np
import pandas as pd

from effcli.errors import EffdlError, UsageError
from effcli.frontier.table import format_value
from effcli.registry import did_you_mean

OPERATORS: dict[str, Callable[[Any, Any], Any]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}
_EXPRESSION = re.compile(
    r"^\s*(?P<column>[A-Za-z_][\w.\-]*?)\s*(?P<op><=|>=|==|!=|=|<|>)\s*(?P<value>\S.*?)\s*$"
)
_NUMBER = re.compile(
    r"^(?P<number>[+-]?(?:\d[\d_]*(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)\s*(?P<unit>[A-Za-zµ%]*)$"
)

# Unit -> exact factor to the column's base unit, per kind of column (keys are lowercase).
# Fractions keep conversions exact: 96% is the same double as 0.96, 500us as 0.5 ms.
_BYTES = {
    "b": Fraction(1),
    "kb": Fraction(1000),
    "mb": Fraction(1000**2),
    "gb": Fraction(1000**3),
    "kib": Fraction(1024),
    "mib": Fraction(1024**2),
    "gib": Fraction(1024**3),
}
_SECONDS = {
    "us": Fraction(1, 10**6),
    "µs": Fraction(1, 10**6),
    "ms": Fraction(1, 1000),
    "s": Fraction(1),
    "min": Fraction(60),
    "h": Fraction(3600),
}
_FRACTION_ENDINGS = ("accuracy", "sparsity", "_kept", "_ok", "fraction")


class NoMatch(EffdlError):
    """Valid constraints that no ok row satisfies (exit 1: the question was fine, no answer)."""


@dataclass(frozen=True)
class ColumnKind:
    """What a column measures, read from its name: the units its constraints may use."""

    name: str  # bytes | milliseconds | seconds | fraction | number
    units: dict[str, Fraction]
    hint: str


def column_kind(column: str) -> ColumnKind:
    """The kind of `column`, by the naming convention of results.csv."""
    if column.endswith("_bytes") or column == "bytes":
        return ColumnKind(
            "bytes",
            _BYTES,
            "a size in bytes; use B, KB, MB, GB (1000-based) or KiB, MiB, GiB (1024-based)",
        )
    if re.search(r"(^|_)ms(_|$)", column):
        ms = {unit: factor * 1000 for unit, factor in _SECONDS.items()}
        return ColumnKind("milliseconds", ms, "a time in milliseconds; use us, ms, s, min or h")
    if column.endswith("seconds"):
        return ColumnKind("seconds", _SECONDS, "a time in seconds; use us, ms, s, min or h")
    if column.endswith(_FRACTION_ENDINGS):
        return ColumnKind(
            "fraction",
            {"%": Fraction(1, 100)},
            "a fraction; write a plain number (0.95) or a percentage (95%)",
        )
    return ColumnKind("number", {}, "a plain number; write it without a unit")


@dataclass(frozen=True)
class Constraint:
    """One parsed `--where`: the number is in the column's own unit; `text` is the raw value."""

    expression: str
    column: str
    op: str
    text: str
    number: float | None  # None: the value is text (only == and != apply)

    def __str__(self) -> str:
        return self.expression

    @property
    def label(self) -> str:
        """`--where "EXPR"`, as messages quote it."""
        return f'--where "{self.expression}"'


def parse_constraint(expression: str, columns: Sequence[str] | None = None) -> Constraint:
    """`COLUMN OP VALUE` -> Constraint, units normalized to the column's unit.

    UsageError if the syntax is wrong, the column is not among `columns` (when given; with a
    did-you-mean), or the unit does not fit the column.
    """
    match = _EXPRESSION.match(expression)
    if match is None:
        raise UsageError(
            f'--where "{expression.strip()}": expected COLUMN OP VALUE with OP one of '
            "< <= > >= == != (e.g. --where 'tflite_bytes<100KB')"
        )
    column, op, value = match["column"], match["op"], match["value"]
    op = "==" if op == "=" else op
    expression = f"{column}{op}{value}"
    quoted = f'--where "{expression}"'
    if columns is not None and column not in columns:
        choices = [c for c in columns if c != "on_frontier"]
        hint = did_you_mean(column, choices) or f"; columns: {', '.join(sorted(choices))}"
        raise UsageError(f"{quoted}: no such column {column}{hint}")
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        value, number_match = value[1:-1], None  # quoted: always text
    else:
        number_match = _NUMBER.match(value)
    if number_match is None:
        if op not in ("==", "!="):
            raise UsageError(
                f"{quoted}: {value!r} is not a number; text compares only with == or !="
            )
        return Constraint(expression, column, op, value, None)
    exact = Fraction(number_match["number"].replace("_", ""))
    unit = number_match["unit"]
    kind = column_kind(column)
    if unit:
        factor = kind.units.get(unit.lower())
        if factor is None:
            raise UsageError(f"{quoted}: unit {unit} does not fit {column}, {kind.hint}")
        exact *= factor
    elif kind.name == "fraction" and abs(exact) > 1:
        number = float(exact)
        raise UsageError(
            f"{quoted}: {column} is a fraction (1.0 = 100 %); write {number / 100:g} or {number:g}%"
        )
    return Constraint(expression, column, op, value, float(exact))


def parse_constraints(
    expressions: Sequence[str], columns: Sequence[str] | None = None
) -> list[Constraint]:
    return [parse_constraint(e, columns) for e in expressions]


TEXT_COLUMNS = {"run", "variant", "branch", "pipeline", "status", "error"}


def _numeric(series: pd.Series) -> pd.Series | None:
    """The column as numbers, or None when it holds text or booleans (compared as text)."""
    if series.name in TEXT_COLUMNS or pd.api.types.is_bool_dtype(series):
        return None
    if pd.api.types.is_numeric_dtype(series):
        return series
    present = series.dropna()
    if present.map(lambda v: isinstance(v, (bool, np.bool_))).any():
        return None
    # An object column of numbers (e.g. a knob column with blanks) still compares as numbers.
    coerced = pd.to_numeric(series, errors="coerce")
    return coerced if coerced.notna().sum() == len(present) and len(present) else None


def _as_text(series: pd.Series) -> pd.Series:
    """Cells as strings for == / != (missing -> '', booleans -> 'true'/'false')."""

    def cell(value: object) -> str:
        if value is None or (isinstance(value, float) and np.isnan(value)):
            return ""
        if isinstance(value, (bool, np.bool_)):
            return str(bool(value)).lower()
        return str(value)

    return series.map(cell).astype(object)


def _matches(series: pd.Series, constraint: Constraint) -> pd.Series:
    """Boolean mask of the rows of one column that satisfy the constraint."""
    numeric = _numeric(series)
    if numeric is not None and constraint.number is not None:
        if constraint.op in ("==", "!="):
            close = np.isclose(numeric.to_numpy(dtype=float), constraint.number, rtol=1e-9, atol=0)
            hit = close if constraint.op == "==" else ~close
            return pd.Series(hit, index=series.index) & numeric.notna()
        return OPERATORS[constraint.op](numeric, constraint.number) & numeric.notna()
    if numeric is not None:
        raise UsageError(
            f"{constraint.label}: {constraint.column} is numeric; {constraint.text!r} is not a number"
        )
    if constraint.op not in ("==", "!="):
        raise UsageError(
            f"{constraint.label}: {constraint.column} is text; compare it with == or != "
            "(globs * ? [] allowed)"
        )
    text = _as_text(series)
    wanted = constraint.text.lower() if constraint.text.lower() in ("true", "false") else None
    if wanted is not None:
        hit = text.str.lower() == wanted
    elif any(c in constraint.text for c in "*?["):
        hit = text.map(lambda v: fnmatch.fnmatchcase(v, constraint.text)).astype(bool)
    else:
        hit = text == constraint.text
    return hit if constraint.op == "==" else ~hit


def constraint_masks(df: pd.DataFrame, constraints: Sequence[Constraint]) -> list[pd.Series]:
    """One mask per constraint (UsageError for an unknown column or a type that cannot compare)."""
    for constraint in constraints:
        parse_constraint(constraint.expression, list(df.columns))  # the column must exist
    return [_matches(df[c.column], c) for c in constraints]


def apply_constraints(df: pd.DataFrame, constraints: Sequence[Constraint]) -> pd.DataFrame:
    """The rows that satisfy every constraint; NoMatch (with what each one keeps) if none do."""
    if not constraints:
        return df
    masks = constraint_masks(df, constraints)
    keep = np.logical_and.reduce([m.to_numpy(dtype=bool) for m in masks])
    if len(df) and not keep.any():
        raise NoMatch(_no_match_message(df, constraints, masks))
    return df[keep]


def _closest(df: pd.DataFrame, constraint: Constraint) -> str:
    """' (smallest X is V)' for an upper bound, ' (largest X is V)' for a lower bound."""
    if constraint.number is None or constraint.op in ("==", "!="):
        return ""
    values = pd.to_numeric(df[constraint.column], errors="coerce").dropna()
    if values.empty:
        return f" (no row has a {constraint.column})"
    upper = constraint.op in ("<", "<=")
    value = values.min() if upper else values.max()
    which = "smallest" if upper else "largest"
    return f" (the {which} {constraint.column} is {format_value(constraint.column, value)})"


def _no_match_message(
    df: pd.DataFrame, constraints: Sequence[Constraint], masks: list[pd.Series]
) -> str:
    total = len(df)
    if len(constraints) == 1:
        c = constraints[0]
        return f"no ok variant satisfies {c.label}{_closest(df, c)}"
    parts = [
        f'"{c.expression}" keeps {int(m.sum())} of {total}'
        + (_closest(df, c) if not m.any() else "")
        for c, m in zip(constraints, masks, strict=True)
    ]
    return "no ok variant satisfies every --where: " + ", ".join(parts)
