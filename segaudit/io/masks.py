"""Label masks stored as single-channel PNG files, one per image."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image, UnidentifiedImageError

from segaudit.errors import DatasetError, ImageError

MASK_SUFFIX = ".png"
#: Modes whose pixel value is the class id: 8-bit grey, palette indices, 16- and 32-bit ints.
ID_MODES = frozenset({"L", "P", "I;16", "I;16B", "I;16L", "I"})


def mask_ids(folder: Path) -> dict[str, Path]:
    """Map image id (path relative to ``folder`` without suffix, '/'-separated) to file."""
    if not folder.is_dir():
        raise DatasetError(f"{folder}: mask folder not found; pass the folder of PNG masks")
    found = {
        path.relative_to(folder).with_suffix("").as_posix(): path
        for path in sorted(folder.rglob(f"*{MASK_SUFFIX}"))
        if path.is_file()
    }
    if not found:
        raise DatasetError(f"{folder}: no {MASK_SUFFIX} masks found")
    return found


def read_mask(image_id: str, path: Path) -> NDArray[np.integer]:
    """The class ids of one mask as an (H, W) integer array."""
    try:
        with Image.open(path) as image:
            if image.mode not in ID_MODES:
                raise ImageError(
                    image_id,
                    f"{path}: mask has mode {image.mode}; segaudit needs one channel whose value "
                    "is the class id (mode L, P or 16-bit)",
                )
            image.load()
            return np.asarray(image)
    except ImageError:
        raise
    except (OSError, UnidentifiedImageError, Image.DecompressionBombError) as error:
        raise ImageError(image_id, f"{path}: cannot read mask ({error})") from None
