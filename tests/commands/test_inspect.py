"""`segaudit inspect`: score without the audit. It opens the inputs as score does (same
options, same refusals, the pairing check), then shows counts, sizes, dtypes, layout and a
class histogram."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr
from numpy.typing import NDArray
from PIL import Image
from typer.testing import CliRunner

from segaudit.cli import app
from segaudit.commands.inspect import inspect_dataset
from segaudit.core.pixel import SUM_TOLERANCE, digest_image
from segaudit.errors import DatasetError, PairingError, ProbabilityError
from segaudit.io.inputs import InputSpec
from segaudit.io.transforms import Layout, summarize_values

runner = CliRunner()
K = 3


def write(tmp_path: Path, sizes: list[tuple[int, int]]) -> tuple[Path, list[NDArray[np.uint8]]]:
    """Masks of distinct blocky scenes (so a model's agreement tells images apart)."""
    masks = tmp_path / "masks"
    masks.mkdir()
    labels = []
    for i, (h, w) in enumerate(sizes):
        mask = np.full((h, w), i % K, np.uint8)
        mask[: h // 2, : w // 2] = (i + 1) % K
        mask[h // 2 :, w // 2 :] = (i + 2) % K if i % 2 else i % K
        mask[0, 0] = 255
        Image.fromarray(mask).save(masks / f"im{i}.png")
        labels.append(mask)
    return masks, labels


def probs_of(mask: NDArray[np.uint8], seed: int = 0) -> NDArray[np.float32]:
    """A model that mostly agrees with the mask (255 pixels: class 0)."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(K, *mask.shape))
    np.put_along_axis(logits, np.where(mask == 255, 0, mask)[None].astype(np.intp), 4.0, axis=0)
    return (np.exp(logits) / np.exp(logits).sum(axis=0, keepdims=True)).astype(np.float32)


def stack(labels: list[NDArray[np.uint8]]) -> NDArray[np.float32]:
    return np.stack([probs_of(m, i) for i, m in enumerate(labels)])


def run(*args: str | Path) -> Any:
    return runner.invoke(app, ["inspect", *(str(a) for a in args)], env={"COLUMNS": "200"})


def test_report_on_a_good_dataset(tmp_path: Path) -> None:
    masks, labels = write(tmp_path, [(6, 8)] * 4)
    np.save(tmp_path / "p.npy", stack(labels))
    report = inspect_dataset(InputSpec(labels=masks, probs=tmp_path / "p.npy"))
    assert report.masks == 4 and not report.sampled and not report.unreadable
    assert report.mask_sizes == {(6, 8): 4} and report.mask_modes == {"L": 4}
    expected: Counter[int] = Counter()
    for mask in labels:
        expected.update(Counter(mask.ravel().tolist()))
    assert report.class_histogram == dict(sorted(expected.items()))
    assert report.probs.shape == (4, K, 6, 8) and report.probs.dtype == "float32"
    assert report.probs.layout_guess is Layout.NCHW and report.probs.num_classes == K
    assert report.probs.looks_like == "probabilities"
    assert report.pairing is not None and report.pairing.wins == 4
    result = run("--labels", masks, "--probs", tmp_path / "p.npy")
    assert result.exit_code == 0 and "no problems found" in result.output


def test_class_axis_last_takes_layout_as_score_does(tmp_path: Path) -> None:
    """NHWC data without --layout: refused with score's message (which names --layout);
    with it, inspected."""
    masks, labels = write(tmp_path, [(6, 8)] * 3)
    np.save(tmp_path / "p.npy", np.moveaxis(stack(labels), 1, -1))
    plain = run("--labels", masks, "--probs", tmp_path / "p.npy")
    assert plain.exit_code == 2 and "--layout nhwc" in plain.output
    assert "--logits" not in plain.output
    given = run("--labels", masks, "--probs", tmp_path / "p.npy", "--layout", "nhwc")
    assert given.exit_code == 0, given.output
    assert "looks nhwc" in given.output


def test_logits_need_logits_as_in_score(tmp_path: Path) -> None:
    masks, labels = write(tmp_path, [(6, 8)] * 3)
    np.save(tmp_path / "p.npy", np.log(stack(labels)) * 4)
    plain = run("--labels", masks, "--probs", tmp_path / "p.npy")
    assert plain.exit_code == 2 and "--logits" in plain.output
    assert run("--labels", masks, "--probs", tmp_path / "p.npy", "--logits").exit_code == 0


def test_histogram_from_a_sample_says_so(tmp_path: Path) -> None:
    masks, labels = write(tmp_path, [(5, 5)] * 6)
    np.save(tmp_path / "p.npy", stack(labels))
    spec = InputSpec(labels=masks, probs=tmp_path / "p.npy")
    seen: list[tuple[str, int, int]] = []
    report = inspect_dataset(spec, histogram_sample=2, on_progress=lambda *a: seen.append(a))
    assert report.sampled and report.histogram_masks == 2
    assert sum(report.class_histogram.values()) == 2 * 25
    assert seen and seen[-1][1] == seen[-1][2]  # progress reaches its total
    result = run("--labels", masks, "--probs", tmp_path / "p.npy", "--sample", "2")
    assert result.exit_code == 0 and "2 of 6 masks" in result.output


def test_ids_problems_are_refused_like_score(tmp_path: Path) -> None:
    masks, labels = write(tmp_path, [(4, 4)] * 3)
    np.save(tmp_path / "p.npy", stack(labels))
    ids = tmp_path / "ids.txt"
    ids.write_text("im0\nim0\nghost\n")
    with pytest.raises(DatasetError, match="duplicate image ids: im0"):
        inspect_dataset(InputSpec(labels=masks, probs=tmp_path / "p.npy", ids=ids))
    ids.write_text("im0\nim1\nghost\n")
    result = run("--labels", masks, "--probs", tmp_path / "p.npy", "--ids", ids)
    assert result.exit_code == 2 and "ghost" in result.output


def test_different_sizes_and_per_image_files(tmp_path: Path) -> None:
    sizes = [(4, 6), (8, 6), (4, 6)]
    masks, labels = write(tmp_path, sizes)
    folder = tmp_path / "probs"
    folder.mkdir()
    for i, mask in enumerate(labels):
        np.save(folder / f"im{i}.npy", probs_of(mask, i).astype(np.float16))
    report = inspect_dataset(InputSpec(labels=masks, probs=folder))
    assert report.mask_sizes == {(4, 6): 2, (8, 6): 1}
    assert report.probs.kind == "per-image files"
    assert report.probs.dtype == "float16" and report.probs.images == 3


def test_unopenable_probabilities(tmp_path: Path) -> None:
    masks, _ = write(tmp_path, [(4, 4)] * 2)
    result = run("--labels", masks, "--probs", tmp_path / "missing.zarr")
    assert result.exit_code == 2 and "missing.zarr" in result.output


def test_unreadable_mask_is_a_warning_as_score_skips_it(tmp_path: Path) -> None:
    masks, labels = write(tmp_path, [(4, 4)] * 5)
    np.save(tmp_path / "p.npy", stack(labels))
    (masks / "im1.png").write_bytes(b"")
    result = run("--labels", masks, "--probs", tmp_path / "p.npy")
    assert result.exit_code == 0, result.output
    assert "unreadable mask im1" in result.output


@pytest.mark.parametrize("with_config", [False, True])
def test_manifest_and_classes(tmp_path: Path, with_config: bool) -> None:
    _, labels = write(tmp_path, [(4, 4)] * 3)
    np.save(tmp_path / "p.npy", stack([labels[1], labels[0], labels[2]]))
    manifest = tmp_path / "m.csv"
    manifest.write_text(
        "image_id,mask,probs\nim1,masks/im1.png,0\nim0,masks/im0.png,1\nim2,masks/im2.png,2\n"
    )
    args: list[str | Path] = ["--manifest", manifest, "--probs", tmp_path / "p.npy"]
    if with_config:
        config = tmp_path / "c.yaml"
        config.write_text(
            "version: 1\nclasses:\n" + "".join(f"  - {{name: cls{i}}}\n" for i in range(K))
        )
        args += ["--classes", config]
    result = run(*args)
    assert result.exit_code == 0, result.output
    assert ("cls1" in result.output) is with_config
    assert "(ignored)" in result.output


def test_manifest_rows_in_the_wrong_order_fail_the_pairing_check(tmp_path: Path) -> None:
    _, labels = write(tmp_path, [(6, 6)] * 4)
    np.save(tmp_path / "p.npy", stack(labels))
    manifest = tmp_path / "m.csv"
    manifest.write_text(
        "image_id,mask,probs\n" + "".join(f"im{i},masks/im{i}.png,{3 - i}\n" for i in range(4))
    )
    spec = InputSpec(manifest=manifest, probs=tmp_path / "p.npy")
    with pytest.raises(PairingError) as caught:
        inspect_dataset(spec)
    assert caught.value.cause == "order" and caught.value.override == "--no-pairing-check"
    result = run("--manifest", manifest, "--probs", tmp_path / "p.npy", "--no-pairing-check")
    assert result.exit_code == 0 and "pairing check" not in result.output


def test_corrupt_probability_chunk_is_refused_when_every_probe_fails(tmp_path: Path) -> None:
    masks, labels = write(tmp_path, [(6, 8)] * 3)
    store = tmp_path / "p.zarr"
    array = zarr.create_array(store=str(store), shape=(3, K, 6, 8), chunks=(3, K, 6, 8), dtype="f4")
    array[...] = stack(labels)
    chunk = store / "c" / "0" / "0" / "0" / "0"
    assert chunk.is_file()
    chunk.write_bytes(b"not a zstd frame")
    result = run("--labels", masks, "--probs", store)
    assert result.exit_code == 2 and "cannot read probabilities" in result.output


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
