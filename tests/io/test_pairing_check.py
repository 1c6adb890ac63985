"""The pairing check on its own: which wrong pairings it names, what it lets through, and the
low-agreement warning's rule."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray
from PIL import Image

from segaudit.core.audit import ImageRecord
from segaudit.core.compact import digest_probs
from segaudit.errors import PairingError
from segaudit.io.inputs import InputSpec, open_inputs
from segaudit.io.paired import PairedDataset
from segaudit.io.pairing_check import check_pairing, grid_predicted, low_agreement
from segaudit.io.transforms import ResampledProbs

K = 6


def scenes(n: int, h: int = 24, w: int = 32) -> list[NDArray[np.uint8]]:
    """Distinct blocky masks: each image its own pair of classes and its own split row."""
    rng = np.random.default_rng(0)
    masks = []
    for _ in range(n):
        a, b, c = rng.choice(K, 3, replace=False)
        mask = np.full((h, w), a, np.uint8)
        mask[int(rng.integers(4, h - 4)) :] = b
        y, x = int(rng.integers(0, h // 2)), int(rng.integers(0, w // 2))
        mask[y : y + h // 3, x : x + w // 3] = c
        masks.append(mask)
    return masks


def probs_for(mask: NDArray[np.integer], seed: int) -> NDArray[np.float32]:
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(K, *mask.shape))
    planes = np.clip(mask.astype(np.intp), 0, K - 1)
    np.put_along_axis(logits, planes[None], 5.0, axis=0)
    return (np.exp(logits) / np.exp(logits).sum(axis=0)).astype(np.float32)


def dataset(
    tmp_path: Path, masks: list[NDArray[np.uint8]], probs: list[NDArray[np.float32]]
) -> PairedDataset:
    (tmp_path / "masks").mkdir()
    for i, mask in enumerate(masks):
        Image.fromarray(mask).save(tmp_path / "masks" / f"im{i:02d}.png")
    np.save(tmp_path / "p.npy", np.stack(probs))
    spec = InputSpec(labels=tmp_path / "masks", probs=tmp_path / "p.npy", pairing_check=False)
    return open_inputs(spec).dataset


def test_right_pairing_passes_and_is_measured(tmp_path: Path) -> None:
    masks = scenes(10)
    stats = check_pairing(dataset(tmp_path, masks, [probs_for(m, i) for i, m in enumerate(masks)]))
    assert stats.images == 8 and stats.wins == 8
    assert stats.own > 0.9 > stats.others + 0.2


@pytest.mark.parametrize(
    ("order", "named"),
    [
        ("reversed", "reverse order"),
        ("next", "position i-1"),  # row r holds image r+1's: image i's sit at i-1
        ("previous", "position i+1"),
        ("shuffled", "shuffled"),
    ],
)
def test_wrong_orders_are_named(tmp_path: Path, order: str, named: str) -> None:
    masks = scenes(12)
    probs = [probs_for(m, i) for i, m in enumerate(masks)]
    moved = {
        "reversed": probs[::-1],
        "next": probs[1:] + probs[:1],
        "previous": probs[-1:] + probs[:-1],
        "shuffled": [probs[i] for i in (5, 9, 0, 11, 2, 7, 10, 3, 1, 8, 4, 6)],
    }[order]
    with pytest.raises(PairingError) as caught:
        check_pairing(dataset(tmp_path, masks, moved))
    assert caught.value.cause == "order" and caught.value.override == "--no-pairing-check"
    assert named in str(caught.value)


@pytest.mark.parametrize(("offset", "cause"), [(1, "reduce-zero-label"), (-1, "label-offset")])
def test_labels_one_off_the_planes(tmp_path: Path, offset: int, cause: str) -> None:
    masks = scenes(6)
    probs = [probs_for(m, i) for i, m in enumerate(masks)]
    # the labels move by offset; the probabilities stay on the true classes
    shifted = [m.astype(int) + offset for m in masks]
    moved = [np.where(m < 0, 255, m).astype(np.uint8) for m in shifted]
    with pytest.raises(PairingError) as caught:
        check_pairing(dataset(tmp_path, moved, probs))
    assert caught.value.cause == cause
    assert ("above" if offset > 0 else "below") in str(caught.value)


def test_masks_that_all_look_alike_pass(tmp_path: Path) -> None:
    """Identical masks cannot tell the order: agreement ties count as the own image's."""
    mask = scenes(1)[0]
    probs = probs_for(mask, 0)
    stats = check_pairing(dataset(tmp_path, [mask] * 5, [probs] * 5))
    assert stats.wins == stats.images == 5


