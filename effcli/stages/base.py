"""The Stage interface and its registry.

A stage turns its parent's artifact (or nothing, for the first stage) into a new artifact.
Everything technique-specific lives in the stage: its schema (`Params`), what decides its output
(`resolve`, hashed into the node key), plan-time checks, and how it runs. The runner knows none.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar, cast

from pydantic import BaseModel

from effcli.artifacts import KerasModel
from effcli.errors import StageFailed
from effcli.recipe.schema import Recipe, StageConfig, StrictModel
from effcli.registry import Registry
from effcli.stages._label import tokens

if TYPE_CHECKING:
    from effcli.artifacts import Artifact
    from effcli.data.base import DataSplits

EpochCallback = Callable[[int, int, dict[str, float]], None]


def _no_dependencies(key: str) -> Artifact:
    raise LookupError(f"node {key[:12]} is not available to this stage")


class StageParams(StrictModel):
    """Base of every stage's argument schema (unknown keys rejected)."""


P = TypeVar("P", bound=StageParams)


@dataclass(frozen=True)
class NodeInfo:
    """What an earlier node of the chain did; later stages may adapt to it."""

    kind: str
    resolved: dict[str, Any]
    info: dict[str, Any]


@dataclass
class TrainingCost:
    """What a node's training did, added up over its fit calls (a search's trials, a fine-tune
    after pruning): optimizer steps and training samples seen (epochs run x training samples)."""

    steps: int = 0
    samples_seen: int = 0

    def add(self, steps: int, samples_seen: int) -> None:
        self.steps += steps
        self.samples_seen += samples_seen


@dataclass
class StageContext:
    """Everything a stage may use besides its parent artifact."""

    data: DataSplits
    seed: int
    history: tuple[NodeInfo, ...] = ()
    on_epoch: EpochCallback = lambda epoch, epochs, logs: None
    # The artifact of a node this one depends on (see Stage.dependencies), by key.
    dependency: Callable[[str], Artifact] = lambda key: _no_dependencies(key)
    node_key: str = ""  # this node's key
    workdir: Path | None = None  # a run-directory folder for state that must survive a rerun
    cost: TrainingCost = field(default_factory=lambda: TrainingCost())  # what training took


@dataclass
class Alternative:
    """Another output a leaf stage keeps besides its main artifact (e.g. each Pareto-optimal trial
    of a multi-objective search); each becomes its own results row `<variant>-<name>`."""

    name: str
    artifact: Artifact
    metrics: dict[str, float] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)


@dataclass
class StageResult:
    """A stage's output: the artifact, row metrics, details for meta.json, time spent training."""

    artifact: Artifact
    metrics: dict[str, float] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    train_seconds: float = 0.0
    alternatives: list[Alternative] = field(default_factory=list)


class Stage(ABC, Generic[P]):
    """One technique: `class PruneStage(Stage[PruneParams])` sets `Params = PruneParams` and
    implements `run`; see stages/prune.py. Arguments reach the hooks typed as `P`."""

    name: ClassVar[str]
    Params: ClassVar[type[StageParams]] = StageParams
    accepts: ClassVar[tuple[str, ...]] = ("keras",)  # artifact kinds it takes ("none" = first)
    produces: ClassVar[str] = "keras"
    trains: ClassVar[bool] = False  # counted as a training by `effdl plan`
    role: ClassVar[str] = "shrink"  # the survey's phase: grow, shrink or improve
    version: ClassVar[int] = 1  # bump when a code change makes this stage's cached nodes wrong
    # Small, fast arguments the contract tests run this stage with (every mode worth covering).
    examples: ClassVar[tuple[dict[str, Any], ...]] = ()

    @classmethod
    def params_of(cls, stage: StageConfig | BaseModel) -> P:
        """A stage's validated arguments, typed: validation made them a `cls.Params`."""
        params = stage.params if isinstance(stage, StageConfig) else stage
        if not isinstance(params, cls.Params):
            raise TypeError(
                f"{cls.__name__} got {type(params).__name__}, not {cls.Params.__name__}"
            )
        return cast(P, params)

    @classmethod
    def output_kind(cls, params: P) -> str:
        """The artifact kind this configuration produces (`produces` unless it depends on params)."""
        return cls.produces

    @classmethod
    def is_training(cls, params: P) -> bool:
        """Whether this configuration trains (`trains` unless it depends on params)."""
        return cls.trains

    def __init__(self, params: P, resolved: dict[str, Any]) -> None:
        self.params = params
        self.resolved = resolved

    @classmethod
    def check(cls, stage: StageConfig, recipe: Recipe) -> Iterable[tuple[tuple[Any, ...], str]]:
        """Plan-time problems as (location in the recipe, message); none by default."""
        return ()

    @classmethod
    def references(cls, params: P) -> list[tuple[str, str]]:
        """(argument, pipeline name) for each other pipeline this stage uses (e.g. a teacher);
        the plan builds those first and gives their leaf keys in `recipe.refs`."""
        return []

    @classmethod
    def dependencies(cls, resolved: dict[str, Any]) -> list[str]:
        """Node keys, besides the parent, that must be built before this node runs."""
        return []

    @classmethod
    def warnings(cls, stage: StageConfig, recipe: Recipe) -> Iterable[tuple[tuple[Any, ...], str]]:
        """Plan-time advice that does not stop the run, as (location, message); none by default."""
        return ()

    @classmethod
    def resolve(cls, stage: StageConfig, recipe: Recipe) -> dict[str, Any]:
        """Everything that decides this stage's output, as JSON; it is hashed into the node key.

        `stage.index` locates it in `recipe.pipeline`, so a stage may depend on what came before.
        """
        return stage.params.model_dump(mode="json")

    @classmethod
    def describe(cls, params: P) -> str:
        """A short label for plan trees and progress: the arguments the recipe set."""
        changed = params.model_dump(exclude_unset=True, mode="json")
        args = ", ".join(f"{k}={v}" for k, v in changed.items())
        return f"{cls.name}({args})"

    @classmethod
    def label_token(cls, params: P, varying: Mapping[str, Any]) -> str:
        """This stage in a variant's readable label (`prune50%`, `int8`; '' leaves it out).
        `varying` holds the arguments ("sparsity", "augment.mixup") that vary in the run."""
        return " ".join([cls.name, *tokens(varying)])

    def keras_parent(self, parent: Artifact | None) -> KerasModel:
        """The parent as a Keras model (what a stage that accepts only "keras" gets); plan-time
        order checks make anything else impossible, and it would fail in one line."""
        if not isinstance(parent, KerasModel):
            got = parent.kind if parent is not None else "nothing"
            raise StageFailed(f"{self.name} needs a Keras model from the stage before, got {got}")
        return parent

    @abstractmethod
    def run(self, parent: Artifact | None, ctx: StageContext) -> StageResult:
        """Produce this node's artifact; raise StageFailed with a one-line reason on failure."""


stages: Registry[Stage[Any]] = Registry("stage", "effcli.stages", Stage)
