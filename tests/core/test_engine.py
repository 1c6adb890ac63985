"""The streaming engine: streamed == in-memory, no dependence on chunking or workers, the
exact cutoff against a brute-force implementation of method.md §3, flat memory in N, and
bad images as data."""

from __future__ import annotations

import functools
import math
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray
from PIL import Image

from segaudit import ArrayDataset, AuditOptions, AuditResult, audit_arrays, run_audit
from segaudit.core.dataset import Dataset
from segaudit.core.pixel import PixelDigest
from segaudit.errors import DatasetError, ImageError
from segaudit.execute import ThreadExecutor
from segaudit.io.inputs import open_folder


@dataclass
class Collected:
    """What one audit produced, in a form that compares exactly."""

    result: AuditResult
    masks: NDArray[np.bool_]

    def key(self, ids: bool = True) -> tuple[Any, ...]:
        r = self.result
        return (
            r.thresholds.tobytes(),
            r.confident_count,
            r.cutoff,
            r.confusion.tobytes(),
            r.class_pixels.tobytes(),
            [dataclass_tuple(record)[: None if ids else 1] for record in r.images],
            [dataclass_tuple(record)[2:] for record in r.images],
            self.masks.tobytes(),
        )


def dataclass_tuple(record: Any) -> tuple[Any, ...]:
    """An ImageRecord as a tuple where NaN equals NaN."""
    quality = record.label_quality
    return (
        record.index,
        record.image_id,
        "nan" if math.isnan(quality) else quality,
        record.valid_pixels,
        record.flagged_pixels,
        record.top_given,
        record.top_predicted,
        record.top_pair_pixels,
        record.skipped,
    )


def audit(dataset: Dataset, options: AuditOptions | None = None, executor: Any = None) -> Collected:
    """run_audit with a sink that keeps every image's flagged mask."""
    masks: dict[int, NDArray[np.bool_]] = {}

    def keep(index: int, image_id: str, digest: PixelDigest, flagged: NDArray[np.bool_]) -> None:
        masks[index] = flagged.copy()

    result = run_audit(dataset, options or AuditOptions(), executor=executor, sinks=[keep])
    stacked = np.stack([masks[i] for i in sorted(masks)]) if masks else np.zeros(0, bool)
    return Collected(result, stacked)


def in_memory(labels: NDArray[Any], probs: NDArray[Any], **options: Any) -> Collected:
    masks = np.zeros(labels.shape, bool)
    result = audit_arrays(labels, probs, masks=masks, **options)
    return Collected(result, masks)


# ------------------------------------------------------------------ streamed == in-memory


@pytest.mark.parametrize("fmt", ["zarr", "npy"])
@pytest.mark.parametrize("dtype", [np.float16, np.float32])
def test_streamed_equals_in_memory(
    fmt: str, dtype: Any, tmp_path: Path, make_dataset: Callable[..., Any]
) -> None:
    made = make_dataset(tmp_path, n=7, k=6, h=14, w=18, dtype=dtype, fmt=fmt, seed=3, chunk=3)
    streamed = audit(open_folder(made.masks, made.probs_path))
    memory = in_memory(made.labels, made.probs)
    assert streamed.key(ids=False) == memory.key(ids=False)
    assert streamed.result.confident_count > 0 and streamed.masks.any()
    assert [r.image_id for r in streamed.result.images] == made.ids


