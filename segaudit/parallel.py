"""Executors that run the audit's per-block work: serially or on local threads.

Threads suffice on one machine: numpy, PNG decoding and zarr's codecs release the GIL, so
reading, decompressing and computing overlap on every core, and the per-block partial
results merge in the calling thread without copying accumulators between processes.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

from segaudit.core.audit import SerialExecutor

__all__ = ["SerialExecutor", "ThreadExecutor", "default_workers"]


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
        with ThreadPoolExecutor(self.workers, thread_name_prefix="segaudit") as pool:
            pending: deque[Future[object]] = deque()
            queue = iter(items)
            for item in queue:
                pending.append(pool.submit(fn, item))
                if len(pending) >= 2 * self.workers:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
