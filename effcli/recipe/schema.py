"""The validated recipe: pydantic models for the fixed sections, typed holders for the plug-ins.

`data`, `model` and `pipeline` entries are validated by the Params model of the dataset, model
family or stage they name, so a new plug-in brings its own schema and the recipe needs no edit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_serializer,
    model_validator,
)

MAX_REPLICATES = 100
BASELINES = ("linear", "smallest")


def replicate_seed(seed: int, replicate: int) -> int:
    """The training seed of replicate k: the recipe's seed + k (replicate 0 is the recipe's own
    seed, so a run with one replicate is exactly the run without replicates)."""
    return (seed + replicate) % 2**31


class StrictModel(BaseModel):
    """Base of every recipe schema: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class SplitSpec(StrictModel):
    """Fractions of the data for training, validation (all selection) and test (reporting only)."""

    train: float = Field(0.7, gt=0, lt=1, description="a fraction in (0, 1)")
    val: float = Field(0.1, gt=0, lt=1, description="a fraction in (0, 1)")
    test: float = Field(0.2, gt=0, lt=1, description="a fraction in (0, 1)")

    @model_validator(mode="after")
    def _sums_to_one(self) -> SplitSpec:
        total = self.train + self.val + self.test
        if not math.isclose(total, 1.0, abs_tol=1e-6):
            raise ValueError(f"train + val + test must sum to 1 (got {total:g})")
        return self


class EarlyStoppingSpec(StrictModel):
    """Stop when the validation metric stalls, and keep the best epoch's weights.

    `start_from_epoch` defaults to a warm-up: BatchNorm statistics on small data need a few
    hundred steps, and stopping before that returned chance-level models (measured on digits).
    """

    enabled: bool = True
    monitor: Literal["val_accuracy", "val_loss"] = "val_accuracy"
    patience: int = Field(5, ge=1, le=1000, description="epochs without improvement, >= 1")
    start_from_epoch: int = Field(8, ge=0, description="epochs before stopping may start, >= 0")
    restore_best: bool = True


class AugmentSpec(StrictModel):
    """Random transformations of training batches (never validation/test, never the model).

    Each is off at its default; a value turns it on with that strength.
    """

    flip: bool = Field(False, description="random horizontal flips (images)")
    translate: float = Field(
        0.0, ge=0, le=0.5, description="max shift as a fraction of the size (images, sequences)"
    )
    rotate: float = Field(
        0.0, ge=0, le=0.5, description="max rotation as a fraction of a full turn (images)"
    )
    zoom: float = Field(0.0, ge=0, le=0.9, description="max zoom in/out as a fraction (images)")
    contrast: float = Field(0.0, ge=0, le=1, description="max contrast change factor (images)")
    noise: float = Field(0.0, ge=0, le=10, description="std of additive Gaussian noise (any data)")
    cutout: float = Field(
        0.0, ge=0, le=1, description="side of one erased square/segment, as a fraction of the size"
    )
    mixup: float = Field(
        0.0, ge=0, le=10, description="alpha of Beta(alpha, alpha) batch mixing (any data); 0 = off"
    )

    def active(self) -> dict[str, Any]:
        """The transformations that are on, with their strengths."""
        return {k: v for k, v in self.model_dump().items() if v}


class LRScheduleSpec(StrictModel):
    """How the learning rate changes over training; `plateau` watches val_loss (validation)."""

    kind: Literal["constant", "cosine", "step", "plateau"] = "constant"
    min_fraction: float = Field(
        0.0, ge=0, le=1, description="cosine: final rate as a fraction of the initial one"
    )
    step_epochs: int = Field(10, ge=1, description="step: epochs between drops, >= 1")
    factor: float = Field(0.1, gt=0, lt=1, description="step/plateau: multiply the rate by this")
    patience: int = Field(3, ge=1, description="plateau: epochs without val_loss improvement")


class TrainSpec(StrictModel):
    """Training defaults shared by every stage that trains or fine-tunes."""

    epochs: int = Field(
        20, ge=0, le=10_000, description="0..10000; 0 keeps the model as built or loaded"
    )
    batch_size: int = Field(32, ge=1, le=65_536, description="a whole number, 1..65536")
    optimizer: Literal["adam", "adamw", "sgd", "rmsprop"] = "adam"
    learning_rate: float = Field(1e-3, gt=0, le=10, description="a positive number, e.g. 1e-3")
    weight_decay: float = Field(0.0, ge=0, le=1, description="decoupled weight decay, e.g. 1e-4")
    label_smoothing: float = Field(0.0, ge=0, lt=1, description="a fraction in [0, 1)")
    lr_schedule: LRScheduleSpec = LRScheduleSpec()
    augment: AugmentSpec = AugmentSpec()
    early_stopping: EarlyStoppingSpec = EarlyStoppingSpec()
    mixed_precision: bool = Field(
        False,
        description="true or false: train in mixed_float16 (needs a GPU; a CPU run refuses it)",
    )

    @model_serializer(mode="wrap")
    def _without_defaults_added_later(self, handler: Any) -> Any:
        """Leave out `mixed_precision` while it is off: every node key recorded before the
        option existed stays the same (a key hashes this dump)."""
        data = handler(self)
        if isinstance(data, dict) and not data.get("mixed_precision"):
            data.pop("mixed_precision", None)
        return data


MAX_LATENCY_THREADS = 64
MAX_THROUGHPUT_BATCH = 4096


