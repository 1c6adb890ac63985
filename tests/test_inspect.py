"""`segaudit inspect`: counts, sizes, dtypes, layout, histogram and pairing, without auditing."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import zarr
from numpy.typing import NDArray
from PIL import Image
from typer.testing import CliRunner

from segaudit.cli import app
from segaudit.commands.inspect import inspect_dataset
from segaudit.core.pixel import SUM_TOLERANCE, digest_image
from segaudit.errors import ProbabilityError
from segaudit.io.transforms import Layout, summarize_values

runner = CliRunner()
K = 3


def write(tmp_path: Path, sizes: list[tuple[int, int]]) -> tuple[Path, list[NDArray[np.uint8]]]:
    masks = tmp_path / "masks"
    masks.mkdir()
    labels = []
    for i, (h, w) in enumerate(sizes):
        mask = np.random.default_rng(i).integers(0, K, (h, w)).astype(np.uint8)
        mask[0, 0] = 255
        Image.fromarray(mask).save(masks / f"im{i}.png")
        labels.append(mask)
    return masks, labels


def probs_for(n: int, h: int, w: int, seed: int = 0) -> NDArray[np.float32]:
    logits = np.random.default_rng(seed).normal(size=(n, K, h, w))
    return (np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)).astype(np.float32)


def test_report_on_a_good_dataset(tmp_path: Path) -> None:
    masks, labels = write(tmp_path, [(6, 8)] * 4)
    np.save(tmp_path / "p.npy", probs_for(4, 6, 8))
    report = inspect_dataset(masks, tmp_path / "p.npy")
    assert report.ok and report.masks == 4 and not report.sampled
    assert report.mask_sizes == {(6, 8): 4} and report.mask_modes == {"L": 4}
    expected: Counter[int] = Counter()
    for mask in labels:
        expected.update(Counter(mask.ravel().tolist()))
    assert report.class_histogram == dict(sorted(expected.items()))
    assert report.probs is not None
    assert report.probs.shape == (4, K, 6, 8) and report.probs.dtype == "float32"
    assert report.probs.layout_guess is Layout.NCHW and report.probs.num_classes == K
    assert report.probs.looks_like == "probabilities"


def test_class_axis_last_and_logits_are_recognised(tmp_path: Path) -> None:
    masks, _ = write(tmp_path, [(6, 8)] * 3)
    logits = np.log(probs_for(3, 6, 8)) * 4
    np.save(tmp_path / "p.npy", np.moveaxis(logits, 1, -1))
    report = inspect_dataset(masks, tmp_path / "p.npy")
    assert report.probs is not None
    assert report.probs.layout_guess is Layout.NHWC
    assert report.probs.looks_like == "logits"
    result = runner.invoke(
        app, ["inspect", "--labels", str(masks), "--probs", str(tmp_path / "p.npy")]
    )
    assert result.exit_code == 0
    assert "looks nhwc" in result.output and "--logits" in result.output


def test_histogram_from_a_sample_says_so(tmp_path: Path) -> None:
    masks, _ = write(tmp_path, [(5, 5)] * 6)
    np.save(tmp_path / "p.npy", probs_for(6, 5, 5))
    report = inspect_dataset(masks, tmp_path / "p.npy", histogram_sample=2)
    assert report.sampled and report.histogram_masks == 2
    assert sum(report.class_histogram.values()) == 2 * 25
    result = runner.invoke(app, ["inspect", "--labels", str(masks), "--sample", "2"])
    assert result.exit_code == 0 and "2 of 6 masks" in result.output


def test_pairing_problems_are_listed(tmp_path: Path) -> None:
    masks, _ = write(tmp_path, [(4, 4)] * 3)
    np.save(tmp_path / "p.npy", probs_for(3, 4, 4))
    ids = tmp_path / "ids.txt"
    ids.write_text("im0\nim0\nghost\n")
    report = inspect_dataset(masks, tmp_path / "p.npy", ids=ids)
    assert report.missing_masks == ["ghost"]
    assert report.extra_masks == ["im1", "im2"]
    assert report.duplicate_ids == ["im0"]
    assert not report.ok
    args = ["inspect", "--labels", str(masks), "--probs", str(tmp_path / "p.npy")]
    result = runner.invoke(app, [*args, "--ids", str(ids)])
    assert result.exit_code == 2 and "ghost" in result.output


def test_different_sizes_and_per_image_files(tmp_path: Path) -> None:
    sizes = [(4, 6), (8, 6), (4, 6)]
    masks, _ = write(tmp_path, sizes)
    folder = tmp_path / "probs"
    folder.mkdir()
    for i, (h, w) in enumerate(sizes):
        np.save(folder / f"im{i}.npy", probs_for(1, h, w, seed=i)[0].astype(np.float16))
    report = inspect_dataset(masks, folder)
    assert report.mask_sizes == {(4, 6): 2, (8, 6): 1}
    assert report.probs is not None and report.probs.kind == "per-image files"
    assert report.probs.dtype == "float16" and report.probs.images == 3
    assert report.ok


def test_unreadable_mask_and_unopenable_probabilities(tmp_path: Path) -> None:
    masks, _ = write(tmp_path, [(4, 4)] * 2)
    (masks / "im1.png").write_bytes(b"")
    report = inspect_dataset(masks, tmp_path / "missing.zarr")
    assert "im1" in report.unreadable
    assert report.problems and "missing.zarr" in report.problems[0]
    result = runner.invoke(
        app, ["inspect", "--labels", str(masks), "--probs", str(tmp_path / "missing.zarr")]
    )
    assert result.exit_code == 2 and "missing.zarr" in result.output


@pytest.mark.parametrize("with_config", [False, True])
def test_manifest_and_classes(tmp_path: Path, with_config: bool) -> None:
    write(tmp_path, [(4, 4)] * 2)
    np.save(tmp_path / "p.npy", probs_for(2, 4, 4))
    manifest = tmp_path / "m.csv"
    manifest.write_text("image_id,mask,probs\nim1,masks/im1.png,0\nim0,masks/im0.png,1\n")
    args = ["inspect", "--manifest", str(manifest), "--probs", str(tmp_path / "p.npy")]
    if with_config:
        config = tmp_path / "c.yaml"
        config.write_text(
            "version: 1\nclasses:\n"
            + "".join(f"  - {{name: cls{i}, color: [{i}, 0, 0]}}\n" for i in range(K))
        )
        args += ["--classes", str(config)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert ("cls1" in result.output) is with_config
    assert "(ignored)" in result.output if with_config else True


def test_manifest_of_per_image_logits(tmp_path: Path) -> None:
    write(tmp_path, [(4, 4)] * 2)
    for i in range(2):
        np.save(tmp_path / f"im{i}-logits.npy", np.log(probs_for(1, 4, 4, seed=i)[0]) * 5)
    manifest = tmp_path / "m.csv"
    manifest.write_text(
        "image_id,mask,probs\n"
        + "".join(f"im{i},masks/im{i}.png,im{i}-logits.npy\n" for i in range(2))
    )
    report = inspect_dataset(None, None, manifest=manifest)
    assert report.ok and report.masks == 2
    assert report.probs is not None and report.probs.kind == "per-image files"
    assert report.probs.looks_like == "logits" and report.probs.num_classes == K


def test_corrupt_probability_chunk_is_a_problem(tmp_path: Path) -> None:
    """A sampled image whose zarr chunk cannot be decoded is listed, not raised."""
    masks, _ = write(tmp_path, [(6, 8)] * 3)
    store = tmp_path / "p.zarr"
    array = zarr.create_array(store=str(store), shape=(3, K, 6, 8), chunks=(1, K, 6, 8), dtype="f4")
    array[...] = probs_for(3, 6, 8)
    chunk = store / "c" / "1" / "0" / "0" / "0"  # image 1 (the middle one is sampled)
    assert chunk.is_file()
    chunk.write_bytes(b"not a zstd frame")
    report = inspect_dataset(masks, store)
    assert not report.ok and report.probs is not None
    assert len(report.problems) == 1 and "#1" in report.problems[0]
    assert sorted(report.probs.values) == ["#0", "#2"]
    assert report.probs.looks_like == "probabilities"
    result = runner.invoke(app, ["inspect", "--labels", str(masks), "--probs", str(store)])
    assert result.exit_code == 2 and "cannot read image #1" in result.output


@pytest.mark.parametrize("column", [0, 1])  # pixel (0, 0) is sampled, (0, 1) is not
def test_inspect_and_score_judge_sums_alike(column: int) -> None:
    """inspect's 'looks like probabilities' and the audit's sum check share the tolerance
    and the sampled pixels (core.pixel's), so they agree just inside and just outside it."""
    h, w = 200, 300  # large enough that the sample skips pixels
    for factor, inside in ((0.9, True), (1.1, False)):
        probs = np.full((K, h, w), 1.0 / K, np.float64)
        probs[0, 0, column] += factor * SUM_TOLERANCE
        summary = summarize_values(probs)
        sampled = column == 0
        assert summary.looks_like_probs == (inside or not sampled)
        labels = np.zeros((h, w), np.uint8)
        if inside or not sampled:
            digest_image("a", labels, probs)
        else:
            with pytest.raises(ProbabilityError):
                digest_image("a", labels, probs)
