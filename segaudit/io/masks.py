"""Label masks stored as image files, one per image.

A mask's pixel value is the class id (PNG modes L, P, 1, I;16 and I), or, for colour
masks (RGB/RGBA), its colour is looked up in the classes config's palette. A remap table
then turns raw values into class ids (Cityscapes labelIds -> trainIds, ADE20K's
"reduce zero label"), through a lookup table so each mask costs one indexing pass.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image, UnidentifiedImageError

from segaudit.config.classes import ClassesConfig, Color
from segaudit.config.naming import FileNames
from segaudit.errors import DatasetError, ImageError, ReadError

MASK_SUFFIX = ".png"
#: Modes whose pixel value is the class id: bilevel, 8-bit grey, palette, 16- and 32-bit ints.
ID_MODES = frozenset({"1", "L", "P", "I;16", "I;16B", "I;16L", "I"})
#: Modes whose colour names the class (through the classes config's palette).
COLOR_MODES = frozenset({"RGB", "RGBA"})
#: Value ranges past which a remap falls back from a lookup table to per-key replacement.
_MAX_TABLE = 1 << 22
#: Mask decoding errors Pillow raises for broken files (SyntaxError: "broken PNG file").
_READ_ERRORS = (OSError, SyntaxError, ValueError, EOFError, UnidentifiedImageError)


def utf8_id(image_id: str, where: Path | str, path: Path | None = None) -> str:
    """The id, if it can be written as UTF-8 (run files are UTF-8 CSV and JSON). A file
    name that is not UTF-8 is refused up front, by its bytes, rather than after the audit:
    there is no faithful way to write it into the outputs."""
    try:
        image_id.encode("utf-8")
    except UnicodeEncodeError:
        name = repr(os.fsencode(path)) if path is not None else ascii(image_id)
        raise DatasetError(
            f"{where}: {name} is not valid UTF-8; rename it (image ids are written to UTF-8 "
            "CSV and JSON files)"
        ) from None
    return image_id


def mask_ids(folder: Path, names: FileNames | None = None) -> dict[str, Path]:
    """Map image id to mask file: the files under ``folder`` (sub-folders too) whose name
    matches the mask pattern (default ``*.png``); the id is the '/'-separated path with the
    pattern's tail removed (see :mod:`segaudit.config.naming`)."""
    names = names or FileNames()
    if not folder.is_dir():
        raise DatasetError(f"{folder}: mask folder not found; pass the folder of PNG masks")
    found: dict[str, Path] = {}
    for path in sorted(folder.rglob(f"*{names.mask_tail}")):
        image_id = names.mask_id(path.relative_to(folder).as_posix())
        if image_id and path.is_file():
            found[utf8_id(image_id, folder, path)] = path
    if not found:
        others = sum(1 for p in folder.rglob(f"*{MASK_SUFFIX}") if p.is_file())
        hint = (
            f" ({others} other {MASK_SUFFIX} file(s) do not match; see --mask-pattern)"
            if others
            else ""
        )
        what = f"{MASK_SUFFIX} masks" if not names.masks else f"masks matching {names.masks!r}"
        raise DatasetError(f"{folder}: no {what} found (searched sub-folders too){hint}")
    return found


def remap_values(labels: NDArray[np.integer], remap: Mapping[int, int]) -> NDArray[np.integer]:
    """Replace raw values by their class ids; values not in ``remap`` pass through."""
    if not remap or labels.size == 0:
        return labels
    targets = list(remap.values())
    dtype = np.result_type(labels.dtype, *(np.min_scalar_type(v) for v in targets))
    if labels.dtype.kind == "u" and labels.dtype.itemsize <= 2:
        low, high = 0, int(np.iinfo(labels.dtype).max)
    else:
        low, high = int(labels.min()), int(labels.max())
    if high - low < _MAX_TABLE:
        table = np.arange(low, high + 1, dtype=np.int64).astype(dtype)
        for source, target in remap.items():
            if low <= source <= high:
                table[source - low] = target
        index = labels if low == 0 else labels.astype(np.int64) - low
        out: NDArray[np.integer] = table[index]
        return out
    out = labels.astype(dtype)
    for source, target in remap.items():
        out[labels == source] = target
    return out


