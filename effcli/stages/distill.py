"""Improve: knowledge distillation of a student from a teacher (Hinton et al. 2015).

loss = (1 - alpha) * hard-label loss + alpha * T^2 * KL(softmax(teacher / T) || softmax(student / T))

The teacher is another pipeline of the same recipe (`teacher: wide` names `pipelines: {wide:
...}`; its leaf node is built once, however many students use it, and its key is part of every
student's key) or a model file (`teacher_path`, hashed into the key). As the first stage it
builds the student from the model family (same grow knobs and training overrides as `train`);
after another stage it continues training that stage's model. The artifact is the student alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pydantic import Field, model_validator

from effcli.artifacts import Artifact, KerasModel
from effcli.errors import StageFailed
from effcli.models.user import file_digest, logits_model
from effcli.recipe.schema import Recipe, StageConfig, TrainSpec
from effcli.stages._label import tokens
from effcli.stages._layers import copy_model
from effcli.stages._train_spec import (
    TrainParams,
    build_model,
    check_trains,
    fraction_context,
    fraction_resolved,
    model_spec,
    train_spec,
)
from effcli.stages._training import (
    classifier_loss,
    fit,
    learning_rate,
    make_optimizer,
    steps_per_epoch,
)
from effcli.stages.base import Stage, StageContext, StageResult, stages


class DistillParams(TrainParams):
    teacher: str | None = Field(
        None, description="name of another pipeline in `pipelines:` whose model teaches"
    )
    teacher_path: str | None = Field(
        None, description="a trained tf_keras model file (.keras / .h5 / SavedModel dir)"
    )
    temperature: float = Field(4.0, gt=0, le=100, description="softening temperature T, > 0")
    alpha: float = Field(0.9, ge=0, le=1, description="weight of the teacher's soft targets, 0..1")

    @model_validator(mode="after")
    def _one_teacher(self) -> DistillParams:
        if (self.teacher is None) == (self.teacher_path is None):
            raise ValueError(
                "give exactly one of 'teacher' (a pipeline name) or 'teacher_path' (a model file)"
            )
        return self


@stages.register("distill")
class DistillStage(Stage[DistillParams]):
    """Train (or continue training) a student against a teacher's softened outputs."""

    Params = DistillParams
    accepts = ("none", "keras")
    trains = True
    role = "improve"
    # The contract suite offers a pipeline named `teacher` (a tiny trained model).
    examples = (
        {"teacher": "teacher", "width_multiplier": 0.125, "epochs": 2},
        {"teacher": "teacher", "epochs": 1, "temperature": 2.0, "alpha": 0.5},
    )

    @classmethod
    def label_token(cls, params: DistillParams, varying: Mapping[str, Any]) -> str:
        head = f"distill(T{params.temperature:g})"
        return " ".join([head, *tokens(varying, skip=("temperature",))])

    @classmethod
    def references(cls, params: DistillParams) -> list[tuple[str, str]]:
        return [("teacher", params.teacher)] if params.teacher else []

    @classmethod
    def dependencies(cls, resolved: dict[str, Any]) -> list[str]:
        key = resolved["teacher"].get("node")
        return [key] if key else []

    @classmethod
    def check(cls, stage: StageConfig, recipe: Recipe) -> Iterable[tuple[tuple[Any, ...], str]]:
        p = cls.params_of(stage)
        if p.teacher_path is not None:
            path = _teacher_file(p.teacher_path, recipe)
            if not path.exists():
                yield (
                    ("pipeline", stage.index, "teacher_path"),
                    f"no model at {path}; train one or give the right path",
                )
        yield from check_trains(stage, p, recipe)

    @classmethod
    def resolve(cls, stage: StageConfig, recipe: Recipe) -> dict[str, Any]:
        p = cls.params_of(stage)
        if p.teacher is not None:
            teacher: dict[str, Any] = {"node": recipe.refs[p.teacher]}
        else:
            path = _teacher_file(str(p.teacher_path), recipe)
            teacher = {"path": str(path), "sha256": file_digest(path)}
        first = stage.index == recipe.pipeline[0].index
        resolved: dict[str, Any] = {
            "teacher": teacher,
            "temperature": p.temperature,
            "alpha": p.alpha,
            "train": train_spec(p, recipe).model_dump(mode="json"),
            **fraction_resolved(p),
        }
        if first:  # builds its own student from the model family
            resolved["model"] = model_spec(p, recipe)
        return resolved

    def run(self, parent: Artifact | None, ctx: StageContext) -> StageResult:
        spec = TrainSpec.model_validate(self.resolved["train"])
        ctx = fraction_context(self.resolved, ctx)  # the teacher is its own node
        try:
            teacher = logits_model(self._teacher(ctx))
        except ValueError as exc:
            raise StageFailed(f"teacher: {exc}") from None
        if parent is None:
            student = build_model(self.resolved["model"], ctx)
        elif isinstance(parent, KerasModel):
            student = copy_model(parent.model)
        else:  # plan-time order checks make this unreachable; say so if it is not
            raise StageFailed(f"distill needs a Keras model to continue, got {parent.kind}")
        if teacher.output_shape[-1] != student.output_shape[-1]:
            raise StageFailed(
                f"the teacher predicts {teacher.output_shape[-1]} classes, the student "
                f"{student.output_shape[-1]}; distill between models of the same task"
            )
        distiller = make_distiller(
            student, teacher, self.resolved["temperature"], self.resolved["alpha"], spec
        )
        steps = steps_per_epoch(len(ctx.data.y_train), spec.batch_size)
        distiller.compile(
            optimizer=make_optimizer(spec.optimizer, learning_rate(spec, steps), spec.weight_decay),
            metrics=["accuracy"],
        )
        report = fit(distiller, ctx, spec)
        return StageResult(
            artifact=KerasModel(student),
            metrics={
                "distill_epochs": report.epochs_run,
                "distill_best_epoch": report.best_epoch,
                "train_samples": len(ctx.data.y_train),
            },
            info={
                "teacher": self.resolved["teacher"],
                "temperature": self.resolved["temperature"],
                "alpha": self.resolved["alpha"],
                "best_val_accuracy": report.best_val_accuracy,
                "epochs_run": report.epochs_run,
                "best_epoch": report.best_epoch,
                "student_params": int(student.count_params()),
                "teacher_params": int(teacher.count_params()),
            },
            train_seconds=report.seconds,
        )

    def _teacher(self, ctx: StageContext) -> Any:
        from effcli._tf import keras

        source = self.resolved["teacher"]
        if "node" in source:
            artifact = ctx.dependency(source["node"])
            if not isinstance(artifact, KerasModel):
                raise StageFailed("the teacher pipeline must end in a Keras model, not a .tflite")
            return artifact.model
        try:
            model = keras.models.load_model(source["path"], compile=False)
        except Exception as exc:  # unreadable or not a tf_keras model: one line
            reason = " ".join(str(exc).split())[:200]
            raise StageFailed(f"cannot load teacher {source['path']}: {reason}") from None
        if not getattr(model, "_is_graph_network", False):
            raise StageFailed(
                f"teacher {source['path']} is a subclassed model; save a Functional or "
                "Sequential tf_keras model"
            )
        return model


