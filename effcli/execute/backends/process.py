"""Worker processes on this machine (`--executor process [--jobs N]`).

Each worker runs TensorFlow with the threads every node gets (one by default, see effcli._tf),
so N jobs use N cores and give the same numbers as the local executor, and writes the same
cache, artifacts and results.csv (under its file lock). Workers are spawned once per run and
reused for every node (TensorFlow is imported once per worker), never forked: TensorFlow does not
survive a fork. On a GPU machine each worker gets its own GPU (effcli.execute.resources).
Epoch events come back over a queue, so the live display shows every running node.
"""

from __future__ import annotations

import queue
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from multiprocessing import get_context

from effcli.execute import _worker
from effcli.execute.backends._scheduler import Event, ParallelExecutor, WorkerPool
from effcli.execute.base import executors
from effcli.execute.resources import visible_gpus, worker_slots


@executors.register("process")
class ProcessExecutor(ParallelExecutor):
    @contextmanager
    def pool(self, job: _worker.Job, workers: int) -> Iterator[WorkerPool]:
        context = get_context("spawn")
        events = context.Queue()
        slots = context.Queue()
        for slot in worker_slots(workers, visible_gpus()):
            slots.put(slot)

        def drain() -> list[Event]:
            items: list[Event] = []
            while True:
                try:
                    items.append(events.get_nowait())
                except queue.Empty:
                    return items

        initargs = (job, events, slots)
        try:
            with ProcessPoolExecutor(workers, context, _worker.start, initargs) as pool:
                yield WorkerPool(pool.submit, drain)
        finally:
            events.close()
            slots.close()