class MeasureSpec(StrictModel):
    """`measure:`: how exported models are timed. Part of no node key: the numbers it adds are
    measured on the exported file (see effcli.measure.latency)."""

    latency_threads: tuple[int, ...] = Field(
        (1,),
        description=f"thread counts to time latency with, e.g. [1, 4] (each 1..{MAX_LATENCY_THREADS}"
        ", once); the plain latency columns are 1 thread, each other count T adds "
        "latency_ms_p50_tT and latency_ms_p95_tT",
    )
    throughput_batch: int | None = Field(
        None,
        ge=1,
        le=MAX_THROUGHPUT_BATCH,
        description=f"a batch size 1..{MAX_THROUGHPUT_BATCH}: adds throughput_per_s, samples per "
        "second invoking batches of that size (1 thread)",
    )

    @field_validator("latency_threads", mode="before")
    @classmethod
    def _thread_counts(cls, value: Any) -> Any:
        if not isinstance(value, (list, tuple)) or not value:
            raise ValueError(
                f"expected a non-empty list of thread counts, e.g. [1, 4] (got {value!r})"
            )
        for count in value:
            if isinstance(count, bool) or not isinstance(count, int):
                raise ValueError(f"each thread count must be a whole number (got {count!r})")
            if not 1 <= count <= MAX_LATENCY_THREADS:
                raise ValueError(
                    f"each thread count must be 1..{MAX_LATENCY_THREADS} (got {count})"
                )
        twice = next((c for i, c in enumerate(value) if c in value[:i]), None)
        if twice is not None:
            raise ValueError(f"thread count {twice} is listed twice; give each count once")
        return tuple(value)

    @field_validator("throughput_batch", mode="before")
    @classmethod
    def _no_bool_batch(cls, value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError(f"expected a batch size, a whole number (got {value!r})")
        return value


class RecipeDoc(StrictModel):
    """The top level of a recipe file (after `extends` is merged and sweeps are chosen)."""

    name: str = Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$",
        description="1-64 letters, digits, '.', '_' or '-', starting with a letter or digit",
    )
    description: str = ""
    seed: int = Field(0, ge=0, le=2**31 - 1, description="a whole number >= 0")
    replicates: int = Field(
        1,
        ge=1,
        le=MAX_REPLICATES,
        description=f"a whole number 1..{MAX_REPLICATES}: trainings of every variant "
        "(replicate k trains with seed + k)",
    )
    deterministic: bool = Field(False, description="true or false (TensorFlow op determinism)")
    baseline: bool | str | None = Field(
        None, description="true, false, linear or smallest (default: true for tabular data)"
    )

    tracking: Literal["mlflow", "tensorboard", "none"] | None = Field(
        None,
        description="mlflow, tensorboard or none: also log every row to an experiment tracker "
        "(`effdl run --track` overrides it; no node key depends on it)",
    )

    @field_validator("baseline", mode="before")
    @classmethod
    def _baseline_kind(cls, value: Any) -> Any:
        if value is None or isinstance(value, bool) or value in BASELINES:
            return value
        raise ValueError(f"baseline must be true, false, {' or '.join(BASELINES)} (got {value!r})")

    data: dict[str, Any] = Field(default_factory=lambda: {"source": "digits"})
    model: dict[str, Any] = Field(default_factory=lambda: {"family": "cnn"})
    train: TrainSpec = TrainSpec()
    measure: MeasureSpec = MeasureSpec()
    pipeline: list[dict[str, Any]] = Field(
        min_length=1, description="a list of stages, e.g. - {stage: train}"
    )


class ModelDoc(StrictModel):
    """`model:` names a registered family, or a function (`factory`) or file (`path`) the user
    brings, and its arguments."""

    family: str | None = None
    factory: str | None = Field(
        None,
        pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$",
        description="'package.module:function' returning an uncompiled tf_keras model",
    )
    path: str | None = Field(None, description="a saved tf_keras model (.keras/.h5/SavedModel)")
    weights: str | None = Field(
        None, description="a weights file (.h5) for a family that loads one, e.g. mobilenet_v2"
    )
    args: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_source(self) -> ModelDoc:
        given = [k for k in ("family", "factory", "path") if getattr(self, k) is not None]
        if len(given) > 1:
            raise ValueError(f"give one of family, factory or path (got {' and '.join(given)})")
        return self


@dataclass(frozen=True)
class DataConfig:
    source: str
    params: BaseModel

    def spec(self) -> dict[str, Any]:
        """What identifies the data: part of every node key."""
        return {"source": self.source, **self.params.model_dump(mode="json")}


@dataclass(frozen=True)
class ModelConfig:
    family: str
    args: dict[str, Any]


@dataclass(frozen=True)
class StageConfig:
    kind: str
    index: int  # position in the recipe's pipeline (disabled stages keep their numbers)
    params: BaseModel


@dataclass(frozen=True)
class Recipe:
    """One fully chosen variant of a recipe, every part validated."""

    name: str
    description: str
    seed: int  # splits the data; replicate k trains with replicate_seed(seed, k)
    data: DataConfig
    model: ModelConfig
    train: TrainSpec
    pipeline: tuple[StageConfig, ...]
    warnings: tuple[str, ...] = ()  # "file:line: path: advice" lines found while validating
    # Leaf node key of every pipeline already planned, for stages that name one (a teacher).
    refs: dict[str, str] = field(default_factory=dict, compare=False, hash=False)
    source_dir: Path | None = None  # the recipe file's folder: relative paths start here
    replicates: int = 1
    deterministic: bool = False
    baseline: bool | str | None = None
    measure: MeasureSpec = MeasureSpec()  # how exports are timed; in no node key