def test_two_images_cannot_be_judged_for_order(tmp_path: Path) -> None:
    masks = scenes(2)
    probs = [probs_for(m, i) for i, m in enumerate(masks)]
    stats = check_pairing(dataset(tmp_path, masks, probs[::-1]))
    assert stats.images == 2 and stats.wins == 0


def test_images_of_different_sizes_are_compared(tmp_path: Path) -> None:
    """Per-image files of different sizes: other images' classes are resampled to fit."""
    masks = [scenes(1, 20 + 4 * i, 28 + 2 * i)[0] for i in range(5)]
    (tmp_path / "masks").mkdir()
    (tmp_path / "probs").mkdir()
    for i, mask in enumerate(masks):
        Image.fromarray(mask).save(tmp_path / "masks" / f"im{i}.png")
        np.save(tmp_path / "probs" / f"im{i}.npy", probs_for(mask, i))
    spec = InputSpec(labels=tmp_path / "masks", probs=tmp_path / "probs")
    assert open_inputs(spec).pairing is not None


def record(index: int, agreement: float, skipped: str | None = None) -> ImageRecord:
    return ImageRecord(index, f"im{index}", 0.5, 100, skipped=skipped, agreement=agreement)


def test_low_agreement_is_under_half_the_median() -> None:
    records = [record(i, a) for i, a in enumerate([0.9, 0.85, 0.44, 0.9, 0.2, 0.88])]
    records.append(record(6, math.nan, skipped="unreadable"))
    low, middle = low_agreement(records)
    assert middle == pytest.approx(0.865)
    assert [r.image_id for r in low] == ["im4"]  # 0.44 is above half the median (0.4325)
    few, median = low_agreement(records[:2])  # too few images to judge
    assert few == [] and math.isnan(median)


@pytest.mark.parametrize("options", [{"top_k": 2}, {"dtype": "uint8"}])
def test_compact_stores_are_checked_without_expanding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, options: dict[str, object]
) -> None:
    from segaudit import ProbsWriter
    from segaudit.core import compact

    masks = scenes(6)
    probs = np.stack([probs_for(m, i) for i, m in enumerate(masks)])
    (tmp_path / "masks").mkdir()
    ids = [f"im{i}" for i in range(6)]
    for image_id, mask in zip(ids, masks, strict=True):
        Image.fromarray(mask).save(tmp_path / "masks" / f"{image_id}.png")
    for name, rows in (("right", probs), ("reversed", probs[::-1])):
        with ProbsWriter(tmp_path / f"{name}.zarr", **options) as writer:  # type: ignore[arg-type]
            writer.append(np.ascontiguousarray(rows), ids=ids)
    for kind in (compact.QuantizedImage, compact.TopKImage):  # expanding would fail
        monkeypatch.setattr(kind, "expand", None)
    assert open_inputs(InputSpec(labels=tmp_path / "masks", probs=tmp_path / "right.zarr")).pairing
    with pytest.raises(PairingError, match="reverse order"):
        open_inputs(InputSpec(labels=tmp_path / "masks", probs=tmp_path / "reversed.zarr"))


@pytest.mark.parametrize("logits", [True, False])
@pytest.mark.parametrize(("low", "high", "step"), [((6, 8), (24, 32), 3), ((5, 7), (13, 30), 4)])
def test_grid_predicted_is_the_whole_digests_on_the_grid(
    logits: bool, low: tuple[int, int], high: tuple[int, int], step: int
) -> None:
    """Upsampled logits or probabilities: the check's grid of predicted classes, made from
    the grid's rows, is the whole image's digest's on that grid (ties included)."""
    rng = np.random.default_rng(step)
    raw = rng.standard_normal((5, *low)).astype(np.float16)
    if not logits:
        raw = np.abs(raw)
    raw[:, 0, :2] = raw[0, 0, :2]  # ties between classes
    probs = ResampledProbs(raw, high, logits=logits)
    assert probs.always_valid()
    whole = digest_probs("x", np.zeros(high, np.uint8), probs, (), check_sums=False)
    assert np.array_equal(grid_predicted("x", probs, step), whole.predicted[::step, ::step])


def test_probabilities_that_may_fail_the_digest_are_not_always_valid() -> None:
    raw = np.ones((3, 4, 4), np.float32)
    assert ResampledProbs(raw, (8, 8), logits=False).always_valid()
    for bad, logits in [(np.nan, True), (np.inf, True), (-1.0, False), (3e38, True)]:
        raw[1, 2, 3] = bad
        assert not ResampledProbs(raw, (8, 8), logits=logits).always_valid()
