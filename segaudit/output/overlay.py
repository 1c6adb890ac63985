"""Overlay pictures for a reviewer: image | given labels | predicted labels | issues, a legend.

Read at a glance: class colours are the same in every picture of a run (the classes
config's, else a generated palette); flagged pixels are tinted and outlined in a colour
chosen to be far from every class colour; each large suspect region gets a numbered box
labelled "given → predicted" (numbers match regions.csv). Small images are enlarged (nearest
neighbour, so labels stay crisp) and large ones reduced, so every panel is a readable size;
a reduced flagged mask keeps any pixel that was flagged, so a small issue never vanishes.

Overlays are drawn after the audit, for the top-N images only (see
segaudit.commands.score.render_overlays).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw, ImageFont

from segaudit.config.classes import ClassesConfig, Color
from segaudit.config.naming import FileNames
from segaudit.core.pixel import PixelDigest
from segaudit.core.regions import Region, RegionOptions, find_regions
from segaudit.output.atomic import atomic_path

IGNORE_COLOR: Color = (0, 0, 0)
#: Candidate issue colours; the one farthest from every class colour is used.
ISSUE_CANDIDATES: tuple[Color, ...] = (
    (255, 230, 0),
    (0, 255, 102),
    (0, 240, 255),
    (255, 0, 255),
    (255, 120, 0),
)
#: Panel widths are brought into this range (pixels) by scaling.
MIN_PANEL_WIDTH, MAX_PANEL_WIDTH = 320, 640
MAX_UPSCALE = 8
#: Boxes and labels for at most this many regions (the largest); smaller ones are only tinted.
LABELLED_REGIONS = 6
MIN_LABELLED_AREA = 4
FONT_SIZE = 13
TITLE_HEIGHT = 20
BACKGROUND = (255, 255, 255)
TEXT = (20, 20, 20)
#: What Pillow raises for a picture it cannot read: corrupt or truncated files (OSError,
#: including UnidentifiedImageError; SyntaxError and ValueError from some format plugins)
#: and pictures too large to decode safely (DecompressionBombError is not an OSError).
IMAGE_ERRORS: tuple[type[Exception], ...] = (
    OSError,
    SyntaxError,
    ValueError,
    Image.DecompressionBombError,
)


def find_image(folder: Path | None, image_id: str) -> Path | None:
    """The RGB image for an id: ``folder/<id>.<any image suffix>`` (the default naming of
    :class:`segaudit.config.naming.FileNames`)."""
    return None if folder is None else FileNames().image_path(folder, image_id)


def issue_color(colors: Collection[Color]) -> Color:
    """The candidate colour whose nearest class colour is farthest away (deterministic)."""

    def nearest(candidate: Color) -> float:
        return min(
            (sum((a - b) ** 2 for a, b in zip(candidate, c, strict=True)) for c in colors),
            default=0,
        )

    return max(ISSUE_CANDIDATES, key=nearest)


def colorize(
    ids: NDArray[np.intp], valid: NDArray[np.bool_], classes: ClassesConfig
) -> NDArray[np.uint8]:
    """Class ids as RGB, ignored pixels black."""
    palette = np.array((*classes.colors, IGNORE_COLOR), np.uint8)
    return palette[np.where(valid, ids, len(classes.colors))]


def _font(size: int = FONT_SIZE) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """Pillow's own font (no system fonts needed); the bitmap one if FreeType is missing."""
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, ImportError, OSError):  # Pillow < 10.1 or no FreeType
        return ImageFont.load_default()


def panel_scale(width: int, full_resolution: bool = False) -> float:
    """How much to enlarge (integer factor) or reduce a panel of this width. Large images
    are drawn at a preview width (MAX_PANEL_WIDTH), unless ``full_resolution``."""
    if width < MIN_PANEL_WIDTH:
        return float(min(MAX_UPSCALE, math.ceil(MIN_PANEL_WIDTH / width)))
    if width > MAX_PANEL_WIDTH and not full_resolution:
        return MAX_PANEL_WIDTH / width
    return 1.0


