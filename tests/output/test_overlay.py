"""Overlay sheets: panels, consistent class colours, a visible issue colour, the index."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from segaudit.config.classes import ClassesConfig, generated_palette
from segaudit.core.pixel import PixelDigest, digest_image
from segaudit.output.overlay import (
    ISSUE_CANDIDATES,
    MAX_PANEL_WIDTH,
    MIN_PANEL_WIDTH,
    TITLE_HEIGHT,
    OverlayWriter,
    issue_color,
    panel_scale,
)
from segaudit.rundir import overlay_name

CLASSES = ClassesConfig(("road", "car", "sky"), ((128, 64, 128), (0, 0, 142), (70, 130, 180)))


def _digest(h: int, w: int, box: tuple[slice, slice]) -> PixelDigest:
    """Labels all road; the model says car inside ``box`` (so the box is flagged)."""
    given = np.zeros((h, w), np.uint8)
    probs = np.zeros((3, h, w), np.float32)
    probs[0] = 0.9
    probs[1] = 0.05
    probs[2] = 0.05
    probs[:, box[0], box[1]] = np.array([0.05, 0.9, 0.05], np.float32)[:, None, None]
    return digest_image("a", given, probs)


def _distance(a: tuple[int, ...], b: tuple[int, ...]) -> int:
    return sum((x - y) ** 2 for x, y in zip(a, b, strict=True))


def test_issue_colour_is_far_from_class_colours() -> None:
    for colors in (CLASSES.colors, generated_palette(19), ((255, 230, 0), (0, 255, 102))):
        chosen = issue_color(colors)
        nearest = min(_distance(chosen, c) for c in colors)
        assert all(
            nearest >= min(_distance(other, c) for c in colors) for other in ISSUE_CANDIDATES
        )
    assert issue_color(((255, 230, 0),)) != (255, 230, 0)


def test_panel_scale_brings_widths_into_range() -> None:
    for width in (17, 64, 160, 333, 640, 2048):
        scaled = width * panel_scale(width)
        assert scaled >= min(MIN_PANEL_WIDTH, width * 8) - 1e-9
        assert scaled <= max(MAX_PANEL_WIDTH, width) + 1e-9
    assert panel_scale(160) == 2.0


def test_sheet_panels_colours_and_issue_tint(tmp_path: Path) -> None:
    h, w = 40, 64
    digest = _digest(h, w, (slice(10, 20), slice(20, 40)))
    flagged = digest.disagrees
    writer = OverlayWriter(into(tmp_path), CLASSES, {0})
    sheet = np.asarray(writer.render("a", digest, flagged))
    scale = int(panel_scale(w))
    pw, ph = w * scale, h * scale
    assert sheet.shape[1] == 3 * pw + 2 * 4  # given | predicted | issues, 4 px gaps
    assert sheet.shape[0] > TITLE_HEIGHT + ph  # a legend below
    y_far, x_far = TITLE_HEIGHT + 35 * scale, 5 * scale  # a road pixel, far from the issue
    assert tuple(sheet[y_far, x_far]) == CLASSES.colors[0]  # given panel, class colour
    y_in, x_in = TITLE_HEIGHT + 15 * scale, 30 * scale  # inside the flagged box
    assert tuple(sheet[y_in, pw + 4 + x_in]) == CLASSES.colors[1]  # predicted: car
    issue = np.array(writer.issue_color, float)
    tinted = sheet[y_in, 2 * (pw + 4) + x_in].astype(float)
    plain = sheet[y_far, 2 * (pw + 4) + x_far].astype(float)
    assert np.linalg.norm(tinted - issue) < np.linalg.norm(plain - issue)


def test_large_image_is_reduced_and_a_one_pixel_issue_stays_visible(tmp_path: Path) -> None:
    h, w = 300, 2000
    digest = _digest(h, w, (slice(150, 151), slice(1001, 1002)))
    writer = OverlayWriter(into(tmp_path), CLASSES, {0})
    sheet = np.asarray(writer.render("a", digest, digest.disagrees))
    pw = round(w * panel_scale(w))
    assert pw <= MAX_PANEL_WIDTH
    issues = sheet[TITLE_HEIGHT : TITLE_HEIGHT + round(h * panel_scale(w)), 2 * (pw + 4) :]
    near = np.linalg.norm(issues.astype(float) - np.array(writer.issue_color, float), axis=2)
    assert (near < 30).any()


def into(folder: Path) -> Callable[[int, str], Path]:
    """Overlay paths in ``folder``, named as a run folder names them."""
    return lambda index, image_id: folder / overlay_name(index, image_id)


def test_writer_writes_chosen_images_and_an_index(tmp_path: Path) -> None:
    digest = _digest(20, 30, (slice(2, 6), slice(2, 6)))
    writer = OverlayWriter(into(tmp_path), CLASSES, {1, 2})
    for number, image_id in enumerate(["x", "<y>", "z"]):
        writer(number, image_id, digest, digest.disagrees)
    assert sorted(writer.written) == [1, 2]
    names = writer.names()
    assert set(names) == {"<y>", "z"}
    for name in names.values():
        assert "<" not in name and (tmp_path / name).is_file()
        with Image.open(tmp_path / name) as picture:
            assert picture.mode == "RGB"


def _photo_file(folder: Path, h: int, w: int) -> Path:
    """A readable RGB picture for image "a", of the mask's size."""
    folder.mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    path = folder / "a.png"
    Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(path)
    return path


