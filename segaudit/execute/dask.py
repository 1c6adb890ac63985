"""Run the audit's passes on a dask.distributed cluster (``segaudit score --scheduler``).

The audit engine hands an executor one function and the dataset's blocks; each block's
function call reads that block straight from the dataset's path or URL (the dataset pickles
by path, never with its data) and returns a small mergeable partial result. Here each block
is one Dask task; the client merges partials as they arrive, in submission order, so the
result is the same as a local run's. The function is sent to every worker once
(``scatter``), not with every task.

Image sinks (pass 2's per-image outputs, such as suspect regions) cannot write into the
client's files from a worker. A :class:`ShippedSink` splits a sink in two: ``compute`` runs
next to the data and returns a small payload, which travels back with the block's result
and is handed to ``deliver`` on the client.

dask[distributed] is an optional dependency: ``pip install 'segaudit[dask]'``.
"""

from __future__ import annotations

import threading
import uuid
import weakref
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import numpy as np
from numpy.typing import NDArray

from segaudit.core.pixel import PixelDigest
from segaudit.errors import OptionError
from segaudit.execute.threads import default_workers

_T = TypeVar("_T")
#: Per worker thread: the payloads ShippedSinks produce while one block runs.
_outbox = threading.local()
#: Client side: each ShippedSink by its token, so payloads find their way back.
_sinks: weakref.WeakValueDictionary[str, ShippedSink] = weakref.WeakValueDictionary()


class ShippedSink:
    """An image sink whose work runs where the block runs and whose result comes back.

    ``compute(index, image_id, digest, flagged)`` must be picklable and return something
    small; ``deliver(payload)`` stays on the client. Called outside a Dask task (local
    threads), it simply delivers at once.
    """

    def __init__(
        self,
        compute: Callable[[int, str, PixelDigest, NDArray[np.bool_]], object],
        deliver: Callable[[Any], None],
    ) -> None:
        self.compute = compute
        self.deliver = deliver
        self.token = uuid.uuid4().hex
        _sinks[self.token] = self

    def __call__(
        self, index: int, image_id: str, digest: PixelDigest, flagged: NDArray[np.bool_]
    ) -> None:
        payload = self.compute(index, image_id, digest, flagged)
        outbox: list[tuple[str, object]] | None = getattr(_outbox, "items", None)
        if outbox is None:
            self.deliver(payload)
        else:
            outbox.append((self.token, payload))

    def __getstate__(self) -> dict[str, Any]:
        return {"compute": self.compute, "token": self.token}  # deliver stays here

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.compute, self.token = state["compute"], state["token"]
        self.deliver = _undeliverable


def _undeliverable(payload: object) -> None:
    raise RuntimeError("a shipped sink was called outside a Dask task on a worker")


def _run_block(fn: Callable[[range], object], block: range) -> tuple[object, list[Any]]:
    """A Dask task: one block's partial result and the shipped sinks' payloads."""
    _outbox.items = []
    try:
        return fn(block), _outbox.items
    finally:
        del _outbox.items


class DaskExecutor:
    """The Executor protocol on a dask.distributed Client: one task per block.

    At most ``window`` tasks are in flight (default: twice the cluster's threads), so
    finished partials never pile up on the workers; results are yielded in submission order.
    """

    remote = True

    def __init__(self, client: Any, window: int | None = None) -> None:
        self.client = client
        threads = sum(client.nthreads().values()) or 1
        self.window = window or 2 * threads

    def map(self, fn: Callable[[range], _T], items: Sequence[range]) -> Iterator[_T]:
        remote_fn = self.client.scatter(fn, broadcast=True, hash=False)
        pending: deque[Any] = deque()
        queue = iter(items)
        try:
            for item in queue:
                pending.append(self.client.submit(_run_block, remote_fn, item, pure=False))
                if len(pending) >= self.window:
                    yield self._collect(pending.popleft())
            while pending:
                yield self._collect(pending.popleft())
        finally:
            if pending:
                self.client.cancel(list(pending))
            self.client.cancel([remote_fn])

    @staticmethod
    def _collect(future: Any) -> Any:
        result, payloads = future.result()
        future.release()
        for token, payload in payloads:
            _sinks[token].deliver(payload)
        return result


@contextmanager
def dask_executor(scheduler: str, workers: int | None = None) -> Iterator[DaskExecutor]:
    """Connect to a scheduler at ``scheduler`` (``tcp://host:8786``), or with ``local``
    start a LocalCluster of ``workers`` single-threaded processes for this run."""
    try:
        import distributed
    except ImportError:
        raise OptionError(
            "--scheduler needs dask.distributed; install it: pip install 'segaudit[dask]'"
        ) from None
    client_type: Any = distributed.Client  # untyped library
    cluster_type: Any = distributed.LocalCluster
    if scheduler == "local":
        with (
            cluster_type(
                n_workers=workers or default_workers(),
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
            ) as cluster,
            client_type(cluster) as client,
        ):
            yield DaskExecutor(client)
        return
    try:
        client = client_type(scheduler, timeout="30s")
    except OSError as error:
        raise OptionError(
            f"cannot reach the Dask scheduler at {scheduler} ({error}); check the address "
            "(tcp://host:8786) or use --scheduler local"
        ) from None
    with client:
        yield DaskExecutor(client)
