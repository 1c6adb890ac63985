"""segaudit owns its run folder: it never deletes what it did not write, a run is
complete or absent, a second run into the same folder is refused, SIGTERM cleans up."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

import segaudit.rundir.writer as rundir_writer
from segaudit.output.overlay import OverlayWriter
from segaudit.rundir import RunWriter
from tests.hostile.hostile_data import (
    assert_clean_exit,
    cli,
    read_ranking,
    score,
    segaudit_command,
    subprocess_env,
    tree_digest,
    write_inputs,
)

IDS = [f"img_{i}" for i in range(5)]


def _siblings(out: Path) -> list[str]:
    """segaudit's hidden helpers beside a run folder (staging, previous, lock)."""
    return sorted(p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}."))


def test_labels_folder_named_overlays_is_never_deleted(tmp_path: Path) -> None:
    # the case that lost data: --out the parent of a labels folder called overlays/
    inputs = write_inputs(tmp_path / "data", IDS)
    root = tmp_path / "data"
    labels = root / "overlays"
    inputs.masks.rename(labels)
    before = tree_digest(root)
    result = cli("score", "--labels", labels, "--probs", inputs.probs, "--out", root)
    assert_clean_exit(result, 2)
    assert "--out" in result.output
    assert tree_digest(root) == before


def test_out_equal_to_labels_with_an_overlays_folder_is_refused(tmp_path: Path) -> None:
    inputs = write_inputs(tmp_path / "data", IDS)
    (inputs.masks / "overlays").mkdir()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(inputs.masks / "overlays" / "keep.png")
    before = tree_digest(inputs.masks)
    assert_clean_exit(score(inputs, inputs.masks), 2)
    assert tree_digest(inputs.masks) == before


@pytest.mark.parametrize("where", ["labels", "probs", "images", "manifest"])
def test_out_inside_an_input_is_refused(tmp_path: Path, where: str) -> None:
    inputs = write_inputs(tmp_path / "data", IDS)
    images = tmp_path / "pictures"
    images.mkdir()
    manifest = tmp_path / "m" / "manifest.csv"
    manifest.parent.mkdir()
    manifest.write_text(
        "image_id,mask,probs\n"
        + "".join(f"{i},{inputs.masks / (i + '.png')},{n}\n" for n, i in enumerate(IDS))
    )
    target = {
        "labels": inputs.masks / "run",
        "probs": inputs.probs / "run",
        "images": images / "run",
        "manifest": manifest / "run",
    }[where]
    before = tree_digest(tmp_path)
    if where == "manifest":
        args: list[Any] = ["--manifest", manifest, "--probs", inputs.probs]
    else:
        args = ["--labels", inputs.masks, "--probs", inputs.probs, "--images", images]
    result = cli("score", *args, "--out", target)
    assert_clean_exit(result, 2)
    assert "overlaps" in result.output
    assert tree_digest(tmp_path) == before


def test_out_inside_labels_does_not_poison_the_next_run(tmp_path: Path) -> None:
    inputs = write_inputs(tmp_path / "data", IDS)
    assert_clean_exit(score(inputs, inputs.masks / "run"), 2)
    assert not (inputs.masks / "run").exists()
    assert_clean_exit(score(inputs, tmp_path / "run"), 0)
    assert len(read_ranking(tmp_path / "run")) == len(IDS)


def test_foreign_folders_are_refused_and_kept(tmp_path: Path) -> None:
    inputs = write_inputs(tmp_path / "data", IDS)
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "thesis.txt").write_text("years of work")
    assert_clean_exit(score(inputs, notes), 2)
    assert (notes / "thesis.txt").read_text() == "years of work"
    # a run folder with a file segaudit did not write: refused, the file kept
    out = tmp_path / "run"
    assert_clean_exit(score(inputs, out), 0)
    (out / "overlays" / "mine.txt").write_text("mine")
    before = tree_digest(out)
    assert_clean_exit(score(inputs, out), 2)
    assert tree_digest(out) == before


class Boom(Exception):
    """Raised by a patched step, as a crash part way through a run would."""


def _raise(error: BaseException) -> Any:
    def fail(*args: Any, **kwargs: Any) -> None:
        raise error

    return fail


INTERRUPTIONS = {
    "regions": (rundir_writer.RegionSpill, "write"),
    "ranking": (RunWriter, "write_ranking"),
    "mask hashes": (RunWriter, "write_mask_hashes"),
    "summary": (RunWriter, "write_summary"),
    "overlays": (OverlayWriter, "__call__"),
    "overlay index": (RunWriter, "write_overlay_index"),
    "commit": (RunWriter, "commit"),
}


@pytest.mark.parametrize("error", [KeyboardInterrupt(), Boom("disk on fire")])
@pytest.mark.parametrize("step", sorted(INTERRUPTIONS))
def test_interrupted_rerun_leaves_the_previous_run_complete(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, step: str, error: BaseException
) -> None:
    inputs = write_inputs(tmp_path / "data", IDS)
    out = tmp_path / "run"
    assert_clean_exit(score(inputs, out, "--top", "5"), 0)
    assert_clean_exit(cli("report", out), 0)
    before = tree_digest(out)
    assert any(name.startswith("overlays/") for name in before)
    owner, name = INTERRUPTIONS[step]
    monkeypatch.setattr(owner, name, _raise(error))
    result = score(inputs, out, "--top", "5", "--min-region-area", "3", "--temperature", "0.3")
    assert result.exit_code == (130 if isinstance(error, KeyboardInterrupt) else 3)
    assert tree_digest(out) == before
    assert _siblings(out) == []
    monkeypatch.undo()
    assert_clean_exit(cli("report", out), 0)


