"""The audit on a dask.distributed cluster gives the local run's results, to the bit."""

from __future__ import annotations

import functools
import json
import pickle
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from segaudit.commands.score import ScoreOptions, score
from segaudit.core.audit import AuditResult, run_audit
from segaudit.core.pixel import PixelDigest
from segaudit.execute import ThreadExecutor
from segaudit.execute.dask import DaskExecutor, ShippedSink
from segaudit.io.inputs import InputSpec, open_folder
from segaudit.io.paired import PairedDataset
from segaudit.io.probs import NpyProbs

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    """Two single-threaded worker processes, shared by this module's tests (startup ~2 s)."""
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as dask_client,
    ):
        yield dask_client


def packed_mask(
    index: int, image_id: str, digest: PixelDigest, flagged: NDArray[np.bool_]
) -> tuple[int, tuple[int, ...], NDArray[np.uint8]]:
    """A ShippedSink compute: the flagged mask, bit-packed for the trip back."""
    return index, flagged.shape, np.packbits(flagged)


def collect_masks(
    dataset: PairedDataset, executor: Any
) -> tuple[AuditResult, dict[int, NDArray[np.bool_]]]:
    masks: dict[int, NDArray[np.bool_]] = {}

    def deliver(payload: tuple[int, tuple[int, int], NDArray[np.uint8]]) -> None:
        index, shape, bits = payload
        masks[index] = np.unpackbits(bits, count=shape[0] * shape[1]).reshape(shape).astype(bool)

    sink = ShippedSink(packed_mask, deliver)
    return run_audit(dataset, executor=executor, sinks=[sink]), masks


def assert_same(a: AuditResult, b: AuditResult) -> None:
    assert a.images == b.images  # scores, flagged counts, top pairs: exactly equal
    assert [r.index for r in a.ranking()] == [r.index for r in b.ranking()]
    np.testing.assert_array_equal(a.thresholds, b.thresholds)
    assert a.confident_count == b.confident_count
    assert a.cutoff == b.cutoff
    np.testing.assert_array_equal(a.confusion, b.confusion)


@pytest.mark.parametrize(
    ("fmt", "dtype"),
    [("zarr", np.float16), ("npy", np.float32)],  # float32: the refine pass runs too
)
def test_dask_equals_local_with_masks(
    fmt: str, dtype: Any, tmp_path: Path, client: Any, make_dataset: Callable[..., Any]
) -> None:
    made = make_dataset(tmp_path, n=9, k=5, h=24, w=20, fmt=fmt, dtype=dtype, seed=3)
    dataset = open_folder(made.masks, made.probs_path)
    local, local_masks = collect_masks(dataset, ThreadExecutor(2))
    remote, remote_masks = collect_masks(dataset, DaskExecutor(client, window=3))
    assert_same(local, remote)
    assert local.flagged_pixels > 0, "the dataset should have label issues to find"
    assert sorted(remote_masks) == list(range(9))
    for index, mask in local_masks.items():
        np.testing.assert_array_equal(mask, remote_masks[index], err_msg=f"image {index}")


def _score(made: Any, out: Path, scheduler: str | None) -> dict[str, Any]:
    score(
        ScoreOptions(
            InputSpec(labels=made.masks, probs=made.probs_path, pairing_check=False),
            out=out,
            top=2,
            scheduler=scheduler,
        )
    )
    return json.loads((out / "summary.json").read_text())


def test_score_on_a_scheduler_writes_the_local_run_folder(
    tmp_path: Path, client: Any, make_dataset: Callable[..., Any]
) -> None:
    made = make_dataset(tmp_path / "data", n=7, k=4, h=16, w=18, chunk=2, seed=5)
    local = _score(made, tmp_path / "local", None)
    remote = _score(made, tmp_path / "dask", client.scheduler.address)
    for name in ("ranking.csv", "regions.csv"):
        assert (tmp_path / "local" / name).read_text() == (tmp_path / "dask" / name).read_text()
    local.pop("timings"), remote.pop("timings")
    assert remote == local  # thresholds, T, cutoff, per-class counts, common issues
    assert remote["flagged_pixels"] > 0
    overlays = sorted(p.name for p in (tmp_path / "dask" / "overlays").glob("*.png"))
    assert len(overlays) == 2  # drawn afterwards on the client


def test_datasets_pickle_by_path_not_data(tmp_path: Path, make_dataset: Callable[..., Any]) -> None:
    made = make_dataset(tmp_path, n=4, k=5, h=64, w=64, fmt="npy")
    dataset = open_folder(made.masks, made.probs_path)
    data = pickle.dumps(dataset)
    assert len(data) < made.probs.nbytes / 10
    copy = pickle.loads(data)
    assert isinstance(copy.reader, NpyProbs)
    assert isinstance(copy.reader._array, np.memmap)  # reopened memory-mapped
    np.testing.assert_array_equal(copy.reader.read(1, 3), made.probs[1:3])


def test_shipped_sink_delivers_at_once_outside_dask() -> None:
    got: list[object] = []
    sink = ShippedSink(functools.partial(lambda tag, *args: (tag, args[0]), "x"), got.append)
    digest: Any = None
    sink(4, "a", digest, np.zeros((1, 1), bool))
    assert got == [("x", 4)]


def test_cli_scheduler_option_gives_the_threaded_run_folder(
    tmp_path: Path, client: Any, make_dataset: Callable[..., Any]
) -> None:
    from typer.testing import CliRunner

    from segaudit.cli import app

    made = make_dataset(tmp_path / "data", n=5, k=3, h=12, w=14, chunk=2, seed=9)
    outputs = {}
    for name, extra in (
        ("threads", ["--workers", "2"]),
        ("dask", ["--scheduler", client.scheduler.address]),
    ):
        out = tmp_path / name
        args = ["score", "--labels", str(made.masks), "--probs", str(made.probs_path)]
        args += ["--no-pairing-check"]  # the fixture's model is barely better than chance
        result = CliRunner().invoke(app, [*args, "--out", str(out), "--top", "0", *extra])
        assert result.exit_code == 0, result.output
        outputs[name] = (out / "ranking.csv").read_text()
    assert outputs["dask"] == outputs["threads"]