def colorize_resized(
    ids: NDArray[np.intp], valid: NDArray[np.bool_], classes: ClassesConfig, size: tuple[int, int]
) -> NDArray[np.uint8]:
    """``_resize(colorize(ids, valid, classes), size, False)`` without colouring every pixel
    of a large image: nearest-neighbour picks the same source pixels from the class ids as
    from their colours, so the ids are resized first and only the preview is coloured."""
    if ids.shape[1] == size[0] and ids.shape[0] == size[1]:
        return colorize(ids, valid, classes)
    slot = len(classes.colors)
    palette = np.array((*classes.colors, IGNORE_COLOR), np.uint8)
    index = np.where(valid, ids, slot)
    mode, dtype = ("L", np.uint8) if slot < 256 else ("I", np.int32)
    small = Image.fromarray(index.astype(dtype), mode=mode).resize(size, Image.Resampling.NEAREST)
    colored: NDArray[np.uint8] = palette[np.asarray(small)]
    return colored


def _present(ids: NDArray[np.intp], count: int) -> list[int]:
    """The sorted distinct values of ``ids`` (all in 0..count-1), counted not sorted."""
    if ids.size == 0:
        return []
    return np.flatnonzero(np.bincount(ids.ravel(), minlength=count)).tolist()


def _resize(pixels: NDArray[np.uint8], size: tuple[int, int], smooth: bool) -> NDArray[np.uint8]:
    if pixels.shape[1] == size[0] and pixels.shape[0] == size[1]:
        return pixels
    method = Image.Resampling.BILINEAR if smooth else Image.Resampling.NEAREST
    return np.asarray(Image.fromarray(pixels).resize(size, method))


def _resize_mask(mask: NDArray[np.bool_], size: tuple[int, int]) -> NDArray[np.bool_]:
    """A resized mask that keeps every flagged pixel visible when reducing."""
    grey = Image.fromarray(mask.astype(np.uint8) * 255)
    method = Image.Resampling.BOX if size[0] < mask.shape[1] else Image.Resampling.NEAREST
    resized: NDArray[np.bool_] = np.asarray(grey.resize(size, method)) > 0
    return resized


def _neighbours(
    mask: NDArray[np.bool_],
) -> tuple[NDArray[np.bool_], NDArray[np.bool_], NDArray[np.bool_], NDArray[np.bool_]]:
    """Each pixel's neighbour above, below, left and right (False beyond the edge)."""
    padded = np.pad(mask, 1)
    return padded[:-2, 1:-1], padded[2:, 1:-1], padded[1:-1, :-2], padded[1:-1, 2:]


def _outline(pixels: NDArray[np.uint8], mask: NDArray[np.bool_], color: Color) -> None:
    """Draw the mask's edge: a dark ring outside, the issue colour inside (in place)."""
    up, down, left, right = _neighbours(mask)
    inner = mask & ~(mask & up & down & left & right)  # mask less its erosion (cross, edge 0)
    outer = (mask | up | down | left | right) & ~mask  # its dilation less the mask
    pixels[outer] = (0, 0, 0)
    pixels[inner] = color


def _issue_panel(
    base: NDArray[np.uint8], flagged: NDArray[np.bool_], color: Color
) -> NDArray[np.uint8]:
    """The picture, greyed and dimmed, with flagged pixels tinted and outlined."""
    grey = base.astype(np.float32).mean(axis=2, keepdims=True)
    dimmed = 0.35 * base.astype(np.float32) + 0.25 * grey + 20.0
    dimmed[flagged] = 0.35 * dimmed[flagged] + 0.65 * np.array(color, np.float32)
    panel: NDArray[np.uint8] = np.clip(dimmed, 0, 255).astype(np.uint8)
    _outline(panel, flagged, color)
    return panel


def _draw_pair(
    draw: ImageDraw.ImageDraw,
    at: tuple[float, float],
    parts: tuple[str, str],
    font: ImageFont.FreeTypeFont | ImageFont.ImageFont,
    fill: Color,
) -> float:
    """Draw "given → predicted" with a drawn arrow (fonts may lack the glyph); return width."""
    x, y = at
    first = draw.textlength(parts[0], font=font)
    draw.text((x, y), parts[0], fill=fill, font=font)
    mid = y + FONT_SIZE * 0.6
    ax = x + first + 3
    draw.line([(ax, mid), (ax + 10, mid)], fill=fill, width=1)
    draw.polygon([(ax + 11, mid), (ax + 7, mid - 3), (ax + 7, mid + 3)], fill=fill)
    draw.text((ax + 15, y), parts[1], fill=fill, font=font)
    return first + 18 + draw.textlength(parts[1], font=font)


