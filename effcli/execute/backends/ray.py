"""Ray (`--executor ray [--address auto|HOST:PORT]`): the process executor's scheduling, with
Ray tasks as the workers.

Without an address a local Ray instance with `--jobs` CPUs is started; with one, effdl joins
that cluster, whose nodes must all see the run directory (a shared filesystem): tasks write the
same cache, artifacts and results.csv as every other executor. Ray is an optional extra:
`pip install 'effdl[ray]'`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from typing import Any

from effcli.errors import UsageError
from effcli.execute.backends.process import ProcessExecutor, _build, _finish
from effcli.execute.base import executors


@executors.register("ray")
class RayExecutor(ProcessExecutor):
    @contextmanager
    def pool(self, jobs: int, threads: int) -> Iterator[Callable[..., Future[dict[str, Any]]]]:
        try:
            import ray
        except ImportError:
            raise UsageError(
                "the ray executor needs Ray: pip install 'effdl[ray]' (or use --executor process)"
            ) from None
        started = not ray.is_initialized()
        if started:
            env = {"env_vars": {"TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}}
            if self.address:
                ray.init(address=self.address, runtime_env=env, log_to_driver=False)
            else:
                ray.init(
                    num_cpus=jobs,
                    runtime_env=env,
                    include_dashboard=False,
                    log_to_driver=False,
                    configure_logging=False,
                )
        tasks = {fn: ray.remote(num_cpus=1)(fn) for fn in (_build, _finish)}

        def submit(fn: Callable[..., dict[str, Any]], *args: Any) -> Future[dict[str, Any]]:
            return tasks[fn].remote(*args, threads).future()

        try:
            yield submit
        finally:
            if started:
                ray.shutdown()
