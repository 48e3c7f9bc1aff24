"""Ray (`--executor ray [--address auto|HOST:PORT]`): the parallel scheduler, with Ray tasks as
the workers.

Without an address a local Ray instance with `--jobs` CPUs is started; with one, effdl joins
that cluster, whose nodes must all see the run directory (a shared filesystem): tasks write the
same cache, artifacts and results.csv as every other executor. The plan goes to the object store
once and every task receives it from there. Ray is an optional extra: `pip install 'effdl[ray]'`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from typing import Any

from effcli._tf import ENVIRONMENT
from effcli.errors import UsageError
from effcli.execute import _worker
from effcli.execute.backends._scheduler import ParallelExecutor, Submit
from effcli.execute.base import executors


@executors.register("ray")
class RayExecutor(ParallelExecutor):
    @contextmanager
    def pool(self, job: _worker.Job) -> Iterator[Submit]:
        try:
            import ray
        except ImportError:
            raise UsageError(
                "the ray executor needs Ray: pip install 'effdl[ray]' (or use --executor process)"
            ) from None
        started = not ray.is_initialized()
        if started:
            env = {"env_vars": dict(ENVIRONMENT)}  # Ray starts the worker processes itself
            if self.address:
                ray.init(address=self.address, runtime_env=env, log_to_driver=False)
            else:
                ray.init(
                    num_cpus=max(1, self.jobs),
                    runtime_env=env,
                    include_dashboard=False,
                    log_to_driver=False,
                    configure_logging=False,
                )
        tasks: dict[Callable[..., Any], Any] = {
            fn: ray.remote(num_cpus=1)(fn) for fn in (_worker.build, _worker.finish)
        }
        shared = ray.put(job)

        def submit(fn: Callable[..., Any], *args: Any) -> Future[Any]:
            return tasks[fn].remote(*args, shared).future()

        try:
            yield submit
        finally:
            if started:
                ray.shutdown()