def _teacher_file(path: str, recipe: Recipe) -> Path:
    """Relative paths are relative to the recipe file's folder."""
    candidate = Path(path).expanduser()
    if not candidate.is_absolute() and recipe.source_dir is not None:
        candidate = recipe.source_dir / candidate
    return candidate.resolve()


def make_distiller(student: Any, teacher: Any, temperature: float, alpha: float, spec: Any) -> Any:
    """A keras Model that trains `student` on the distillation loss and validates it alone."""
    from effcli._tf import keras, tf

    hard_loss = classifier_loss(spec)
    kl = keras.losses.KLDivergence()
    teacher.trainable = False

    class Distiller(keras.Model):
        def __init__(self) -> None:
            super().__init__(name="distiller")
            self.student = student
            self.teacher = teacher
            self.loss_tracker = keras.metrics.Mean(name="loss")

        @property
        def metrics(self) -> list[Any]:
            return [self.loss_tracker, *self.compiled_metrics.metrics]

        def call(self, x: Any, training: bool = False) -> Any:
            return self.student(x, training=training)

        def train_step(self, data: Any) -> dict[str, Any]:
            x, y = data
            soft_targets = tf.nn.softmax(self.teacher(x, training=False) / temperature)
            with tf.GradientTape() as tape:
                logits = self.student(x, training=True)
                soft = kl(soft_targets, tf.nn.softmax(logits / temperature))
                loss = (1 - alpha) * hard_loss(y, logits) + alpha * temperature**2 * soft
            variables = self.student.trainable_variables
            self.optimizer.apply_gradients(
                zip(tape.gradient(loss, variables), variables, strict=True)
            )
            self.loss_tracker.update_state(loss)
            self.compiled_metrics.update_state(y, logits)
            return {m.name: m.result() for m in self.metrics}

        def test_step(self, data: Any) -> dict[str, Any]:
            x, y = data  # validation: the student alone, on the hard labels
            logits = self.student(x, training=False)
            self.loss_tracker.update_state(hard_loss(y, logits))
            self.compiled_metrics.update_state(y, logits)
            return {m.name: m.result() for m in self.metrics}

    return Distiller()
