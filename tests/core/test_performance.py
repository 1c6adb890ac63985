"""The fast paths give what the plain numpy formulation gives; blocks group whole chunks."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from segaudit.core.pixel import digest_image, valid_mask
from segaudit.core.selection import ConfidenceHistogram, ScoreHistogram
from segaudit.io.inputs import open_folder
from segaudit.io.probs import ZarrProbs
from segaudit.io.sources import open_probs


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("ignore", [(), (255,), (255, 0), (-1,), (300,)])
def test_digest_matches_the_plain_formulation(dtype: Any, ignore: tuple[int, ...]) -> None:
    rng = np.random.default_rng(len(ignore))
    k, h, w = 6, 9, 11
    probs = np.round(rng.random((k, h, w)) * 4) / 4 + 1e-3  # many exact ties for the argmax
    probs = (probs / probs.sum(axis=0)).astype(dtype)
    labels = rng.integers(0, k, (h, w)).astype(np.uint8)
    labels[rng.random((h, w)) < 0.2] = 255
    labels[labels == 255] = 255 if 255 in ignore else 0
    digest = digest_image("x", labels, probs, ignore)

    valid = ~np.isin(labels.astype(np.int64), list(ignore))
    given = np.where(valid, labels, 0).astype(np.intp)
    np.testing.assert_array_equal(digest.valid, valid)
    np.testing.assert_array_equal(digest.given, given)
    np.testing.assert_array_equal(digest.predicted, np.argmax(probs, axis=0))  # first max
    np.testing.assert_array_equal(
        digest.self_confidence, np.take_along_axis(probs, given[None], 0)[0].astype(np.float64)
    )
    np.testing.assert_array_equal(digest.max_prob, probs.max(axis=0).astype(np.float64))
    assert digest.given.dtype == digest.predicted.dtype == np.intp


def test_ignore_values_the_label_type_cannot_hold_ignore_nothing() -> None:
    labels = np.array([[0, 255], [44, 1]], dtype=np.uint8)
    assert valid_mask(labels, {-1, 300}).all()
    np.testing.assert_array_equal(valid_mask(labels, {255, -1}), labels != 255)
    np.testing.assert_array_equal(
        valid_mask(labels.astype(np.int16), {-1, 44}), [[True, True], [False, True]]
    )


def test_confidence_histogram_window_counts_like_one_bin_per_pixel() -> None:
    rng = np.random.default_rng(7)
    for num_classes, n, power in [(3, 50, 1.0), (19, 5000, 0.3), (150, 20, 8.0), (4, 0, 1.0)]:
        predicted = rng.integers(0, num_classes, n).astype(np.intp)
        max_prob = (rng.random(n) ** power).astype(np.float16).astype(np.float64)
        hist = ConfidenceHistogram(num_classes)
        hist.update(predicted, max_prob)
        one_by_one = ConfidenceHistogram(num_classes)
        for p, m in zip(predicted, max_prob, strict=True):
            one_by_one.update(np.array([p]), np.array([m]))
        np.testing.assert_array_equal(hist.counts, one_by_one.counts)


def test_histograms_pickle_small_and_whole() -> None:
    scores, confidence = ScoreHistogram(), ConfidenceHistogram(19)
    scores.update(np.linspace(0, 1, 1000))
    confidence.update(np.arange(1000) % 19, np.linspace(0.1, 1, 1000))
    for hist in (scores, confidence):
        data = pickle.dumps(hist)
        assert len(data) < hist.counts.nbytes / 20
        np.testing.assert_array_equal(pickle.loads(data).counts, hist.counts)


def test_zarr_blocks_group_whole_chunks(
    tmp_path: Path, make_dataset: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    made = make_dataset(tmp_path, n=11, k=3, h=8, w=8, chunk=2)
    image_bytes = 3 * 8 * 8 * 2
    monkeypatch.setattr("segaudit.io.probs.BLOCK_BYTES", 5 * image_bytes)  # 2 chunks fit
    reader = open_probs(made.probs_path)
    assert isinstance(reader, ZarrProbs)
    assert reader.block_size == 4
    blocks = open_folder(made.masks, made.probs_path).blocks()
    assert [len(b) for b in blocks] == [4, 4, 3]
    assert [i for b in blocks for i in b] == list(range(11))
