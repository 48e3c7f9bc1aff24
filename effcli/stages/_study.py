"""The tune stage's Optuna study: resumable in the run directory, seeded, with the trained model of
every trial that may still be needed.

The study lives in `<workdir>/<node key prefix>.sqlite3`, each kept trial's model next to it
(`<prefix>_trial<n>.keras`, written atomically before the trial completes: complete implies
saved), so a killed run resumes: finished (complete or pruned) trials count toward `n_trials`
and only the missing ones run. Without a workdir the study and models are in memory.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from effcli import _atomic
from effcli.stages._search_space import OBJECTIVES, QUALITY


class Study:
    """One node's search: `optimize` runs the missing trials; `front` ranks the best ones."""

    def __init__(
        self,
        *,
        prefix: str,
        workdir: Path | None,
        objectives: list[str],
        sampler: str,
        seed: int,
        prune: bool,
        prune_startup_trials: int,
        prune_warmup_epochs: int,
    ) -> None:
        import optuna
        from optuna.trial import TrialState

        self.prefix = prefix
        self.workdir = Path(workdir) if workdir is not None else None
        self.objectives = objectives
        self._models: dict[int, Any] = {}  # trial number -> model, without a workdir
        storage = None
        if self.workdir is not None:
            self.workdir.mkdir(parents=True, exist_ok=True)
            for leftover in self.workdir.glob(f".{prefix}_trial*.tmp*"):  # a killed save
                leftover.unlink(missing_ok=True)
            storage = f"sqlite:///{self.storage_path}"
        pruner = (
            optuna.pruners.MedianPruner(
                n_startup_trials=prune_startup_trials, n_warmup_steps=prune_warmup_epochs
            )
            if prune
            else optuna.pruners.NopPruner()
        )
        self.study = optuna.create_study(
            storage=storage,
            study_name=f"tune-{prefix}",
            directions=[OBJECTIVES[o] for o in objectives],
            pruner=pruner,
            load_if_exists=True,
        )
        # A trial still RUNNING was left by a killed process (a node runs in one process at a
        # time: the run directory's lock): it failed, so it does not count as done.
        for trial in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            self.study.tell(trial.number, state=TrialState.FAIL, skip_if_finished=True)
        self.before = len(self.study.get_trials(deepcopy=False))
        # Seeded from the recipe's seed and the trials so far: a resumed study does not repeat
        # the first run's suggestions.
        self.study.sampler = _sampler(sampler, seed + self.before)

    @property
    def storage_path(self) -> Path | None:
        return self.workdir / f"{self.prefix}.sqlite3" if self.workdir is not None else None

    def trials(self) -> list[Any]:
        return list(self.study.get_trials(deepcopy=False))

    def finished(self) -> list[Any]:
        """Complete and pruned trials: they count toward the budget."""
        from optuna.trial import TrialState

        states = (TrialState.COMPLETE, TrialState.PRUNED)
        return list(self.study.get_trials(deepcopy=False, states=states))

    def optimize(
        self, objective: Callable[[Any], Any], n_trials: int, timeout: float | None
    ) -> int:
        """Run the trials still missing from `n_trials`; returns how many ran now."""
        missing = n_trials - len(self.finished())
        if missing > 0:
            self.study.optimize(
                objective,
                n_trials=missing,
                timeout=timeout,
                callbacks=[lambda study, trial: self._keep_front()],
            )
        return len(self.trials()) - self.before

    def front(self) -> list[Any]:
        """Pareto trials, best val_accuracy first; ties go to the smaller footprint, then the
        earlier trial."""
        quality = self.objectives.index(QUALITY)

        def key(t: Any) -> tuple[Any, ...]:
            rest = [v for i, v in enumerate(t.values) if i != quality]  # all minimized
            return (-t.values[quality], *rest, t.number)

        return sorted(self.study.best_trials, key=key)

    # -- the models of kept trials -------------------------------------------------------------
    def _file(self, number: int) -> Path:
        assert self.workdir is not None
        return self.workdir / f"{self.prefix}_trial{number}.keras"

    def save_model(self, number: int, model: Any) -> None:
        if self.workdir is None:
            self._models[number] = model
            return
        with _atomic.replacing(self._file(number), ".keras") as tmp:
            model.save(tmp)

    def model(self, number: int) -> Any | None:
        """A kept trial's trained model, or None when it is not kept (its file lost)."""
        from effcli._tf import keras

        if number in self._models:
            return self._models[number]
        if self.workdir is not None and self._file(number).is_file():
            return keras.models.load_model(self._file(number), compile=False)
        return None

    def _keep_front(self) -> None:
        """Drop the models of trials off the Pareto front (a dominated trial stays dominated)."""
        keep = {t.number for t in self.study.best_trials}
        for number in [n for n in self._models if n not in keep]:
            del self._models[number]
        if self.workdir is not None:
            for path in self.workdir.glob(f"{self.prefix}_trial*.keras"):
                digits = path.stem.rsplit("_trial", 1)[-1]
                if digits.isdigit() and int(digits) not in keep:
                    path.unlink(missing_ok=True)


def _sampler(name: str, seed: int) -> Any:
    import optuna

    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def pruning_callback(trial: Any) -> Any:
    """A keras callback reporting each epoch's val_accuracy to Optuna; raises TrialPruned when
    the pruner says this trial is worse than the median of earlier ones at that epoch."""
    import optuna

    from effcli._tf import keras

    class OptunaPruning(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
            value = (logs or {}).get(QUALITY)
            if value is None:
                return
            trial.report(float(value), step=epoch + 1)
            if trial.should_prune():
                raise optuna.TrialPruned(f"epoch {epoch + 1}: val_accuracy {float(value):.4f}")

    return OptunaPruning()


def trial_info(trial: Any) -> dict[str, Any]:
    """One trial as recorded in the node's meta.json."""
    attrs = trial.user_attrs
    info: dict[str, Any] = {
        "number": trial.number,
        "state": trial.state.name,
        "values": trial.values,
        "params": trial.params,
        "train_seconds": attrs.get("train_seconds"),
    }
    if "error" in attrs:
        info["error"] = attrs["error"]
    if trial.state.name == "PRUNED" and trial.intermediate_values:
        info["pruned_at_epoch"] = max(trial.intermediate_values)
    return info
