"""Run the trials of one tune node in several processes at once (`parallel_trials: N`).

The node's own process is worker 0 and starts at once; N - 1 more are spawned (never forked:
TensorFlow does not survive a fork). Each opens the node's persisted study (SQLite, _study.py)
and takes the next trial whenever it is free (`Study.run_shared`) until the study holds the
budget, so the workers still importing TensorFlow (seconds) simply take fewer trials. Optuna's
storage is the only thing they share: each sampler sees every trial the others finished (TPE
treats the running ones as a constant liar). Each worker runs TensorFlow with the threads every
node gets (effcli._tf), so N workers use N cores. The node executor knows nothing of them: under
`--executor process --jobs J` a tune node with `parallel_trials: N` shares the J cores.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from effcli.errors import StageFailed, one_line
from effcli.stages.base import StageContext

if TYPE_CHECKING:
    from effcli.data.base import DataSplits

_quiet: list[Any] = []  # the worker's native-log silencer, held for its lifetime


class TrialRunner(Protocol):
    """What a worker calls: the tune stage (pickled to each worker with its resolved params)."""

    def run_trials(
        self, ctx: StageContext, worker: int, attach_at: int, total: int, timeout: float | None
    ) -> None: ...


@dataclass(frozen=True)
class TrialsJob:
    """What every spawned worker of one search needs: the stage, the node's data and seed, where
    its study is, how many trials it must hold in the end, the Keras precision policy in force."""

    runner: TrialRunner
    data: DataSplits
    seed: int
    node_key: str
    workdir: Path
    attach_at: int  # trials in the study when the node's process opened it
    total: int  # trials the study holds when the search is done
    timeout: float | None
    policy: str


def run_in_workers(
    runner: TrialRunner,
    ctx: StageContext,
    workers: int,
    job: tuple[int, int, float | None],
    local: Callable[[], None],
) -> None:
    """Spawn `workers - 1` processes running trials of the study while this one runs `local`
    (its own trials); `job` is (attach_at, total, timeout). Their training cost is added to
    ctx's. A worker's exception or death fails the node in one line once all have stopped (a
    rerun resumes the study)."""
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    from effcli import _tf
    from effcli._tf import keras

    assert ctx.workdir is not None, "workers share the study through its file"
    attach_at, total, timeout = job
    spec = TrialsJob(
        runner=runner,
        data=ctx.data,
        seed=ctx.seed,
        node_key=ctx.node_key,
        workdir=ctx.workdir,
        attach_at=attach_at,
        total=total,
        timeout=timeout,
        policy=keras.mixed_precision.global_policy().name,
    )
    threads = int(_tf.configure()["intra_op_threads"])  # each worker: what this node has
    errors: list[str] = []
    with ProcessPoolExecutor(workers - 1, get_context("spawn"), _install, (threads,)) as pool:
        futures: list[Future[tuple[int, int]]] = [
            pool.submit(_work, spec, k) for k in range(1, workers)
        ]
        try:
            local()
        finally:
            for k, future in enumerate(futures, start=1):
                try:
                    steps, samples = future.result()
                except Exception as exc:  # the others finish their trials first
                    errors.append(f"trial worker {k}: {one_line(exc)}")
                    continue
                cost = getattr(ctx, "cost", None)  # where the runner counts training cost
                if cost is not None:
                    cost.add(steps, samples)
    if errors:
        raise StageFailed(errors[0])


def _install(threads: int) -> None:
    """A spawned worker's set-up, once: quiet native logs, TensorFlow's threads, and a watch on
    the node's process (killed, it must not leave workers training on)."""
    from effcli._native import native_quiet
    from effcli._tf import configure

    _quiet.append(native_quiet())
    _quiet[-1].__enter__()
    configure(threads)
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True).start()


def _exit_with_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(1)  # its RUNNING trial is failed when the node runs again


def _work(job: TrialsJob, worker: int) -> tuple[int, int]:
    """A spawned worker's trials; returns the optimizer steps and samples its trainings took."""
    import optuna

    from effcli._tf import keras

    optuna.logging.set_verbosity(optuna.logging.ERROR)  # a failed trial is recorded, not logged
    keras.utils.set_random_seed(job.seed)  # as the runner seeds a node's process
    keras.mixed_precision.set_global_policy(job.policy)
    ctx = StageContext(data=job.data, seed=job.seed, node_key=job.node_key, workdir=job.workdir)
    job.runner.run_trials(ctx, worker, job.attach_at, job.total, job.timeout)
    cost = getattr(ctx, "cost", None)
    return (int(cost.steps), int(cost.samples_seen)) if cost is not None else (0, 0)
