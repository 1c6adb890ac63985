"""Executors that run the audit's per-block work: serially, on local threads, or on Dask.

Threads suffice on one machine: numpy, PNG decoding and zarr's codecs release the GIL, so
reading, decompressing and computing overlap on every core, and the per-block partial
results merge in the calling thread without copying accumulators between processes.
Beyond one machine, :mod:`segaudit.dask_executor` runs the same blocks as Dask tasks.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager

from segaudit.core.audit import Executor, ImageSink, SerialExecutor
from segaudit.core.regions import Region, RegionOptions
from segaudit.output.regions import RegionCollector

__all__ = [
    "SerialExecutor",
    "ThreadExecutor",
    "default_workers",
    "open_executor",
    "region_sink",
]


def default_workers() -> int:
    """The CPUs this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


class ThreadExecutor:
    """Runs blocks on a pool of threads, at most ``2 * workers`` in flight (flat memory)."""

    def __init__(self, workers: int | None = None) -> None:
        self.workers = workers or default_workers()

    def map(self, fn: Callable[[range], object], items: Sequence[range]) -> Iterator[object]:
        pool = ThreadPoolExecutor(self.workers, thread_name_prefix="segaudit")
        try:
            pending: deque[Future[object]] = deque()
            for item in items:
                pending.append(pool.submit(fn, item))
                if len(pending) >= 2 * self.workers:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:  # on an error or Ctrl-C, drop the queued blocks instead of running them
            pool.shutdown(wait=True, cancel_futures=True)


@contextmanager
def open_executor(scheduler: str | None = None, workers: int | None = None) -> Iterator[Executor]:
    """Local threads (no scheduler), or Dask: a scheduler address, or ``local`` for a
    LocalCluster of ``workers`` processes that lives as long as the ``with`` block."""
    if scheduler is None:
        yield ThreadExecutor(workers)
        return
    from segaudit.dask_executor import dask_executor

    with dask_executor(scheduler, workers) as executor:
        yield executor


def region_sink(
    collector: RegionCollector, options: RegionOptions, executor: Executor
) -> ImageSink:
    """The regions collector as a sink this executor can run: on Dask, regions are found on
    the workers and sent back to the collector; locally the collector is the sink."""
    if not getattr(executor, "remote", False):
        return collector
    from segaudit.dask_executor import ShippedSink, region_compute

    def deliver(payload: tuple[int, str, list[Region]]) -> None:
        collector.add(*payload)

    return ShippedSink(region_compute(options), deliver)
