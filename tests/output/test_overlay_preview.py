"""Overlays of large images: drawn at a preview width from resized class ids (the same
pixels as colouring first), at full resolution on request, several at once with progress."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from segaudit.commands.score import ScoreOptions, score
from segaudit.config.classes import ClassesConfig, generated_palette
from segaudit.core.pixel import PixelDigest, digest_image
from segaudit.io.inputs import InputSpec
from segaudit.output.overlay import (
    MAX_PANEL_WIDTH,
    TITLE_HEIGHT,
    OverlayWriter,
    colorize,
    colorize_resized,
)


def _classes(k: int) -> ClassesConfig:
    return ClassesConfig(tuple(f"c{i}" for i in range(k)), tuple(generated_palette(k)))


@pytest.mark.parametrize("k", [5, 300])  # ids in an 8-bit picture, and in a 32-bit one
@pytest.mark.parametrize("size", [(50, 30), (160, 96), (700, 420)])  # smaller, same, larger
def test_resizing_ids_first_gives_the_same_pixels(k: int, size: tuple[int, int]) -> None:
    rng = np.random.default_rng(k)
    ids = rng.integers(0, k, size=(96, 160)).astype(np.intp)
    valid = rng.random((96, 160)) > 0.1
    classes = _classes(k)
    colored = colorize(ids, valid, classes)
    expected = np.asarray(Image.fromarray(colored).resize(size, Image.Resampling.NEAREST))
    if size == (160, 96):
        expected = colored
    np.testing.assert_array_equal(colorize_resized(ids, valid, classes, size), expected)


def _wide_digest(h: int, w: int) -> PixelDigest:
    given = np.zeros((h, w), np.uint8)
    probs = np.full((3, h, w), 0.05, np.float32)
    probs[0] = 0.9
    probs[:, 10:30, 100:400] = np.array([0.05, 0.9, 0.05], np.float32)[:, None, None]
    return digest_image("a", given, probs)


def test_preview_width_unless_full_resolution_is_asked(tmp_path: Path) -> None:
    h, w = 64, 2048
    digest = _wide_digest(h, w)
    flagged = digest.disagrees
    preview = OverlayWriter(tmp_path, _classes(3), {0}).render("a", digest, flagged)
    full = OverlayWriter(tmp_path, _classes(3), {0}, full_resolution=True)
    full_sheet = full.render("a", digest, flagged)
    assert preview.width == 3 * MAX_PANEL_WIDTH + 2 * 4  # given | predicted | issues
    assert full_sheet.width == 3 * w + 2 * 4
    assert full_sheet.height >= TITLE_HEIGHT + h


def test_score_draws_overlays_with_progress(
    tmp_path: Path, make_dataset: Callable[..., Any]
) -> None:
    made = make_dataset(tmp_path / "data", n=5, k=4, h=16, w=20, seed=4)
    seen: list[tuple[str, int, int]] = []
    outcome = score(
        ScoreOptions(InputSpec(labels=made.masks, probs=made.probs_path), tmp_path / "out", top=3),
        on_progress=lambda stage, done, total: seen.append((stage, done, total)),
    )
    overlays = [s for s in seen if s[0] == "overlays"]
    assert overlays == [("overlays", i, 3) for i in (1, 2, 3)]
    assert len(outcome.overlays) == 3 and all(p.is_file() for p in outcome.overlays)


def test_outline_is_the_mask_less_its_erosion_and_its_dilation_less_the_mask() -> None:
    from scipy import ndimage  # the definition, at test time only

    from segaudit.output.overlay import _outline

    rng = np.random.default_rng(3)
    for shape in ((1, 1), (1, 7), (9, 1), (23, 31)):
        mask = rng.random(shape) < 0.5
        pixels = np.full((*shape, 3), 7, np.uint8)
        _outline(pixels, mask, (1, 2, 3))
        expected = np.full((*shape, 3), 7, np.uint8)
        expected[ndimage.binary_dilation(mask) & ~mask] = (0, 0, 0)
        expected[mask & ~ndimage.binary_erosion(mask, border_value=0)] = (1, 2, 3)
        np.testing.assert_array_equal(pixels, expected)
