"""Worker processes on this machine (`--executor process --jobs N`).

Each worker runs TensorFlow with the threads every node gets (one by default, see effcli._tf),
so N jobs use N cores and give the same numbers as the local executor, and writes the same
cache, artifacts and results.csv (under its file lock). Workers are spawned, never forked: TensorFlow does not survive a fork.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from multiprocessing import get_context

from effcli.execute import _worker
from effcli.execute.backends._scheduler import ParallelExecutor, Submit
from effcli.execute.base import executors


@executors.register("process")
class ProcessExecutor(ParallelExecutor):
    @contextmanager
    def pool(self, job: _worker.Job) -> Iterator[Submit]:
        context = get_context("spawn")
        with ProcessPoolExecutor(max(1, self.jobs), context, _worker.install, (job,)) as pool:
            yield pool.submit