def _panels(sheet: Image.Image, w: int) -> int:
    """How many panels a sheet of images ``w`` wide has (4 px gaps)."""
    pw = round(w * panel_scale(w))
    return (sheet.width + 4) // (pw + 4)


def test_readable_photo_adds_an_image_panel(tmp_path: Path) -> None:
    h, w = 20, 30
    digest = _digest(h, w, (slice(2, 6), slice(2, 6)))
    _photo_file(tmp_path / "images", h, w)
    writer = OverlayWriter(into(tmp_path), CLASSES, {0}, images_dir=tmp_path / "images")
    assert _panels(writer.render("a", digest, digest.disagrees), w) == 4


def test_unreadable_photo_falls_back_to_the_given_labels(tmp_path: Path, bomb_png: bytes) -> None:
    """Corrupt, truncated or too-large pictures are drawn as if there were none."""
    h, w = 20, 30
    digest = _digest(h, w, (slice(2, 6), slice(2, 6)))
    plain = np.asarray(
        OverlayWriter(into(tmp_path), CLASSES, {0}).render("a", digest, digest.disagrees)
    )
    images = tmp_path / "images"
    path = _photo_file(images, h, w)
    good = path.read_bytes()
    writer = OverlayWriter(into(tmp_path / "out"), CLASSES, {0}, images_dir=images)
    (tmp_path / "out").mkdir()
    damaged = {
        "garbage": b"this is not a picture",
        "truncated": good[: len(good) // 2],
        "empty": b"",
    }
    for what, data in damaged.items():
        path.write_bytes(data)
        sheet = np.asarray(writer.render("a", digest, digest.disagrees))
        assert np.array_equal(sheet, plain), what
    path.write_bytes(bomb_png)
    writer(0, "a", digest, digest.disagrees)  # through the sink, as in a run
    with Image.open(writer.written[0]) as written:
        assert np.array_equal(np.asarray(written), plain)


def test_manifest_image_path_is_used_and_wins_over_the_folder(tmp_path: Path) -> None:
    """A manifest's `image` column names the picture, wherever it is and however named."""
    h, w = 20, 30
    digest = _digest(h, w, (slice(2, 6), slice(2, 6)))
    elsewhere = _photo_file(tmp_path / "photos", h, w).rename(tmp_path / "photos" / "x.png")
    writer = OverlayWriter(into(tmp_path), CLASSES, {0}, image_files={"a": elsewhere})
    assert _panels(writer.render("a", digest, digest.disagrees), w) == 4
    without = OverlayWriter(into(tmp_path), CLASSES, {0})
    assert _panels(without.render("a", digest, digest.disagrees), w) == 3
