"""The tune stage's Optuna study: resumable in the run directory, seeded, with the trained model of
every trial that may still be needed.

The study lives in `<workdir>/<node key prefix>.sqlite3`, each kept trial's model next to it
(`<prefix>_trial<n>.keras`, written atomically before the trial completes: complete implies
saved), so a killed run resumes: finished (complete or pruned) trials count toward `n_trials`
and only the missing ones run. Without a workdir the study and models are in memory.

Several processes may run trials of one study at once (`parallel_trials`, _parallel_trials.py,
`run_shared`): SQLite serializes their writes (each waits up to `SQLITE_TIMEOUT` for the lock),
and only the node's own process (`attach_at=None`) fails the trials a killed run left RUNNING and
removes half-written model files.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from effcli import _atomic
from effcli.stages._search_space import OBJECTIVES, QUALITY

SQLITE_TIMEOUT = 60.0  # seconds a process waits for another's write to the study file
# Worker k of a parallel search seeds its sampler this far from worker 0, so no two workers (of
# this or of a resumed run, whose seed moves by the trials so far) draw the same random start.
WORKER_SEED_STRIDE = 10_007


def sampler_settings(
    sampler: str, n_trials: int, startup_trials: int | None, population_size: int | None
) -> dict[str, int]:
    """The sampler's effective settings for a budget of `n_trials` (None: scaled to it).

    TPE draws `n_startup_trials` at random before its model guides it; Optuna's default of 10
    made the stage's old default budget (8) a random search. Scaled, a third of the budget is
    random start (at least 2, so TPE has a good and a bad trial to split; at most Optuna's 10),
    so the model guides at least ~2/3 of the trials. NSGA-II's first generation
    (`population_size`, Optuna's default 50) is random too: a quarter of the budget (2..50)
    gives about four generations to evolve.
    """
    if sampler == "tpe":
        scaled = max(2, min(10, n_trials // 3))
        return {"n_startup_trials": startup_trials if startup_trials is not None else scaled}
    if sampler == "nsga2":
        scaled = max(2, min(50, n_trials // 4))
        return {"population_size": population_size if population_size is not None else scaled}
    return {}


def random_start(sampler: str, settings: Mapping[str, int]) -> int | None:
    """How many trials the sampler draws at random before anything guides it (None: all)."""
    if sampler == "tpe":
        return settings["n_startup_trials"]
    if sampler == "nsga2":
        return settings["population_size"]
    return None


_SETTING = {"tpe": ("TPE", "startup_trials"), "nsga2": ("NSGA-II", "population_size")}


def sampler_problems(
    sampler: str, startup_trials: int | None, population_size: int | None
) -> list[tuple[tuple[Any, ...], str]]:
    """A setting given to a sampler that has no such setting, as (location, message)."""
    problems: list[tuple[tuple[Any, ...], str]] = []
    for field, value, owner in (
        ("startup_trials", startup_trials, "tpe"),
        ("population_size", population_size, "nsga2"),
    ):
        if value is not None and sampler != owner:
            other = _SETTING.get(sampler)
            hint = f" (its random start is {other[1]})" if other else ""
            problems.append(
                (
                    (field,),
                    f"{field} is a setting of sampler {owner}, not {sampler}{hint}; remove it",
                )
            )
    return problems


def random_search_warning(
    sampler: str,
    n_trials: int,
    startup_trials: int | None,
    population_size: int | None,
    given: set[str],
) -> tuple[str, str] | None:
    """(field, advice) when the whole budget is the sampler's random start, so the search is a
    random search; `given` holds the settings the recipe wrote (the rest are scaled)."""
    start = random_start(
        sampler, sampler_settings(sampler, n_trials, startup_trials, population_size)
    )
    if start is None or n_trials > start:
        return None
    name, field = _SETTING[sampler]
    written = field in given
    return (
        field if written else "n_trials",
        f"n_trials {n_trials} <= {field} {start}{'' if written else ' (scaled default)'}: "
        f"{name} draws its first {start} trials at random, so this search is a random search; "
        f"raise n_trials above {start}" + (f" or lower {field}" if written else ""),
    )


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
        settings: Mapping[str, int] | None = None,
        worker: int = 0,
        attach_at: int | None = None,
    ) -> None:
        """`settings` are `sampler_settings`' (None: Optuna's defaults). A worker process of a
        parallel search gives its number and `attach_at`, the trials the study had when the
        node's process opened it: it fails no RUNNING trial (others are running them) and seeds
        its sampler apart from the other workers."""
        import optuna

        self.prefix = prefix
        self.worker = worker
        self.workdir = Path(workdir) if workdir is not None else None
        self.objectives = objectives
        self._models: dict[int, Any] = {}  # trial number -> model, without a workdir
        storage = None
        if self.workdir is not None:
            self.workdir.mkdir(parents=True, exist_ok=True)
            if attach_at is None:  # a worker's half-written model is another worker's to finish
                for leftover in self.workdir.glob(f".{prefix}_trial*.tmp*"):  # a killed save
                    leftover.unlink(missing_ok=True)
            storage = optuna.storages.RDBStorage(
                f"sqlite:///{self.storage_path}",
                engine_kwargs={"connect_args": {"timeout": SQLITE_TIMEOUT}},
            )
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
        if attach_at is None:
            self.fail_running()
        self.before = (
            attach_at if attach_at is not None else len(self.study.get_trials(deepcopy=False))
        )
        # Seeded from the recipe's seed and the trials so far: a resumed study does not repeat
        # the first run's suggestions (nor one worker another's).
        self.sampler_seed = seed + self.before + worker * WORKER_SEED_STRIDE
        self.study.sampler = _sampler(sampler, self.sampler_seed, settings or {})

    def fail_running(self) -> None:
        """Fail the trials still RUNNING: a killed process (or a dead worker) left them, as a
        node runs in one process tree at a time (the run directory's lock); not done. Only
        while no worker runs trials."""
        from optuna.trial import TrialState

        for trial in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            self.study.tell(trial.number, state=TrialState.FAIL, skip_if_finished=True)

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

    def missing(self, n_trials: int) -> int:
        """Trials still to run for a budget of `n_trials`."""
        return max(0, n_trials - len(self.finished()))

    def optimize(
        self, objective: Callable[[Any], Any], n_trials: int, timeout: float | None
    ) -> int:
        """Run the trials still missing from `n_trials`; returns how many ran now."""
        self.run(objective, self.missing(n_trials), timeout)
        return self.ran_now()

    def run(self, objective: Callable[[Any], Any], count: int, timeout: float | None) -> None:
        """Run `count` trials in this process (Optuna's loop)."""
        if count > 0:
            self.study.optimize(
                objective,
                n_trials=count,
                timeout=timeout,
                callbacks=[lambda study, trial: self._keep_front()],
            )

    def run_shared(
        self, objective: Callable[[Any], Any], total: int, timeout: float | None
    ) -> None:
        """Run trials until the study holds `total` (every process's, failed ones too, as
        Optuna's own loop counts them), while other processes do the same: each takes the
        next trial when it is free, so a worker that starts late (TensorFlow's import) or
        trains faster takes fewer or more, and the budget is met exactly (a file lock makes
        counting and creating a trial one step)."""
        import optuna
        from optuna.trial import TrialState

        assert self.workdir is not None, "processes share a study through its file"
        lock = self.workdir / f".{self.prefix}.trials.lock"
        start = time.monotonic()
        while timeout is None or time.monotonic() - start < timeout:
            with _atomic.locked(lock):
                if len(self.study.get_trials(deepcopy=False)) >= total:
                    return
                trial = self.study.ask()
            try:
                values = objective(trial)
            except optuna.TrialPruned:
                self.study.tell(trial, state=TrialState.PRUNED)
            except BaseException:
                self.study.tell(trial, state=TrialState.FAIL)
                raise
            else:  # NaN marks a failed training: FAIL, as in Optuna's loop (without its warning)
                failed = any(
                    math.isnan(v) for v in (values if isinstance(values, list) else [values])
                )
                if failed:
                    self.study.tell(trial, state=TrialState.FAIL)
                else:
                    self.study.tell(trial, values)
            self._keep_front()

    def ran_now(self) -> int:
        """Trials started since this study was opened, by this process or its workers."""
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
        """Drop the models of trials off the Pareto front (a dominated trial stays dominated).
        A trial another worker still runs may have saved its model already: it is kept, and
        read before the front, so a trial that completes in between is on that front."""
        from optuna.trial import TrialState

        running = self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        keep = {t.number for t in running} | {t.number for t in self.study.best_trials}
        for number in [n for n in self._models if n not in keep]:
            del self._models[number]
        if self.workdir is not None:
            for path in self.workdir.glob(f"{self.prefix}_trial*.keras"):
                digits = path.stem.rsplit("_trial", 1)[-1]
                if digits.isdigit() and int(digits) not in keep:
                    path.unlink(missing_ok=True)


def _sampler(name: str, seed: int, settings: Mapping[str, int]) -> Any:
    """The named Optuna sampler with `sampler_settings`. Optuna 5's TPE is a constant liar by
    default: in a parallel search a worker's suggestion avoids the trials others are running."""
    import optuna

    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "nsga2":
        population = settings.get("population_size", 50)  # 50: Optuna's default
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=population)
    startup = settings.get("n_startup_trials", 10)  # 10: Optuna's default
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup)


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
    if "worker" in attrs:  # a parallel search: the process that ran it (0: the node's own)
        info["worker"] = attrs["worker"]
    if "error" in attrs:
        info["error"] = attrs["error"]
    if trial.state.name == "PRUNED" and trial.intermediate_values:
        info["pruned_at_epoch"] = max(trial.intermediate_values)
    return info
