"""CVAT "Segmentation mask 1.1": ``labelmap.txt``, ``SegmentationClass/``,
``SegmentationObject/`` and ``ImageSets/Segmentation/default.txt``, zipped as CVAT imports
it (Actions → Upload annotations → Segmentation mask 1.1).

Class PNGs are RGB with each pixel its class's colour (from the classes config); ignored
pixels are black, declared as ``background`` (CVAT's own first label). Object PNGs paint
one instance per class present, in VOC palette colour 1, 2, ... (black = none): with them
CVAT does not turn the background into a mask. Item ids are image ids, so the task's
images must be named like the masks (``images.txt`` lists them with --image-root).
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from segaudit.errors import OptionError
from segaudit.export.items import ClassInfo, ExportItem

ARCHIVE = "segmentation_mask_1.1.zip"
BACKGROUND = "background"
_FIXED_TIME = (2020, 1, 1, 0, 0, 0)  # zip entries dated alike: the same export, same bytes


def voc_color(index: int) -> tuple[int, int, int]:
    """The VOC palette colour of an index (bits of the index spread over R, G, B)."""
    r = g = b = 0
    for shift in range(7, -1, -1):
        r |= ((index >> 0) & 1) << shift
        g |= ((index >> 1) & 1) << shift
        b |= ((index >> 2) & 1) << shift
        index >>= 3
    return r, g, b


def labelmap(classes: ClassInfo) -> list[tuple[str, tuple[int, int, int]]]:
    """The labels CVAT gets: background (black) first, then the classes; refused when a
    name cannot be written or two labels share a colour (the import would mix them)."""
    rows = [] if BACKGROUND in classes.names else [(BACKGROUND, (0, 0, 0))]
    rows += list(zip(classes.names, classes.colors, strict=True))
    for name, _ in rows:
        if ":" in name or "\n" in name or name.startswith("#") or not name.strip():
            raise OptionError(f"class {name!r}: CVAT's labelmap.txt cannot hold this name")
    seen: dict[tuple[int, int, int], str] = {}
    for name, color in rows:
        if color in seen:
            raise OptionError(
                f"classes {seen[color]!r} and {name!r} share colour {color}: CVAT tells classes "
                "apart by colour; give each class its own colour in the classes config"
            )
        seen[color] = name
    return rows


def _png(pixels: NDArray[np.uint8]) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def write(items: Iterable[ExportItem], classes: ClassInfo, out: Path) -> list[Path]:
    rows = labelmap(classes)
    palette = np.asarray(classes.colors, dtype=np.uint8)
    lines = ["# label:color_rgb:parts:actions"]
    lines += [f"{name}:{r},{g},{b}::" for name, (r, g, b) in rows]
    ids: list[str] = []
    images: list[str] = []
    archive = out / ARCHIVE
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as handle:

        def add(name: str, data: bytes) -> None:
            handle.writestr(zipfile.ZipInfo(name, _FIXED_TIME), data, zipfile.ZIP_DEFLATED)

        add("labelmap.txt", ("\n".join(lines) + "\n").encode("utf-8"))
        for item in items:
            ids.append(item.image_id)
            images.append(item.image_path)
            cls = np.zeros((item.height, item.width, 3), dtype=np.uint8)
            obj = np.zeros_like(cls)
            for instance, (k, pixels) in enumerate(item.class_masks(), start=1):
                cls[pixels] = palette[k]
                obj[pixels] = voc_color(instance % 256)
            add(f"SegmentationClass/{item.image_id}.png", _png(cls))
            add(f"SegmentationObject/{item.image_id}.png", _png(obj))
        add("ImageSets/Segmentation/default.txt", ("\n".join(ids) + "\n").encode("utf-8"))
    listing = out / "images.txt"
    listing.write_text("\n".join(images) + "\n", encoding="utf-8")
    return [archive, listing]
