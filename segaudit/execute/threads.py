"""Run the audit's per-block work on a pool of local threads.

Threads suffice on one machine: numpy, PNG decoding and zarr's codecs release the GIL, so
reading, decompressing and computing overlap on every core, and the per-block partial
results merge in the calling thread without copying accumulators between processes.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

_T = TypeVar("_T")


def default_workers() -> int:
    """The CPUs this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


class ThreadExecutor:
    """Runs blocks on a pool of threads, at most ``2 * workers`` in flight (flat memory)."""

    remote = False

    def __init__(self, workers: int | None = None) -> None:
        self.workers = workers or default_workers()

    def map(self, fn: Callable[[range], _T], items: Sequence[range]) -> Iterator[_T]:
        pool = ThreadPoolExecutor(self.workers, thread_name_prefix="segaudit")
        try:
            pending: deque[Future[_T]] = deque()
            for item in items:
                pending.append(pool.submit(fn, item))
                if len(pending) >= 2 * self.workers:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:  # on an error or Ctrl-C, drop the queued blocks instead of running them
            pool.shutdown(wait=True, cancel_futures=True)
