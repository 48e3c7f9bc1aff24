"""Training helpers shared by every stage that trains or fine-tunes (not a stage itself).

Selection is on the validation split only: early stopping and the restored best epoch both
watch `val_*`; the test split is never seen here.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from effcli.recipe.schema import EarlyStoppingSpec, Recipe, StageConfig
from effcli.stages.base import StageContext


@dataclass
class FitReport:
    seconds: float
    epochs_run: int
    best_epoch: int
    best_val_accuracy: float
    best_val_loss: float


def make_optimizer(name: str, learning_rate: float) -> Any:
    from effcli._tf import keras

    factories = {
        "adam": lambda: keras.optimizers.Adam(learning_rate),
        "adamw": lambda: keras.optimizers.AdamW(learning_rate),
        "sgd": lambda: keras.optimizers.SGD(learning_rate, momentum=0.9),
        "rmsprop": lambda: keras.optimizers.RMSprop(learning_rate),
    }
    return factories[name]()


def compile_classifier(model: Any, optimizer: str, learning_rate: float) -> None:
    from effcli._tf import keras

    model.compile(
        optimizer=make_optimizer(optimizer, learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
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

        def _better(self, value: float) -> bool:
            if self.best is None:
                return True
            return value > self.best if spec.monitor == "val_accuracy" else value < self.best

        def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
            logs = dict(logs or {})
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


def fit(
    model: Any,
    ctx: StageContext,
    *,
    epochs: int,
    batch_size: int,
    early_stopping: EarlyStoppingSpec,
    extra_callbacks: list[Any] | None = None,
    select_from_epoch: int = 1,
) -> FitReport:
    """Train on the training split, select on the validation split; returns what happened."""
    from effcli._tf import keras

    keras.utils.set_random_seed(ctx.seed)
    selection = _selection_callback(early_stopping, epochs, ctx, select_from_epoch)
    data = ctx.data
    start = time.perf_counter()
    model.fit(
        data.x_train,
        data.y_train,
        validation_data=(data.x_val, data.y_val),
        epochs=epochs,
        batch_size=batch_size,
        shuffle=True,
        verbose=0,
        callbacks=[*(extra_callbacks or []), selection],
    )
    seconds = time.perf_counter() - start
    check_finite(model)
    return FitReport(
        seconds=seconds,
        epochs_run=selection.epochs_run,
        best_epoch=selection.best_epoch,
        best_val_accuracy=float(selection.best_logs.get("val_accuracy", float("nan"))),
        best_val_loss=float(selection.best_logs.get("val_loss", float("nan"))),
    )


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


def fine_tune_resolved(stage: StageConfig, recipe: Recipe) -> dict[str, Any]:
    """A fine-tuning stage's arguments plus the recipe's batch size and optimizer it trains with."""
    resolved = stage.params.model_dump(mode="json")
    resolved["batch_size"] = recipe.train.batch_size
    resolved["optimizer"] = recipe.train.optimizer
    return resolved


def fine_tune(
    model: Any,
    ctx: StageContext,
    resolved: dict[str, Any],
    *,
    learning_rate: float,
    epochs: int,
    extra_callbacks: list[Any] | None = None,
    select_from_epoch: int = 1,
) -> FitReport:
    """Compile and fine-tune a wrapped model for a fixed number of epochs (no early stop),
    keeping the best validation epoch from `select_from_epoch` on."""
    compile_classifier(model, resolved["optimizer"], learning_rate)
    return fit(
        model,
        ctx,
        epochs=epochs,
        batch_size=resolved["batch_size"],
        early_stopping=EarlyStoppingSpec(enabled=False, restore_best=True),
        extra_callbacks=extra_callbacks,
        select_from_epoch=select_from_epoch,
    )
