"""Ray (`--executor ray [--address auto|HOST:PORT]`): the parallel scheduler, with Ray tasks as
the workers.

Without an address a local Ray instance with `--jobs` CPUs is started; with one, effdl joins
that cluster, whose nodes must all see the run directory (a shared filesystem): tasks write the
same cache, artifacts and results.csv as every other executor. The plan goes to the object store
once and every task receives it from there; epochs come back through a Ray queue (an actor), and
on a cluster with GPUs each training task asks for one. Ray is an optional extra:
`pip install 'effdl[ray]'`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future
from contextlib import contextmanager
from typing import Any

from effcli._tf import ENVIRONMENT
from effcli.errors import UsageError
from effcli.execute import _worker
from effcli.execute.backends._scheduler import Event, ParallelExecutor, WorkerPool
from effcli.execute.base import executors


@executors.register("ray")
class RayExecutor(ParallelExecutor):
    @contextmanager
    def pool(self, job: _worker.Job, workers: int) -> Iterator[WorkerPool]:
        try:
            import ray
            from ray.util.queue import Empty, Queue
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
                    num_cpus=workers,
                    runtime_env=env,
                    include_dashboard=False,
                    log_to_driver=False,
                    configure_logging=False,
                )
        gpus = task_resources(ray.cluster_resources()).get("num_gpus", 0)
        tasks: dict[Callable[..., Any], Any] = {
            _worker.build: ray.remote(num_cpus=1, num_gpus=gpus)(_worker.build),
            _worker.finish: ray.remote(num_cpus=1)(_worker.finish),  # LiteRT runs on CPU
        }
        shared = ray.put(job)
        events = Queue(actor_options={"num_cpus": 0})  # an actor: progress from any node

        def submit(fn: Callable[..., Any], *args: Any) -> Future[Any]:
            return tasks[fn].remote(*args, shared, events).future()

        def drain() -> list[Event]:
            try:
                return list(events.get_nowait_batch(events.qsize()))
            except Empty:
                return []

        try:
            yield WorkerPool(submit, drain)
        finally:
            events.shutdown()
            if started:
                ray.shutdown()


def task_resources(cluster: Mapping[str, float]) -> dict[str, float]:
    """What one node's task asks Ray for: a CPU, and a whole GPU when the cluster has GPUs
    (Ray then sets the task's CUDA_VISIBLE_DEVICES to it)."""
    if cluster.get("GPU", 0) >= 1:
        return {"num_cpus": 1, "num_gpus": 1}
    return {"num_cpus": 1}
