"""Training helpers shared by every stage that trains or fine-tunes (not a stage itself).

Selection is on the validation split only: early stopping and the restored best epoch both
watch `val_*`; the test split is never seen here.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from effcli.recipe.schema import EarlyStoppingSpec, TrainSpec
from effcli.stages._pipeline import eval_batches, one_hot_targets, training_batches
from effcli.stages._train_spec import fine_tune_spec
from effcli.stages.base import StageContext


@dataclass
class FitReport:
    seconds: float
    epochs_run: int
    best_epoch: int
    best_val_accuracy: float
    best_val_loss: float


def make_optimizer(name: str, learning_rate: Any, weight_decay: float = 0.0) -> Any:
    """`learning_rate` is a float or a keras schedule; decay is decoupled (AdamW-style)."""
    from effcli._tf import keras

    decay = {"weight_decay": weight_decay} if weight_decay else {}
    factories = {
        "adam": lambda: keras.optimizers.Adam(learning_rate, **decay),
        "adamw": lambda: keras.optimizers.AdamW(learning_rate, weight_decay=weight_decay),
        "sgd": lambda: keras.optimizers.SGD(learning_rate, momentum=0.9, **decay),
        "rmsprop": lambda: keras.optimizers.RMSprop(learning_rate, **decay),
    }
    return factories[name]()


def learning_rate(spec: TrainSpec, steps_per_epoch: int) -> Any:
    """The initial rate, or a per-step schedule for `cosine` and `step` (plateau: a callback)."""
    from effcli._tf import keras

    schedule = spec.lr_schedule
    if schedule.kind == "cosine":
        return keras.optimizers.schedules.CosineDecay(
            spec.learning_rate, spec.epochs * steps_per_epoch, alpha=schedule.min_fraction
        )
    if schedule.kind == "step":
        return keras.optimizers.schedules.ExponentialDecay(
            spec.learning_rate,
            schedule.step_epochs * steps_per_epoch,
            schedule.factor,
            staircase=True,
        )
    return spec.learning_rate


def classifier_loss(spec: TrainSpec) -> Any:
    """Cross-entropy on logits; one-hot targets when label smoothing or mixup need them."""
    from effcli._tf import keras

    if one_hot_targets(spec.label_smoothing, spec.augment):
        return keras.losses.CategoricalCrossentropy(
            from_logits=True, label_smoothing=spec.label_smoothing
        )
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def compile_classifier(model: Any, spec: TrainSpec, steps_per_epoch: int) -> None:
    model.compile(
        optimizer=make_optimizer(
            spec.optimizer, learning_rate(spec, steps_per_epoch), spec.weight_decay
        ),
        loss=classifier_loss(spec),
        metrics=["accuracy"],
    )


def _selection_callback(
    spec: EarlyStoppingSpec, epochs: int, ctx: StageContext, select_from_epoch: int
) -> Any:
    """Early stopping after a warm-up, keeping the best validation epoch's weights in memory.

    Epochs before `select_from_epoch` are never chosen (e.g. a pruning ramp still under way).
    """
    from effcli._tf import keras

    class ValidationSelection(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.best: float | None = None
            self.best_epoch = 0
            self.best_logs: dict[str, float] = {}
            self.best_weights: list[np.ndarray] | None = None
            self.wait = 0
            self.epochs_run = 0
            self.epoch_start = time.perf_counter()

        def _better(self, value: float) -> bool:
            if self.best is None:
                return True
            return value > self.best if spec.monitor == "val_accuracy" else value < self.best

        def on_epoch_begin(self, epoch: int, logs: dict[str, float] | None = None) -> None:
            self.epoch_start = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
            logs = {k: float(v) for k, v in (logs or {}).items()}
            logs.pop("lr", None)  # ReduceLROnPlateau's copy of the rate, kept once below
            # The learning curve keeps the rate in effect and the epoch's wall time too.
            logs.setdefault("learning_rate", _current_learning_rate(self.model))
            logs["epoch_seconds"] = time.perf_counter() - self.epoch_start
            self.epochs_run = epoch + 1
            ctx.on_epoch(epoch + 1, epochs, logs)
            value = logs.get(spec.monitor)
            if value is None or epoch + 1 < select_from_epoch:
                return
            if self._better(value):
                self.best, self.best_epoch, self.best_logs = value, epoch + 1, logs
                if spec.restore_best:
                    self.best_weights = self.model.get_weights()
                self.wait = 0
            elif spec.enabled and epoch + 1 > spec.start_from_epoch:
                self.wait += 1
                if self.wait >= spec.patience:
                    self.model.stop_training = True

        def on_train_end(self, logs: dict[str, float] | None = None) -> None:
            if spec.restore_best and self.best_weights is not None:
                self.model.set_weights(self.best_weights)

    return ValidationSelection()


def _current_learning_rate(model: Any) -> float:
    """The optimizer's rate at its current step (a schedule evaluated there); NaN if unknown."""
    from effcli._tf import keras

    optimizer = getattr(model, "optimizer", None)
    rate = getattr(optimizer, "learning_rate", None)
    if optimizer is None or rate is None:
        return float("nan")
    if isinstance(rate, keras.optimizers.schedules.LearningRateSchedule):
        rate = rate(optimizer.iterations)
    try:
        return float(keras.backend.get_value(rate))
    except (TypeError, ValueError):
        return float("nan")