def test_swap_failing_half_way_puts_the_previous_run_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inputs = write_inputs(tmp_path / "data", IDS)
    out = tmp_path / "run"
    assert_clean_exit(score(inputs, out), 0)
    before = tree_digest(out)
    staging = tmp_path / ".run.segaudit-staging"
    real = os.replace
    moved: list[Any] = []

    def swap_fails(src: Any, dst: Any) -> None:
        if Path(src) == staging:  # after the previous run was moved aside
            assert moved and not out.exists()
            raise KeyboardInterrupt  # SIGTERM/Ctrl-C between the two moves
        if Path(src) == out:
            moved.append(dst)
        real(src, dst)

    monkeypatch.setattr(os, "replace", swap_fails)
    result = score(inputs, out, "--temperature", "0.3")
    assert result.exit_code == 130
    monkeypatch.undo()
    assert tree_digest(out) == before
    assert _siblings(out) == []


def test_run_killed_mid_swap_gets_its_previous_run_back(tmp_path: Path) -> None:
    inputs = write_inputs(tmp_path / "data", IDS)
    out = tmp_path / "run"
    assert_clean_exit(score(inputs, out), 0)
    before = tree_digest(out)
    os.replace(out, tmp_path / ".run.segaudit-previous")  # SIGKILL between the two moves
    with RunWriter(out):
        pass  # a next run that fails: the previous one must be back
    assert tree_digest(out) == before
    assert _siblings(out) == []


def test_leftovers_of_a_killed_run_are_removed_by_the_next(tmp_path: Path) -> None:
    inputs = write_inputs(tmp_path / "data", IDS)
    out = tmp_path / "run"
    assert_clean_exit(score(inputs, out), 0)
    staging = tmp_path / ".run.segaudit-staging"
    staging.mkdir()
    (staging / ".segaudit-run").write_text("segaudit run folder, format 1\n")
    (staging / "ranking.csv").write_text("half\n")
    assert_clean_exit(score(inputs, out), 0)
    assert _siblings(out) == []
    assert len(read_ranking(out)) == len(IDS)


def test_second_concurrent_run_is_refused(tmp_path: Path) -> None:
    inputs = write_inputs(tmp_path / "data", IDS)
    out = tmp_path / "run"
    assert_clean_exit(score(inputs, out), 0)
    before = tree_digest(out)
    with RunWriter(out):  # a first run, in the middle of writing
        result = score(inputs, out, "--temperature", "0.3")
        assert_clean_exit(result, 2)
        assert "another segaudit run" in result.output
    assert tree_digest(out) == before
    assert _siblings(out) == []


@pytest.mark.slow
def test_two_concurrent_processes(tmp_path: Path) -> None:
    inputs = write_inputs(tmp_path / "data", IDS)
    out = tmp_path / "run"
    args = ["score", "--labels", inputs.masks, "--probs", inputs.probs, "--out", out]
    command = [*segaudit_command(), *(str(a) for a in args)]
    runs = [
        subprocess.Popen(command, env=subprocess_env(), stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    codes = sorted(run.wait(timeout=120) for run in runs)
    assert codes in ([0, 0], [0, 2])  # one after the other, or the second refused
    assert len(read_ranking(out)) == len(IDS)
    assert _siblings(out) == []


def _big_inputs(root: Path) -> Any:
    rng = np.random.default_rng(1)
    ids = [f"big_{i:03d}" for i in range(40)]
    masks = root / "masks"
    masks.mkdir(parents=True)
    for image_id in ids:
        Image.fromarray(rng.integers(0, 6, (192, 192), dtype=np.uint8)).save(
            masks / f"{image_id}.png"
        )
    probs = rng.random((len(ids), 6, 192, 192)).astype(np.float32)
    probs /= probs.sum(axis=1, keepdims=True)
    np.save(root / "probs.npy", probs)
    return masks, root / "probs.npy"


@pytest.mark.slow
def test_sigterm_to_a_real_run(tmp_path: Path) -> None:
    masks, probs = _big_inputs(tmp_path / "data")
    out = tmp_path / "run"
    small = write_inputs(tmp_path / "small", IDS)
    assert_clean_exit(score(small, out), 0)
    before = tree_digest(out)
    command = [
        *segaudit_command(),
        *("score", "--labels", str(masks), "--probs", str(probs), "--out", str(out)),
        *("--workers", "1", "--no-pairing-check"),
    ]
    process = subprocess.Popen(
        command, env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    staging = tmp_path / ".run.segaudit-staging"
    deadline = time.monotonic() + 60
    while not staging.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    assert process.poll() is None, "the run ended before it could be terminated"
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 143, stderr
    assert "terminated" in stderr and "Traceback" not in stderr
    assert tree_digest(out) == before
    assert _siblings(out) == []