def _overlaps(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _draw_regions(
    panel: Image.Image,
    regions: list[Region],
    scale: float,
    names: tuple[str, ...],
    color: Color,
) -> None:
    """Numbered boxes and "given → predicted" labels for the largest regions, labels placed
    above (else below, else lower down) their box so that they do not cover each other."""
    draw = ImageDraw.Draw(panel)
    font = _font()
    shown = [r for r in regions[:LABELLED_REGIONS] if r.area >= MIN_LABELLED_AREA]
    boxes = []
    for region in shown:
        x0 = math.floor(region.x * scale)
        y0 = math.floor(region.y * scale)
        x1 = math.ceil((region.x + region.width) * scale) - 1
        y1 = math.ceil((region.y + region.height) * scale) - 1
        draw.rectangle([x0 - 2, y0 - 2, x1 + 2, y1 + 2], outline=(0, 0, 0), width=1)
        draw.rectangle([x0 - 1, y0 - 1, x1 + 1, y1 + 1], outline=color, width=1)
        boxes.append((x0, y0, x1, y1))
    placed: list[tuple[float, float, float, float]] = []
    label_h = FONT_SIZE + 5
    for region, (x0, y0, _, y1) in zip(shown, boxes, strict=True):
        given = f"{region.region_id}: {names[region.given]}"
        predicted = names[region.predicted]
        width = draw.textlength(given, font=font) + 22 + draw.textlength(predicted, font=font)
        tx = max(0.0, min(x0 - 2.0, panel.width - width - 6))
        tries = [y0 - label_h - 2, y1 + 3] + [y1 + 3 + k * label_h for k in range(1, 8)]
        tries += [y0 - label_h - 2 - k * label_h for k in range(1, 8)]
        ty = tries[0] if tries[0] >= 0 else tries[1]
        for candidate in tries:
            rect = (tx, candidate, tx + width + 4, candidate + label_h)
            inside = candidate >= 0 and candidate + label_h <= panel.height
            if inside and not any(_overlaps(rect, other) for other in placed):
                ty = candidate
                break
        placed.append((tx, ty, tx + width + 4, ty + label_h))
        draw.rectangle([tx, ty, tx + width + 4, ty + label_h - 1], fill=(0, 0, 0))
        _draw_pair(draw, (tx + 3, ty + 1), (given, predicted), font, color)


def _legend(width: int, entries: list[tuple[str, Color]], issue: Color) -> Image.Image:
    """Rows of colour swatches and names, wrapped to the sheet's width."""
    font = _font()
    row_h, pad = FONT_SIZE + 8, 6
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    items = [("flagged: likely label error", issue), *entries]
    places: list[tuple[int, int]] = []
    x, y = pad, pad
    for name, _ in items:
        item_w = 18 + int(probe.textlength(name, font=font)) + 16
        if x + item_w > width and x > pad:
            x, y = pad, y + row_h
        places.append((x, y))
        x += item_w
    legend = Image.new("RGB", (width, y + row_h + pad), BACKGROUND)
    draw = ImageDraw.Draw(legend)
    for (name, color), (lx, ly) in zip(items, places, strict=True):
        draw.rectangle([lx, ly + 2, lx + 13, ly + 15], fill=color, outline=(90, 90, 90))
        draw.text((lx + 18, ly + 1), name, fill=TEXT, font=font)
    return legend


@dataclass
class OverlayWriter:
    """An image sink that draws overlays for the chosen image indices; ``path_for`` says
    where each goes (the run folder owns the names: :func:`segaudit.rundir.overlay_name`)."""

    path_for: Callable[[int, str], Path]
    classes: ClassesConfig
    indices: Collection[int]
    images_dir: Path | None = None
    region_options: RegionOptions = field(default_factory=RegionOptions)
    image_files: Mapping[str, Path] = field(default_factory=dict)  # from a manifest; wins
    full_resolution: bool = False  # panels at the image's size, not a preview width
    written: dict[int, Path] = field(default_factory=dict)
    ids: dict[int, str] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def issue_color(self) -> Color:
        return issue_color(self.classes.colors)

    def __call__(
        self, index: int, image_id: str, digest: PixelDigest, flagged: NDArray[np.bool_]
    ) -> None:
        if index not in self.indices:
            return
        sheet = self.render(image_id, digest, flagged)
        path = self.path_for(index, image_id)
        with atomic_path(path) as temp:
            sheet.save(temp, format="PNG")
        with self._lock:
            self.written[index] = path
            self.ids[index] = image_id

    def render(self, image_id: str, digest: PixelDigest, flagged: NDArray[np.bool_]) -> Image.Image:
        """The overlay sheet of one image."""
        color = self.issue_color
        regions = find_regions(digest, flagged, self.region_options)
        h, w = flagged.shape
        scale = panel_scale(w, self.full_resolution)
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        mask = _resize_mask(flagged, size)
        given = colorize_resized(digest.given, digest.valid, self.classes, size)
        all_valid = np.ones_like(digest.valid)
        predicted = colorize_resized(digest.predicted, all_valid, self.classes, size)
        photo = self._photo(image_id, (h, w))
        if photo is not None:
            photo = _resize(photo, size, True)
        base = given if photo is None else photo
        count = int(flagged.sum())
        panels = [] if photo is None else [("image", photo)]
        panels += [("given labels", given.copy()), ("predicted by the model", predicted.copy())]
        for _, pixels in panels[-2:]:
            _outline(pixels, mask, color)
        plural = "" if len(regions) == 1 else "s"
        panels.append(
            (
                f"issues: {count:,} px in {len(regions)} region{plural}",
                _issue_panel(base, mask, color),
            )
        )
        gap = 4
        sheet_w = size[0] * len(panels) + gap * (len(panels) - 1)
        k = len(self.classes.colors)
        present = sorted(
            set(_present(digest.given[digest.valid], k)) | set(_present(digest.predicted, k))
        )
        entries = [(self.classes.names[k], self.classes.colors[k]) for k in present]
        if not digest.valid.all():
            entries.append(("ignored", IGNORE_COLOR))
        legend = _legend(sheet_w, entries, color)
        sheet = Image.new("RGB", (sheet_w, TITLE_HEIGHT + size[1] + legend.height), BACKGROUND)
        draw = ImageDraw.Draw(sheet)
        font = _font()
        for i, (title, pixels) in enumerate(panels):
            x = i * (size[0] + gap)
            sheet.paste(Image.fromarray(pixels), (x, TITLE_HEIGHT))
            draw.text((x + 3, 3), title, fill=TEXT, font=font)
        last = (len(panels) - 1) * (size[0] + gap)
        panel = sheet.crop((last, TITLE_HEIGHT, last + size[0], TITLE_HEIGHT + size[1]))
        _draw_regions(panel, regions, scale, self.classes.names, color)
        sheet.paste(panel, (last, TITLE_HEIGHT))
        sheet.paste(legend, (0, TITLE_HEIGHT + size[1]))
        return sheet

    def names(self) -> dict[str, str]:
        """Image id -> overlay file name, in index order (what overlays/index.json holds)."""
        with self._lock:
            return {self.ids[i]: self.written[i].name for i in sorted(self.written)}

    def _photo(self, image_id: str, size: tuple[int, ...]) -> NDArray[np.uint8] | None:
        """The RGB image for this id if there is a readable one of the mask's size.

        An unreadable picture is treated as a missing one (the sheet is drawn over the given
        labels): it is only shown to the reviewer, so it must not stop the run.
        """
        path = self.image_files.get(image_id) or find_image(self.images_dir, image_id)
        if path is None:
            return None
        try:
            with Image.open(path) as photo:
                rgb = np.asarray(photo.convert("RGB"))
        except IMAGE_ERRORS:
            return None
        return rgb if rgb.shape[:2] == size else None