def fit(
    model: Any,
    ctx: StageContext,
    spec: TrainSpec,
    *,
    extra_callbacks: list[Any] | None = None,
    select_from_epoch: int = 1,
) -> FitReport:
    """Train on the training split, select on the validation split; returns what happened.

    The model must be compiled for `spec` (see `compile_classifier`).
    """
    from effcli._tf import keras

    if spec.epochs == 0:  # keep the model as built or loaded (e.g. a user's trained model)
        return FitReport(0.0, 0, 0, float("nan"), float("nan"))
    keras.utils.set_random_seed(ctx.seed)
    selection = _selection_callback(spec.early_stopping, spec.epochs, ctx, select_from_epoch)
    callbacks = [*(extra_callbacks or [])]
    if spec.lr_schedule.kind == "plateau":
        callbacks.append(
            keras.callbacks.ReduceLROnPlateau(
                monitor="val_loss",
                factor=spec.lr_schedule.factor,
                patience=spec.lr_schedule.patience,
                verbose=0,
            )
        )
    data = ctx.data
    one_hot = one_hot_targets(spec.label_smoothing, spec.augment)
    train = training_batches(
        data.x_train,
        data.y_train,
        batch_size=spec.batch_size,
        seed=ctx.seed,
        num_classes=data.num_classes,
        augment=spec.augment,
        kind=data.kind,
        one_hot=one_hot,
    )
    val = eval_batches(
        data.x_val,
        data.y_val,
        batch_size=spec.batch_size,
        num_classes=data.num_classes,
        one_hot=one_hot,
    )
    start = time.perf_counter()
    steps_before = _optimizer_steps(model)
    model.fit(
        train,
        validation_data=val,
        epochs=spec.epochs,
        verbose=0,
        callbacks=[*callbacks, selection],
    )
    seconds = time.perf_counter() - start
    # Counted from the optimizer (no per-batch callback: that would slow small models down);
    # every epoch is one pass over the training split, early stopping ends at an epoch's end.
    ctx.cost.add(_optimizer_steps(model) - steps_before, selection.epochs_run * len(data.y_train))
    check_finite(model)
    return FitReport(
        seconds=seconds,
        epochs_run=selection.epochs_run,
        best_epoch=selection.best_epoch,
        best_val_accuracy=float(selection.best_logs.get("val_accuracy", float("nan"))),
        best_val_loss=float(selection.best_logs.get("val_loss", float("nan"))),
    )


def _optimizer_steps(model: Any) -> int:
    optimizer = getattr(model, "optimizer", None)
    iterations = getattr(optimizer, "iterations", None)
    return int(iterations.numpy()) if iterations is not None else 0


def check_finite(model: Any) -> None:
    """A diverged run (NaN/inf weights) fails its variant instead of exporting garbage."""
    from effcli.errors import StageFailed

    for weight in model.weights:
        if not np.all(np.isfinite(weight.numpy())):
            raise StageFailed(
                f"training diverged: non-finite values in {weight.name}; lower the learning rate"
            )


def steps_per_epoch(n_samples: int, batch_size: int) -> int:
    return -(-n_samples // batch_size)


def fine_tune(
    model: Any,
    ctx: StageContext,
    resolved: Mapping[str, Any],
    *,
    learning_rate: float,
    epochs: int,
    extra_callbacks: list[Any] | None = None,
    select_from_epoch: int = 1,
) -> FitReport:
    """Compile and fine-tune a wrapped model for a fixed number of epochs (no early stop),
    keeping the best validation epoch from `select_from_epoch` on."""
    spec = fine_tune_spec(resolved, learning_rate=learning_rate, epochs=epochs)
    compile_classifier(model, spec, steps_per_epoch(len(ctx.data.y_train), spec.batch_size))
    return fit(
        model, ctx, spec, extra_callbacks=extra_callbacks, select_from_epoch=select_from_epoch
    )
