"""Writing masks back in the input's own encoding (the inverse of :mod:`segaudit.io.masks`).

A suggested or corrected mask must be a drop-in replacement of the input mask: the same
PNG mode (L, P with the same palette and transparency, 1, 16-bit), the same raw values
wherever nothing changed, and for the changed pixels the raw value that *reads back* as
the new class. For id masks with a remap that is the one raw value mapping to the class
(the remap inverted); for colour masks it is the class's palette colour. Where the inverse
is not unique (two raw values read as one class) segaudit refuses instead of guessing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from segaudit.errors import DatasetError, OptionError, ReadError
from segaudit.io.masks import COLOR_MODES, ID_MODES, MaskDecoder

#: Largest raw value each id mode can hold.
_MODE_MAX = {"1": 1, "L": 255, "P": 255, "I;16": 65535, "I;16B": 65535, "I;16L": 65535}


@dataclass
class RawMask:
    """A mask file as stored: its pixels (H, W) or (H, W, 3|4), mode, palette, PNG info."""

    pixels: NDArray[Any]
    mode: str
    palette: list[int] | None = None
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, int]:
        return int(self.pixels.shape[0]), int(self.pixels.shape[1])


def read_raw(image_id: str, path: Path) -> RawMask:
    """The mask's raw pixels and everything needed to write it again the same way."""
    try:
        with Image.open(path) as image:
            image.load()
            mode = image.mode
            palette = image.getpalette() if mode == "P" else None
            info = {k: v for k, v in image.info.items() if k == "transparency"}
            pixels = np.array(image)
    except (OSError, SyntaxError, ValueError) as error:
        raise ReadError(image_id, str(path), f"cannot read mask ({error})") from None
    if mode not in ID_MODES and mode not in COLOR_MODES:
        raise ReadError(image_id, str(path), f"mask has mode {mode}, which segaudit cannot write")
    return RawMask(pixels, mode, palette, info)


def to_image(mask: RawMask) -> Image.Image:
    """A Pillow image of the raw mask in its own mode (palette and transparency kept)."""
    pixels = mask.pixels
    if mask.mode in ("I;16", "I;16B", "I;16L"):
        image = Image.fromarray(np.ascontiguousarray(pixels, dtype="<u2"))
    elif mask.mode == "I":
        image = Image.fromarray(np.ascontiguousarray(pixels, dtype=np.int32))
    elif mask.mode == "1":
        image = Image.fromarray(pixels.astype(bool))
    elif mask.mode == "P":
        image = Image.new("P", (pixels.shape[1], pixels.shape[0]))
        image.frombytes(np.ascontiguousarray(pixels, dtype=np.uint8).tobytes())
    else:
        image = Image.fromarray(np.ascontiguousarray(pixels, dtype=np.uint8))
    if mask.palette is not None:
        image.putpalette(mask.palette)
    return image


def write_raw(mask: RawMask, target: Path) -> None:
    """Write the mask as a PNG in its own mode (the caller makes the write atomic)."""
    image = to_image(mask)
    image.save(target, format="PNG", **mask.info)


def png_bytes(mask: RawMask) -> bytes:
    """The mask as PNG bytes (for shipping or writing elsewhere)."""
    import io

    buffer = io.BytesIO()
    to_image(mask).save(buffer, format="PNG", **mask.info)
    return buffer.getvalue()


def invert_remap(remap: Mapping[int, int], num_classes: int) -> list[int | None]:
    """Per class, the one raw value that reads as it, or None when none or several do."""
    sources: list[list[int]] = [[] for _ in range(num_classes)]
    for raw, target in remap.items():
        if 0 <= target < num_classes:
            sources[target].append(raw)
    for k in range(num_classes):
        if k not in remap:  # values not in the remap pass through
            sources[k].append(k)
    return [s[0] if len(s) == 1 else None for s in sources]


@dataclass(frozen=True)
class ClassEncoder:
    """Class ids to raw mask values, for every mode the reader accepts."""

    decoder: MaskDecoder
    num_classes: int
    raw_values: tuple[int | None, ...]

    @classmethod
    def for_decoder(cls, decoder: MaskDecoder, num_classes: int) -> ClassEncoder:
        return cls(decoder, num_classes, tuple(invert_remap(decoder.remap, num_classes)))

    def check(self, names: tuple[str, ...]) -> None:
        """Refuse up front when some class has no single raw value (id masks with a remap
        that sends two raw values to one class): writing it would be a guess."""
        bad = [names[k] for k, v in enumerate(self.raw_values) if v is None]
        if bad:
            raise OptionError(
                f"the classes config's remap reads several raw values as class(es) "
                f"{', '.join(bad[:5])}: a corrected mask cannot say which one to write; "
                "remap the masks to class ids first (one raw value per class)"
            )

    def encode(self, image_id: str, mask: RawMask, classes: NDArray[np.integer]) -> NDArray[Any]:
        """Raw values (same dtype, or (n, channels) colours) for class ids ``classes``."""
        if mask.mode in COLOR_MODES:
            palette = self.decoder.palette
            if palette is None:
                raise DatasetError(f"{image_id}: colour mask without a palette")
            colors = np.asarray(palette, dtype=np.uint8)[classes]
            channels = mask.pixels.shape[2]
            if channels > 3:
                alpha = np.full((len(colors), channels - 3), 255, dtype=np.uint8)
                colors = np.concatenate([colors, alpha], axis=1)
            encoded: NDArray[Any] = colors
            return encoded
        table = np.array([-1 if v is None else v for v in self.raw_values], dtype=np.int64)
        values = table[classes]
        high = _MODE_MAX.get(mask.mode, int(np.iinfo(np.int32).max))
        if values.size and (int(values.min()) < 0 or int(values.max()) > high):
            raise DatasetError(
                f"{image_id}: the class's raw value does not fit the mask's mode {mask.mode}"
            )
        raw: NDArray[Any] = values.astype(mask.pixels.dtype)
        return raw

    def suggest(
        self,
        image_id: str,
        mask: RawMask,
        where: NDArray[np.bool_],
        classes: NDArray[np.integer],
    ) -> RawMask:
        """A copy of ``mask`` whose ``where`` pixels read as ``classes`` (one per pixel)."""
        pixels = mask.pixels.copy()
        pixels[where] = self.encode(image_id, mask, classes)
        return RawMask(pixels, mask.mode, mask.palette, dict(mask.info))
