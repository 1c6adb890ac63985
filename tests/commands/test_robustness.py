"""Failure paths found in review: messages printed as they are, bad outputs caught before
the audit, data that changes between passes, gate arguments checked up front, and a
thread pool that stops at the first error."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from segaudit.api import ArrayDataset
from segaudit.cli import app
from segaudit.core.audit import AuditOptions, run_audit
from segaudit.core.dataset import LoadedImage
from segaudit.errors import DatasetError, ProbabilityError
from segaudit.execute import ThreadExecutor


def run(*args: str | Path) -> Any:
    return CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "200"})


def score_args(example: Any, out: Path) -> list[str | Path]:
    root = example.root
    return ["score", "--labels", root / "masks", "--probs", root / "probs.zarr", "--out", out]


def test_message_with_brackets_is_printed_as_it_is(tmp_path: Path) -> None:
    weird = tmp_path / "a[/x]" / "[train]" / "nope.yaml"
    result = run("validate-config", weird)
    assert result.exit_code == 2
    assert "[/x]" in result.output and "[train]" in result.output
    assert "Traceback" not in result.output


def test_out_that_is_a_file_fails_before_the_audit(example: Any, tmp_path: Path) -> None:
    blocker = tmp_path / "taken"
    blocker.write_text("not a folder")
    started = time.perf_counter()
    result = run(*score_args(example, blocker / "run"))
    assert result.exit_code == 2, result.output
    assert "taken" in result.output and "Traceback" not in result.output
    assert time.perf_counter() - started < 30  # (a guard, not a timing test)
    assert blocker.read_text() == "not a folder"


def test_failed_run_leaves_no_empty_out_folder(tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = run(
        "score", "--labels", tmp_path / "missing", "--probs", tmp_path / "p.npy", "--out", out
    )
    assert result.exit_code == 2
    assert not out.exists()


def test_gate_arguments_are_checked_before_scoring(example: Any, tmp_path: Path) -> None:
    out = tmp_path / "run"
    policy = Path(__file__).resolve().parents[2] / "configs" / "gate.yaml"
    result = run(*score_args(example, out), "--policy", policy, "--update-baseline")
    assert result.exit_code == 2 and "--baseline" in result.output
    assert not (out / "ranking.csv").exists()
    result = run(*score_args(example, out), "--policy", policy, "--baseline", tmp_path / "no.json")
    assert result.exit_code == 2 and "baseline not found" in result.output
    assert not (out / "ranking.csv").exists()


class FlakyDataset(ArrayDataset):
    """Reads image 1 fine the first time and fails every later time."""

    reads: dict[int, int]

    def load(self, block: range) -> Iterator[LoadedImage]:
        for image in super().load(block):
            count = self.reads.get(image.index, 0) + 1
            self.reads[image.index] = count
            if image.index == 1 and count > 1:
                yield LoadedImage(image.index, image.image_id, None, None, None)
            else:
                yield image


def _arrays(n: int = 3, k: int = 4, size: int = 8) -> tuple[Any, Any]:
    rng = np.random.default_rng(0)
    probs = rng.random((n, k, size, size)).astype(np.float32)
    probs /= probs.sum(axis=1, keepdims=True)
    labels = rng.integers(0, k, (n, size, size)).astype(np.uint8)
    return labels, probs.astype(np.float16)


def test_image_that_fails_after_pass_one_stops_the_run() -> None:
    labels, probs = _arrays()
    dataset = FlakyDataset(labels, probs)
    dataset.reads = {}
    with pytest.raises(DatasetError, match="was read in pass 1 but not now"):
        run_audit(dataset, AuditOptions())


def test_unsupported_dtype_names_the_image() -> None:
    labels, probs = _arrays()
    dataset = ArrayDataset(labels, probs.astype(np.int32), ids=["a", "b", "c"])
    with pytest.raises(ProbabilityError, match=r"^a: unsupported probability dtype"):
        run_audit(dataset, AuditOptions(strict=True))


def test_thread_pool_stops_submitting_blocks_after_an_error() -> None:
    started: list[int] = []
    lock = threading.Lock()

    def work(block: range) -> object:
        with lock:
            started.append(block.start)
        if block.start == 0:
            raise RuntimeError("bad block")
        time.sleep(0.01)
        return block.start

    blocks = [range(i, i + 1) for i in range(200)]
    with pytest.raises(RuntimeError):
        list(ThreadExecutor(2).map(work, blocks))
    assert len(started) < 50  # bounded in flight, the rest cancelled: not run


def test_rerun_into_the_same_folder_leaves_no_stale_overlays_or_report(
    example: Any, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    assert run(*score_args(example, out), "--top", "3").exit_code == 0
    assert run("report", out).exit_code == 0
    assert len(list((out / "overlays").glob("*.png"))) == 3
    assert run(*score_args(example, out), "--top", "0").exit_code == 0
    assert not (out / "overlays").exists()
    assert not (out / "report.html").exists()