# ---------------------------------------------------------------------- chunk invariance


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_zarr_chunking_does_not_change_results(
    dtype: Any,
    tmp_path: Path,
    make_dataset: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("segaudit.io.probs.BLOCK_BYTES", 1)  # one chunk per block
    n = 7
    results = []
    for chunk in (1, 3, n):
        made = make_dataset(
            tmp_path / f"chunk{chunk}", n=n, k=5, h=12, w=20, dtype=dtype, seed=11, chunk=chunk
        )
        dataset = open_folder(made.masks, made.probs_path)
        assert len(dataset.blocks()[0]) == chunk
        results.append(audit(dataset).key())
    assert results[0] == results[1] == results[2]


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_block_size_and_workers_do_not_change_results(
    dtype: Any, synthetic: Callable[..., Any]
) -> None:
    # Sharp probabilities span many octaves, where float64 sums depend on their grouping.
    arrays = synthetic(5, n=9, k=7, h=16, w=13, dtype=dtype, error_rate=0.3, sharpness=12.0)
    keys = []
    for block_size in (1, 2, 5):
        dataset = ArrayDataset(arrays.labels, arrays.probs, block_size=block_size)
        keys.append(audit(dataset).key())
        for workers in (1, 2):
            keys.append(audit(dataset, executor=ThreadExecutor(workers)).key())
    assert all(key == keys[0] for key in keys)


# ----------------------------------------------------------- exact cutoff vs brute force


@pytest.mark.parametrize(
    ("seed", "dtype", "quantum"),
    [
        (0, np.float32, None),
        (1, np.float32, None),
        (2, np.float32, 4),
        (3, np.float32, 8),
        (4, np.float64, None),
        (5, np.float64, 4),
        (6, np.float16, None),
        (7, np.float16, 2),
    ],
)
def test_cutoff_equals_brute_force(
    seed: int,
    dtype: Any,
    quantum: int | None,
    synthetic: Callable[..., Any],
    brute_force: Callable[..., Any],
) -> None:
    """method.md §3 the obvious way: sort every score, take the T lowest (all ties at the
    float32 cutoff), flag those whose argmax differs from the label."""
    arrays = synthetic(
        seed, n=6, k=9, h=40, w=48, dtype=dtype, error_rate=0.15, quantum=quantum, ignore_rate=0.05
    )
    got = in_memory(arrays.labels, arrays.probs)
    expected = brute_force(arrays.labels, arrays.probs)
    np.testing.assert_allclose(got.result.thresholds, expected.thresholds, rtol=1e-13)
    assert got.result.confident_count == expected.confident_count > 0
    assert got.result.cutoff.value == expected.cutoff
    np.testing.assert_array_equal(got.masks, expected.flagged)
    # float32/64 input goes through the refine pass; float16 keys are exact without it.
    assert ("refine_seconds" in got.result.timings) == (np.dtype(dtype) != np.float16)


def test_refine_finds_cutoff_inside_a_crowded_bin(brute_force: Callable[..., Any]) -> None:
    """Many distinct float32 scores in the coarse bin holding the cutoff: the refine pass
    must pick the exact T-th value, not the bin's edge."""
    rng = np.random.default_rng(0)
    n, h, w = 2, 50, 60
    labels = rng.integers(0, 2, (n, h, w)).astype(np.uint8)
    wrong = rng.random((n, h, w)) < 0.3
    # Wrong pixels: P[label] in [0.3, 0.3 + 2**-12) (a bin or two of 1,024 per octave),
    # P[other label] = m in [0.36, 0.69] (confident only above its threshold, ~0.44).
    s = 0.3 + rng.random((n, h, w)) * 2.0**-12
    m = rng.uniform(0.36, 0.69, (n, h, w))
    p_label = np.where(wrong, s, 0.5)
    p_other = np.where(wrong, m, 0.3)
    probs = np.empty((n, 3, h, w))
    probs[:, 0] = np.where(labels == 0, p_label, p_other)
    probs[:, 1] = np.where(labels == 1, p_label, p_other)
    probs[:, 2] = 1 - p_label - p_other
    probs = probs.astype(np.float32)
    got = in_memory(labels, probs)
    expected = brute_force(labels, probs)
    assert 0 < expected.confident_count < wrong.sum()
    assert expected.cutoff is not None and 0.3 < expected.cutoff < 0.3 + 2.0**-12
    assert got.result.cutoff.value == expected.cutoff
    assert got.result.confident_count == expected.confident_count
    np.testing.assert_array_equal(got.masks, expected.flagged)
    assert int(got.masks.sum()) == expected.confident_count  # distinct scores: exactly T
    assert "refine_seconds" in got.result.timings


def test_ties_at_the_cutoff_select_all_tied_pixels(brute_force: Callable[..., Any]) -> None:
    """Three disagreeing pixels share the lowest score 0.2; T = 2 selects all three."""
    labels = np.array([[[1, 0, 0, 0, 0, 0]]], np.uint8)
    probs = np.array(
        [
            [0.2, 0.2, 0.2, 0.2, 0.9, 0.9],  # class 0
            [0.8, 0.8, 0.8, 0.4, 0.05, 0.05],  # class 1: t1 = 0.8 (pixel 0)
            [0.0, 0.0, 0.0, 0.4, 0.05, 0.05],  # class 2: never labelled
        ],
        np.float32,
    )[None, :, None, :]
    # Pixels 1, 2: predicted 1 with 0.8 >= t1, confident: T = 2. Pixel 3: predicted 1 (tie
    # with 2 goes to the lower class) with 0.4 < t1, not confident, but its score is 0.2 too.
    got = in_memory(labels, probs)
    expected = brute_force(labels, probs)
    assert got.result.confident_count == expected.confident_count == 2
    assert got.result.cutoff.value == pytest.approx(0.2)
    np.testing.assert_array_equal(got.masks, [[[False, True, True, True, False, False]]])
    np.testing.assert_array_equal(got.masks, expected.flagged)


# ---------------------------------------------------------------------------- memory


def tiled_probabilities(n: int, k: int, h: int, w: int) -> tuple[NDArray[Any], NDArray[Any]]:
    """n images (four distinct ones repeated): cheap to make, realistic to audit."""
    rng = np.random.default_rng(0)
    base = rng.random((4, k, h, w), np.float32) ** 4
    base /= base.sum(axis=1, keepdims=True)
    labels = base.argmax(axis=1).astype(np.uint8)
    labels[rng.random(labels.shape) < 0.1] = 0
    index = np.arange(n) % 4
    return labels[index], base.astype(np.float16)[index]


def traced_peak(fn: Callable[[], object]) -> int:
    """Peak bytes allocated (numpy included) while fn runs."""
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_flat_in_images_and_below_the_probabilities() -> None:
    """K=19, 128 x 256, float16: 10 vs 40 images. The engine holds histograms and one
    image at a time, so its peak does not grow with N and stays far below the 50 MB of
    probabilities it reads."""
    peaks = {}
    for n in (10, 40):
        labels, probs = tiled_probabilities(n, 19, 128, 256)
        dataset = ArrayDataset(labels, probs)
        peaks[n] = traced_peak(functools.partial(run_audit, dataset))
        whole = probs.nbytes
    assert peaks[40] < peaks[10] * 1.3 + 1_000_000, peaks
    assert peaks[40] < whole / 2, (peaks, whole)


# ------------------------------------------------------------------------- bad images


def test_no_images_raises_dataset_error() -> None:
    labels = np.zeros((0, 4, 4), np.uint8)
    probs = np.zeros((0, 3, 4, 4), np.float32)
    with pytest.raises(DatasetError, match="no images"):
        run_audit(ArrayDataset(labels, probs))


def test_every_image_invalid_raises_dataset_error(synthetic: Callable[..., Any]) -> None:
    arrays = synthetic(0, n=3, k=4, h=5, w=6)
    labels = np.full_like(arrays.labels, 7)  # not a class, not ignored
    with pytest.raises(DatasetError, match="no image could be audited"):
        run_audit(ArrayDataset(labels, arrays.probs))


def test_one_bad_image_is_a_skipped_record(synthetic: Callable[..., Any]) -> None:
    arrays = synthetic(2, n=4, k=4, h=8, w=9, dtype=np.float32, error_rate=0.2)
    labels = arrays.labels.copy()
    labels[2, 3, 3] = 9
    probs = arrays.probs.copy()
    probs[1, 0, 0, 0] = np.nan
    result = run_audit(ArrayDataset(labels, probs))
    skipped = {r.index: r.skipped for r in result.images if r.skipped}
    assert set(skipped) == {1, 2}
    assert "label value 9" in str(skipped[2])
    assert "NaN" in str(skipped[1])
    assert [r.index for r in result.ranking()][-2:] == [1, 2]
    # The others are audited as if the bad ones were not there.
    keep = [0, 3]
    alone = in_memory(arrays.labels[keep], arrays.probs[keep])
    np.testing.assert_array_equal(result.thresholds, alone.result.thresholds)
    assert result.confident_count == alone.result.confident_count
    with pytest.raises(ImageError, match="label value 9"):
        run_audit(ArrayDataset(labels, arrays.probs), AuditOptions(strict=True))


def test_unreadable_mask_is_skipped_or_fatal_when_strict(
    tmp_path: Path, make_dataset: Callable[..., Any]
) -> None:
    made = make_dataset(tmp_path, n=4, k=4, h=8, w=10, seed=1)
    (made.masks / f"{made.ids[3]}.png").write_bytes(b"not a png at all")
    dataset = open_folder(made.masks, made.probs_path)
    result = run_audit(dataset)
    record = result.images[3]
    assert record.skipped is not None and "cannot read mask" in record.skipped
    assert all(r.skipped is None for r in result.images[:3])
    with pytest.raises(ImageError, match=made.ids[3]):
        run_audit(dataset, AuditOptions(strict=True))


def test_mask_of_unsupported_mode_among_good_ones_is_skipped(
    tmp_path: Path, make_dataset: Callable[..., Any]
) -> None:
    made = make_dataset(tmp_path, n=3, k=4, h=8, w=10, seed=2)
    grey_alpha = np.stack([made.labels[1], np.full_like(made.labels[1], 255)], axis=2)
    Image.fromarray(grey_alpha, mode="LA").save(made.masks / f"{made.ids[1]}.png")
    result = run_audit(open_folder(made.masks, made.probs_path))
    skipped = result.images[1].skipped
    assert skipped is not None and "mode LA" in skipped
    assert result.images[0].skipped is None and result.images[2].skipped is None
