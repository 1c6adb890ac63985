"""Executors: where the audit's blocks run. Local threads (:mod:`.threads`) or a Dask
cluster (:mod:`.dask`); results are identical, merged in block order."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from segaudit.core.audit import Executor, SerialExecutor
from segaudit.execute.threads import ThreadExecutor, default_workers

__all__ = ["Executor", "SerialExecutor", "ThreadExecutor", "default_workers", "open_executor"]


@contextmanager
def open_executor(scheduler: str | None = None, workers: int | None = None) -> Iterator[Executor]:
    """Local threads (no scheduler), or Dask: a scheduler address, or ``local`` for a
    LocalCluster of ``workers`` processes that lives as long as the ``with`` block."""
    if scheduler is None:
        yield ThreadExecutor(workers)
        return
    from segaudit.execute.dask import dask_executor

    with dask_executor(scheduler, workers) as executor:
        yield executor
