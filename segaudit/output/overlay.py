"""Overlay pictures for a reviewer: image | given labels | predicted labels | flagged pixels."""

from __future__ import annotations

import threading
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw

from segaudit.config import ClassesConfig
from segaudit.core.pixel import PixelDigest
from segaudit.output.atomic import atomic_path

OVERLAY_DIR = "overlays"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
IGNORE_COLOR = (0, 0, 0)
ISSUE_COLOR = np.array([255, 0, 255], np.float32)
TITLE_HEIGHT = 16


def safe_file_stem(image_id: str) -> str:
    """A file name for an image id that cannot leave the output folder."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in image_id).lstrip(".") or "_"


def find_image(folder: Path | None, image_id: str) -> Path | None:
    """The RGB image for an id: ``folder/<id>.<any image suffix>``."""
    if folder is None:
        return None
    for suffix in IMAGE_SUFFIXES:
        candidate = folder / f"{image_id}{suffix}"
        if candidate.is_file():
            return candidate
    return None


def colorize(
    ids: NDArray[np.intp], valid: NDArray[np.bool_], classes: ClassesConfig
) -> NDArray[np.uint8]:
    """Class ids as RGB, ignored pixels black."""
    palette = np.array((*classes.colors, IGNORE_COLOR), np.uint8)
    return palette[np.where(valid, ids, len(classes.colors))]


def _issue_panel(base: NDArray[np.uint8], flagged: NDArray[np.bool_]) -> NDArray[np.uint8]:
    dimmed = base.astype(np.float32) * 0.45
    dimmed[flagged] = 0.25 * dimmed[flagged] + 0.75 * ISSUE_COLOR
    return dimmed.astype(np.uint8)


def _titled(panels: list[tuple[str, NDArray[np.uint8]]]) -> Image.Image:
    h, w = panels[0][1].shape[:2]
    sheet = Image.new("RGB", (w * len(panels), h + TITLE_HEIGHT), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for i, (title, pixels) in enumerate(panels):
        sheet.paste(Image.fromarray(pixels), (i * w, TITLE_HEIGHT))
        draw.text((i * w + 3, 2), title, fill=(0, 0, 0))
    return sheet


@dataclass
class OverlayWriter:
    """An image sink that draws overlays for the chosen image indices."""

    out_dir: Path
    classes: ClassesConfig
    indices: Collection[int]
    images_dir: Path | None = None
    written: dict[int, Path] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(
        self, index: int, image_id: str, digest: PixelDigest, flagged: NDArray[np.bool_]
    ) -> None:
        if index not in self.indices:
            return
        given = colorize(digest.given, digest.valid, self.classes)
        predicted = colorize(digest.predicted, np.ones_like(digest.valid), self.classes)
        photo = self._photo(image_id, given.shape[:2])
        base = given if photo is None else photo
        panels = [] if photo is None else [("image", photo)]
        panels += [
            ("given", given),
            ("predicted", predicted),
            (f"issues ({int(flagged.sum())} px)", _issue_panel(base, flagged)),
        ]
        path = self.out_dir / f"{index:05d}_{safe_file_stem(image_id)}.png"
        with atomic_path(path) as temp:
            _titled(panels).save(temp, format="PNG")
        with self._lock:
            self.written[index] = path

    def _photo(self, image_id: str, size: tuple[int, ...]) -> NDArray[np.uint8] | None:
        """The RGB image for this id if there is one of the mask's size."""
        path = find_image(self.images_dir, image_id)
        if path is None:
            return None
        with Image.open(path) as photo:
            rgb = np.asarray(photo.convert("RGB"))
        return rgb if rgb.shape[:2] == size else None
