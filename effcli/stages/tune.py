"""Improve: hyper-parameter search with Optuna over anything the train stage accepts.

```yaml
- stage: tune
  space: {learning_rate: {float: [1.0e-4, 1.0e-2], log: true}}   # see _search_space.py
  sampler: tpe                 # tpe | random | nsga2
  n_trials: 8                  # startup_trials / population_size: scaled to it (_study.py)
  parallel_trials: 1           # >1: trials in that many processes on the same study
  objectives: [val_accuracy]   # or add a footprint: params | tflite_bytes | macs
  epochs: 10                   # every train argument may also be fixed
```

Each trial builds the model family with the trial's values and trains it like `train` does;
it is scored on the validation split only (the best epoch's val_accuracy; the test split is never
seen). With one objective, per-epoch val_accuracy feeds Optuna's MedianPruner (`prune`), and the
artifact is the best trial's model. With a footprint objective the artifact is the Pareto-optimal
trial with the best val_accuracy, and every other Pareto-optimal trial is kept as an
`Alternative`, so each is exported and measured as its own row.

The study lives in `ctx.workdir` and resumes after a kill (_study.py); the space language is
checked at plan time by pure functions (_search_space.py), so every mistake is a one-line recipe
error before anything trains. The sampler's random start is scaled to the budget, and a budget
that is all random start is a plan-time warning (`sampler_settings`, `random_search_warning` in
_study.py). `parallel_trials > 1` runs trials in that many processes on the same study
(_parallel_trials.py): not bit-identical to a sequential search, so refused by deterministic
recipes and part of the node key.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any, Literal

from pydantic import Field, ValidationError

from effcli.artifacts import Artifact, KerasModel
from effcli.errors import StageFailed
from effcli.models.base import families
from effcli.recipe.schema import Recipe, StageConfig, TrainSpec
from effcli.stages._parallel_trials import run_in_workers
from effcli.stages._search_space import (
    GROUPS,
    QUALITY,
    Dimension,
    Loc,
    apply_values,
    assign,
    objective_problems,
    parse_space,
    space_problems,
    validation_reason,
)
from effcli.stages._study import (
    Study,
    pruning_callback,
    random_search_warning,
    sampler_problems,
    sampler_settings,
    trial_info,
)
from effcli.stages._train_spec import (
    TrainParams,
    build_model,
    check_trains,
    fraction_context,
    fraction_resolved,
    model_spec,
    train_spec,
)
from effcli.stages._training import FitReport, compile_classifier, fit, steps_per_epoch
from effcli.stages.base import Alternative, Stage, StageContext, StageResult, stages


class TuneParams(TrainParams):
    """The search, plus any train argument fixed for every trial."""

    space: dict[str, Any] = Field(
        default_factory=dict,
        description="parameter: {float: [low, high], log, step} | {int: [low, high], log, step} "
        "| {categorical: [a, b, ...]}",
    )
    sampler: Literal["tpe", "random", "nsga2"] = "tpe"
    n_trials: int = Field(8, ge=1, le=10_000, description="trials in the study, 1..10000")
    startup_trials: int | None = Field(
        None,
        ge=0,
        le=10_000,
        description="tpe: random trials before the model guides it; default: n_trials // 3 (2..10)",
    )
    population_size: int | None = Field(
        None,
        ge=2,
        le=10_000,
        description="nsga2: trials per generation; default: n_trials // 4 (2..50)",
    )
    parallel_trials: int = Field(
        1, ge=1, le=16, description="trials run at once, each in its own process, 1..16"
    )
    timeout: float | None = Field(
        None, gt=0, description="seconds after which no new trial starts (this run)"
    )
    prune: bool | None = Field(
        None, description="stop poor trials early (MedianPruner); default: on for one objective"
    )
    prune_startup_trials: int = Field(
        5, ge=0, le=10_000, description="finished trials before any trial may be pruned"
    )
    prune_warmup_epochs: int | None = Field(
        None,
        ge=0,
        le=10_000,
        description="epochs before a trial may be pruned; default: early_stopping.start_from_epoch",
    )
    objectives: list[str] = Field(
        default_factory=lambda: [QUALITY],
        min_length=1,
        description="val_accuracy, optionally with params, tflite_bytes or macs",
    )


def _search_problems(p: TuneParams, recipe: Recipe) -> Iterable[tuple[Loc, str]]:
    """Sampler settings the sampler lacks; parallel trials where the recipe wants one order."""
    yield from sampler_problems(p.sampler, p.startup_trials, p.population_size)
    if p.parallel_trials > 1 and recipe.deterministic:
        why = (
            f"parallel_trials {p.parallel_trials} runs trials in an order that differs from run "
            "to run, and the recipe asks for deterministic: true; set parallel_trials: 1 or "
            "deterministic: false"
        )
        yield ("parallel_trials",), why


def _fixed_train_args(params: TuneParams) -> dict[str, Any]:
    """The train arguments this stage sets for every trial (not the search settings)."""
    set_here = params.model_dump(mode="json", exclude_unset=True)
    # `augment: null` (or any key written as null) means "not set": the recipe's default applies.
    out = {k: v for k, v in set_here.items() if k in TrainParams.model_fields and v is not None}
    for group in GROUPS:  # only the group fields actually written count as fixed
        if group in out:
            given = getattr(params, group).model_fields_set
            out[group] = {k: v for k, v in out[group].items() if k in given}
    return out


@stages.register("tune")
class TuneStage(Stage[TuneParams]):
    """Search train arguments with Optuna; keep the best trial's model (or the Pareto front)."""

    Params = TuneParams
    accepts = ("none",)
    trains = True
    role = "improve"
    examples = (
        {
            "space": {"learning_rate": {"float": [1.0e-3, 1.0e-2], "log": True}},
            "n_trials": 2,
            "startup_trials": 1,  # one model-guided trial: no random-search warning
            "epochs": 1,
            "width_multiplier": 0.125,
        },
        {
            "space": {"width_multiplier": {"categorical": [0.125, 0.25]}},
            "n_trials": 2,
            "epochs": 1,
            "objectives": ["val_accuracy", "params"],
            "sampler": "random",
        },
    )

    @classmethod
    def check(cls, stage: StageConfig, recipe: Recipe) -> Iterable[tuple[Loc, str]]:
        p = cls.params_of(stage)
        where: Loc = ("pipeline", stage.index)
        for loc, message in objective_problems(p.objectives, p.prune):
            yield (*where, *loc), message
        for loc, message in _search_problems(p, recipe):
            yield (*where, *loc), message
        fixed = _fixed_train_args(p)
        problems = space_problems(p.space, fixed)
        for loc, message in problems:
            yield (*where, *loc), message
        if problems:
            return
        spec = train_spec(p, recipe)
        if spec.epochs < 1 and "epochs" not in p.space:
            loc = (*where, "epochs") if p.epochs is not None else ("train", "epochs")
            yield loc, f"every trial trains: epochs must be >= 1 (got {spec.epochs})"
        base = list(check_trains(stage, p, recipe))
        yield from base
        if base:
            return
        # Each end of each range must also suit the model family and the data kind.
        for dim in parse_space(p.space):
            for which, value in dim.values_to_check():
                at = TrainParams.model_validate(assign(fixed, dim.name, value))
                at_stage = StageConfig(kind=stage.kind, index=stage.index, params=at)
                for _, message in check_trains(at_stage, at, recipe):
                    yield (*where, "space", dim.name, dim.kind), f"{which} {value!r}: {message}"
                    break

    @classmethod
    def warnings(cls, stage: StageConfig, recipe: Recipe) -> Iterable[tuple[Loc, str]]:
        p = cls.params_of(stage)
        if len(p.objectives) > 1 and stage.index != recipe.pipeline[-1].index:
            yield (
                ("pipeline", stage.index, "objectives"),
                "multi-objective tune is not the last stage: only its best-val_accuracy Pareto "
                "trial continues to the next stages and the other Pareto-optimal trials get no "
                "rows; make tune the last stage to measure them all",
            )
        given = p.model_fields_set & {"startup_trials", "population_size"}
        found = random_search_warning(
            p.sampler, p.n_trials, p.startup_trials, p.population_size, given
        )
        if found is not None:
            yield ("pipeline", stage.index, found[0]), found[1]

    @classmethod
    def resolve(cls, stage: StageConfig, recipe: Recipe) -> dict[str, Any]:
        p = cls.params_of(stage)
        spec = train_spec(p, recipe)
        prune = p.prune if p.prune is not None else len(p.objectives) == 1
        warmup = p.prune_warmup_epochs
        return {
            "model": model_spec(p, recipe),
            "train": spec.model_dump(mode="json"),
            "space": p.model_dump(mode="json")["space"],
            "sampler": p.sampler,
            # Effective, so the key changes with what the sampler does (and the row re-derives).
            "sampler_settings": sampler_settings(
                p.sampler, p.n_trials, p.startup_trials, p.population_size
            ),
            "parallel_trials": p.parallel_trials,  # another order of trials: other results
            "n_trials": p.n_trials,
            "timeout": p.timeout,
            "objectives": list(p.objectives),
            "prune": prune,
            "prune_startup_trials": p.prune_startup_trials,
            "prune_warmup_epochs": (
                warmup if warmup is not None else spec.early_stopping.start_from_epoch
            ),
            **fraction_resolved(p),
        }

    @classmethod
    def describe(cls, params: TuneParams) -> str:
        changed = params.model_dump(exclude_unset=True, mode="json")
        changed.pop("space", None)
        args = "".join(f", {k}={v}" for k, v in changed.items())
        return f"tune(space={'|'.join(map(str, params.space))}{args})"

    # -- running ---------------------------------------------------------------------------------
    def run(self, parent: Artifact | None, ctx: StageContext) -> StageResult:
        import optuna

        ctx = fraction_context(self.resolved, ctx)  # every trial trains on the subset
        verbosity = optuna.logging.get_verbosity()
        optuna.logging.set_verbosity(optuna.logging.ERROR)  # one line per failure is ours to say
        try:
            return self._search(ctx)
        finally:
            optuna.logging.set_verbosity(verbosity)

    def _study(self, ctx: StageContext, worker: int = 0, attach_at: int | None = None) -> Study:
        r = self.resolved
        return Study(
            prefix=(ctx.node_key or "tune")[:16],
            workdir=ctx.workdir,
            objectives=r["objectives"],
            sampler=r["sampler"],
            seed=ctx.seed,
            prune=r["prune"],
            prune_startup_trials=r["prune_startup_trials"],
            prune_warmup_epochs=r["prune_warmup_epochs"],
            settings=r["sampler_settings"],
            worker=worker,
            attach_at=attach_at,
        )

    def _trials(self, ctx: StageContext, study: Study) -> Any:
        dims = parse_space(self.resolved["space"])
        return lambda trial: self._objective(trial, dims, study.objectives, ctx, study)

    def _search(self, ctx: StageContext) -> StageResult:
        r = self.resolved
        study = self._study(ctx)
        # Parallel only on a study in files (the workers' one channel), with trials to share.
        workers = min(r["parallel_trials"], study.missing(r["n_trials"]))
        if workers > 1 and ctx.workdir is not None:
            total = study.before + study.missing(r["n_trials"])  # as Optuna's loop counts
            trials = self._trials(ctx, study)
            try:
                run_in_workers(
                    self,
                    ctx,
                    workers,
                    (study.before, total, r["timeout"]),
                    lambda: study.run_shared(trials, total, r["timeout"]),
                )
            finally:
                study.fail_running()  # a trial of a worker that died
            ran = study.ran_now()
        else:
            workers = 1
            ran = study.optimize(self._trials(ctx, study), r["n_trials"], r["timeout"])
        return self._result(study, ctx, ran, workers)

    def run_trials(
        self, ctx: StageContext, worker: int, attach_at: int, total: int, timeout: float | None
    ) -> None:
        """In a spawned worker of a parallel search: trials until the study holds `total`."""
        study = self._study(ctx, worker, attach_at)
        study.run_shared(self._trials(ctx, study), total, timeout)

    def _objective(
        self,
        trial: Any,
        dims: list[Dimension],
        objectives: list[str],
        ctx: StageContext,
        study: Study,
    ) -> Any:
        """Train one trial; its values in `objectives` order (NaN marks a failed trial)."""
        values = {dim.name: dim.suggest(trial) for dim in dims}
        if self.resolved["parallel_trials"] > 1:
            trial.set_user_attr("worker", study.worker)
        callbacks = [pruning_callback(trial)] if self.resolved["prune"] else []
        start = time.perf_counter()
        try:
            model, report = self._train(values, ctx, callbacks)
        except StageFailed as exc:  # e.g. diverged at a high learning rate: the search goes on
            trial.set_user_attr("error", str(exc))
            nan = [float("nan")] * len(objectives)
            return nan[0] if len(nan) == 1 else nan
        finally:
            trial.set_user_attr("train_seconds", time.perf_counter() - start)
        trial.set_user_attr("epochs_run", report.epochs_run)
        trial.set_user_attr("best_epoch", report.best_epoch)
        trial.set_user_attr("val_loss", report.best_val_loss)
        scores = {QUALITY: report.best_val_accuracy, **footprint(model, objectives)}
        for name, value in scores.items():
            trial.set_user_attr(name, value)
        study.save_model(trial.number, model)  # before the trial completes
        out = [scores[o] for o in objectives]
        return out[0] if len(out) == 1 else out

    def _train(
        self, values: Mapping[str, Any], ctx: StageContext, callbacks: list[Any]
    ) -> tuple[Any, FitReport]:
        """Build the family with these values and train it like the train stage does."""
        r = self.resolved
        args, train = apply_values(r["model"]["args"], r["train"], values)
        family = families.get(r["model"]["family"])
        try:
            family.Params.model_validate(args)
            spec = TrainSpec.model_validate(train)
        except ValidationError as exc:
            err = exc.errors(include_url=False)[0]
            where = ".".join(map(str, err["loc"]))
            raise StageFailed(
                f"trial values {dict(values)} rejected: {where} {validation_reason(err)}"
            ) from None
        model = build_model({**r["model"], "args": args}, ctx)
        compile_classifier(model, spec, steps_per_epoch(len(ctx.data.y_train), spec.batch_size))
        report = fit(model, ctx, spec, extra_callbacks=callbacks)
        return model, report

    def _model_of(self, trial: Any, ctx: StageContext, study: Study, retrained: list[int]) -> Any:
        """A finished trial's trained model: kept by the study, or (its file lost) retrained
        once from its parameters with the same seed."""
        model = study.model(trial.number)
        if model is None:
            model, _ = self._train(trial.params, ctx, [])
            retrained.append(trial.number)
        return model

    def _result(self, study: Study, ctx: StageContext, ran: int, workers: int) -> StageResult:
        from optuna.trial import TrialState

        objectives = study.objectives
        trials = study.trials()
        complete = [t for t in trials if t.state == TrialState.COMPLETE]
        if not complete:
            errors = [t.user_attrs["error"] for t in trials if "error" in t.user_attrs]
            reason = f"; last error: {errors[-1]}" if errors else ""
            raise StageFailed(f"no trial of {len(trials)} completed{reason}")
        front = study.front()
        best, others = front[0], (front[1:] if len(objectives) > 1 else [])
        retrained: list[int] = []
        model = self._model_of(best, ctx, study, retrained)
        quality = objectives.index(QUALITY)
        alternatives = [
            Alternative(
                name=f"t{t.number}",
                artifact=KerasModel(self._model_of(t, ctx, study, retrained)),
                metrics={"tune_trial": t.number, "tune_val_accuracy": t.values[quality]},
                info={"params": t.params, "values": dict(zip(objectives, t.values, strict=True))},
            )
            for t in sorted(others, key=lambda t: t.number)
        ]
        metrics: dict[str, float] = {
            "tune_trials": len(study.finished()),
            "tune_best_val_accuracy": best.values[quality],
            "tune_best_trial": best.number,
            "tune_trial": best.number,
            "tune_val_accuracy": best.values[quality],
            "train_samples": len(ctx.data.y_train),
        }
        info_front: dict[str, Any] = {}
        if len(objectives) > 1:
            metrics["tune_pareto_trials"] = len(front)
            info_front = {"pareto_trials": [t.number for t in front]}
        storage = study.storage_path
        return StageResult(
            artifact=KerasModel(model),
            metrics=metrics,
            info={
                "best_params": best.params,
                "best_values": dict(zip(objectives, best.values, strict=True)),
                "objectives": objectives,
                **info_front,
                "trials_run_now": ran,
                # What the sampler did, so the row re-derives: its effective settings and seed.
                "sampler": {
                    "name": self.resolved["sampler"],
                    **self.resolved["sampler_settings"],
                    "seed": study.sampler_seed,
                },
                "parallel_trials": workers,
                "retrained_trials": retrained,
                "storage": str(storage) if storage is not None else None,
                "trials": [trial_info(t) for t in trials],
            },
            train_seconds=sum(float(t.user_attrs.get("train_seconds", 0.0)) for t in trials),
            alternatives=alternatives,
        )


def footprint(model: Any, objectives: list[str]) -> dict[str, float]:
    """The footprint objectives of a trained model: Keras parameter count, float TFLite bytes,
    MACs of that file."""
    out: dict[str, float] = {}
    if "params" in objectives:
        out["params"] = float(model.count_params())
    if "tflite_bytes" in objectives or "macs" in objectives:
        from effcli.measure.flatbuffer import model_stats

        content = KerasModel(model).to_tflite().content
        out["tflite_bytes"] = float(len(content))
        if "macs" in objectives:
            out["macs"] = float(model_stats(content).macs)
    return {k: v for k, v in out.items() if k in objectives}
