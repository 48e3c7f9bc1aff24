"""A table in a CSV file with a named label column (registered as `csv`).

Preprocessing is fitted on the training split only, so nothing of val/test leaks into it:
numeric columns are standardized with the training mean and std (missing values become the
mean, i.e. 0); text columns are one-hot encoded over the categories seen in training (an unseen
or missing category is all zeros). Labels map to 0..n-1 in sorted order; the mapping is in the
split record (split.json)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field

from effcli.data._arrays import infer_kind
from effcli.data.base import (
    DataError,
    DataParams,
    Dataset,
    DataSplits,
    datasets,
    path_problem,
    resolve_path,
    stratified_split,
)
from effcli.recipe.source import Loc
from effcli.registry import did_you_mean

_WHAT = "a CSV file with a header row and a label column"


class CsvParams(DataParams):
    path: str = Field(description="the CSV file (header row first); relative to the recipe")
    label: str = Field(min_length=1, description="the name of the column holding the classes")
    sep: str = Field(",", min_length=1, description="the field separator, e.g. ',' or ';'")
    drop: list[str] = Field(
        default_factory=list, description="columns to ignore (ids, free text), by name"
    )
    categorical: list[str] = Field(
        default_factory=list,
        description="numeric columns to one-hot encode as categories (e.g. codes); text "
        "columns always are",
    )
    shape: list[int] | None = Field(
        None,
        min_length=2,
        max_length=3,
        description="reshape each row's features, e.g. [8, 8, 1] for pixel columns (then the "
        "data is image or sequence data, by the same rule as npz)",
    )


@datasets.register("csv")
class CsvDataset(Dataset[CsvParams]):
    """Tabular float32 rows: standardized numbers, then one-hot categories."""

    Params = CsvParams
    kind = "tabular"

    @classmethod
    def data_kind(cls, params: CsvParams, root: str | Path) -> str | None:
        return infer_kind(tuple(params.shape)) if params.shape else cls.kind

    @classmethod
    def check(cls, params: CsvParams, root: str | Path) -> Iterable[tuple[Loc, str]]:
        problem = path_problem(resolve_path(params.path, root), "file", _WHAT)
        if problem:
            yield ("data", "path"), problem

    def load(self, params: CsvParams, seed: int) -> DataSplits:
        self.ensure_ready(params)
        import pandas as pd

        path = resolve_path(params.path, self.root)
        try:
            table = pd.read_csv(path, sep=params.sep)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
            reason = " ".join(str(exc).split())
            raise DataError(f"{path}: cannot read it as CSV ({reason}); check data.sep") from None
        columns = [str(c) for c in table.columns]
        table.columns = columns
        for key, names in (("label", [params.label]), ("drop", params.drop)):
            for name in names:
                if name not in columns:
                    raise DataError(
                        f"data.{key}: no column '{name}' in {path}{did_you_mean(name, columns)}; "
                        f"columns: {', '.join(columns)}"
                    )
        for name in params.categorical:
            if name not in columns or name == params.label or name in params.drop:
                raise DataError(
                    f"data.categorical: '{name}' is not a feature column of {path}"
                    f"{did_you_mean(name, columns)}; columns: {', '.join(columns)}"
                )

        y, names = self._labels(table[params.label], path, params.label)
        features = [c for c in columns if c != params.label and c not in params.drop]
        if not features:
            raise DataError(f"{path}: no feature columns left besides the label and data.drop")
        rows = np.arange(len(table)).reshape(-1, 1)
        splits = stratified_split(
            rows,
            y,
            params.split,
            seed,
            kind=self.kind,
            num_classes=len(names),
            max_samples=params.max_samples,
        )
        encode, info = _fit(table.iloc[splits.x_train[:, 0]], features, set(params.categorical))
        record = {k: v for k, v in splits.split.items() if k != "indices"}
        record.update(
            class_names=names,
            label_mapping={name: i for i, name in enumerate(names)},
            **info,
            indices=splits.split["indices"],
        )
        arrays = [
            encode(table.iloc[part[:, 0]]) for part in (splits.x_train, splits.x_val, splits.x_test)
        ]
        kind = self.kind
        if params.shape:  # pixel (or time-step) columns: back to their shape
            width = arrays[0].shape[1]
            if int(np.prod(params.shape)) != width:
                raise DataError(
                    f"data.shape {params.shape} holds {int(np.prod(params.shape))} values, but "
                    f"{path} has {width} encoded feature columns; fix data.shape"
                )
            arrays = [a.reshape(-1, *params.shape) for a in arrays]
            kind = self.data_kind(params, self.root) or kind
        return dataclasses.replace(
            splits,
            x_train=arrays[0],
            x_val=arrays[1],
            x_test=arrays[2],
            kind=kind,
            split=record,
        )

    @staticmethod
    def _labels(column: Any, path: Path, name: str) -> tuple[np.ndarray, list[str]]:
        """Labels 0..n-1 in sorted order of the label values, and those values as text."""
        import pandas as pd

        missing = np.flatnonzero(column.isna().to_numpy())
        if missing.size:
            raise DataError(
                f"{path}: label column '{name}' is empty in {missing.size} row(s) (first on "
                f"line {missing[0] + 2}); fill those labels or delete the rows"
            )
        if pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
            values = np.sort(column.unique())
        else:
            column = column.astype(str)
            values = np.asarray(sorted(column.unique()), dtype=object)
        if len(values) < 2:
            raise DataError(
                f"{path}: label column '{name}' has a single class ({values[0]!s}); "
                "classification needs at least 2"
            )
        y = np.searchsorted(values, column.to_numpy()) if values.dtype != object else None
        if y is None:
            position = {v: i for i, v in enumerate(values)}
            y = np.asarray([position[v] for v in column], dtype=np.int64)
        names = [_text(v) for v in values]
        return y.astype(np.int64), names


def _text(value: Any) -> str:
    """A label value as it reads in the file (1.0 -> '1', True -> 'True')."""
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value.item() if isinstance(value, np.generic) else value)


def _fit(train: Any, features: list[str], forced: set[str]) -> tuple[Any, dict[str, Any]]:
    """Fit standardization and one-hot categories on the training rows; returns the encoder
    (a table -> float32 array) and what it learned, for the split record."""
    import pandas as pd

    numeric = [
        c
        for c in features
        if c not in forced
        and (pd.api.types.is_numeric_dtype(train[c]) or pd.api.types.is_bool_dtype(train[c]))
    ]
    categorical = [c for c in features if c not in numeric]
    stats: dict[str, tuple[float, float]] = {}
    for c in numeric:
        values = train[c].astype(float)
        mean = float(values.mean()) if values.notna().any() else 0.0
        std = float(values.std(ddof=0)) if values.notna().any() else 0.0
        stats[c] = (mean, std if np.isfinite(std) and std > 0 else 1.0)
    categories = {c: sorted({str(v) for v in train[c].dropna()}) for c in categorical}

    def encode(table: Any) -> np.ndarray:
        parts = []
        for c in numeric:
            mean, std = stats[c]
            parts.append(((table[c].astype(float).fillna(mean) - mean) / std).to_numpy()[:, None])
        for c in categorical:
            text = table[c].map(lambda v: None if pd.isna(v) else str(v)).to_numpy()
            cats = np.asarray(categories[c], dtype=object)
            parts.append((text[:, None] == cats[None, :]).astype(np.float64))
        return np.concatenate(parts, axis=1).astype(np.float32)

    names = [*numeric, *(f"{c}={v}" for c in categorical for v in categories[c])]
    info = {
        "features": names,
        "standardization": {c: {"mean": m, "std": s} for c, (m, s) in stats.items()},
        "categories": categories,
    }
    return encode, info