@dataclass(frozen=True)
class MaskDecoder:
    """How raw mask pixels become class ids: a remap for id masks, a palette for colour ones.

    ``palette`` is None when no classes config was given: colour masks are then an error.
    ``ignore_colors`` are colours (e.g. VOC's void band) read as ``ignore_value``.
    """

    remap: Mapping[int, int] = field(default_factory=dict)
    palette: tuple[Color, ...] | None = None
    ignore_colors: tuple[Color, ...] = ()
    ignore_value: int = 255
    source: str = ""  # the config the palette came from, for messages

    @classmethod
    def from_config(
        cls, config: ClassesConfig | None, ignore: frozenset[int] | None = None
    ) -> MaskDecoder:
        """The config's remap and palette; ignore colours read as the smallest ignore value
        (of ``ignore`` when the command line overrides the config's)."""
        if config is None:
            return cls()
        ignore = config.ignore if ignore is None else ignore
        ignore_value = min(ignore) if ignore else 255
        return cls(
            dict(config.remap),
            config.colors,
            config.ignore_colors,
            ignore_value,
            config.name or "classes config",
        )

    def decode(
        self, image_id: str, path: Path, pixels: NDArray[np.generic], mode: str
    ) -> NDArray[np.integer]:
        if mode in COLOR_MODES:
            return self.colors_to_ids(image_id, path, pixels[..., :3])
        if pixels.dtype == np.bool_:  # mode "1"
            pixels = pixels.astype(np.uint8)
        return remap_values(pixels.astype(pixels.dtype.newbyteorder("="), copy=False), self.remap)

    def colors_to_ids(
        self, image_id: str, path: Path, rgb: NDArray[np.generic]
    ) -> NDArray[np.integer]:
        """Class ids of an (H, W, 3) uint8 colour mask, through the palette."""
        if self.palette is None:
            raise DatasetError(
                f"{path}: colour (RGB) mask but no palette; pass --classes with a config whose "
                "classes have the mask's colours, or save masks with one channel of class ids"
            )
        entries = [(c, k) for k, c in enumerate(self.palette)]
        entries += [(c, self.ignore_value) for c in self.ignore_colors]
        twice = [c for c, n in Counter(c for c, _ in entries).items() if n > 1]
        if twice:
            raise DatasetError(
                f"{self.source}: colour {twice[0]} is used twice, so colour masks are "
                "ambiguous; give each class its own colour"
            )
        keys = {_packed(c): k for c, k in entries}
        packed = (
            rgb[..., 0].astype(np.uint32) << 16
            | rgb[..., 1].astype(np.uint32) << 8
            | rgb[..., 2].astype(np.uint32)
        )
        colors, inverse = np.unique(packed, return_inverse=True)
        ids = np.empty(len(colors), dtype=np.int64)
        for i, color in enumerate(colors.tolist()):
            if color not in keys:
                rgb_text = (color >> 16, (color >> 8) & 255, color & 255)
                raise ImageError(
                    image_id,
                    f"{path}: colour {rgb_text} is not in the palette of {self.source}; "
                    "add it as a class or to ignore_colors",
                )
            ids[i] = keys[color]
        dtype = np.min_scalar_type(int(ids.max())) if ids.min() >= 0 else np.int64
        out: NDArray[np.integer] = ids.astype(dtype)[inverse.reshape(packed.shape)]
        return out


def _packed(color: Color) -> int:
    return (color[0] << 16) | (color[1] << 8) | color[2]


def read_mask(image_id: str, path: Path, decoder: MaskDecoder | None = None) -> NDArray[np.integer]:
    """The class ids of one mask as an (H, W) integer array.

    Pillow's decompression-bomb limit stays on: a file claiming a huge size is refused.
    """
    decoder = decoder or MaskDecoder()
    try:
        with Image.open(path) as image:
            mode = image.mode
            if mode not in ID_MODES and mode not in COLOR_MODES:
                raise ImageError(
                    image_id,
                    f"{path}: mask has mode {mode}; segaudit needs one channel whose value "
                    "is the class id (mode L, P or 16-bit) or an RGB colour mask",
                )
            image.load()
            pixels = np.asarray(image)
    except (ImageError, DatasetError):
        raise
    except FileNotFoundError:
        raise ReadError(image_id, str(path), "mask file not found") from None
    except Image.DecompressionBombError as error:
        raise ReadError(
            image_id, str(path), f"refused, possible decompression bomb ({error})"
        ) from None
    except _READ_ERRORS as error:
        raise ReadError(image_id, str(path), f"cannot read mask ({error})") from None
    return decoder.decode(image_id, path, pixels, mode)
