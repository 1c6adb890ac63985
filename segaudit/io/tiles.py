"""Reading an image too large for the working-set budget as bands of rows.

An image whose stored probabilities exceed :data:`TILE_IMAGE_BYTES` is not read whole: the
dataset hands the engine a :class:`BandedImage`, which reads the mask once (H×W, small next
to K×H×W probabilities) and the probabilities a band of rows at a time, about
:data:`TILE_BAND_BYTES` per band (rounded to whole storage chunks of rows where they fit,
and to whole ``--downsample`` blocks). Peak memory is then a band's working set, not an
image's. Images needing ``--resize`` are read whole (resizing is not band-local); a zarr
store whose chunks hold whole images decompresses a whole image per band read: chunk large
images by rows, e.g. (1, K, 512, W).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from segaudit.core.dataset import Band
from segaudit.errors import ImageError, ReadError, ShapeMismatchError
from segaudit.io.masks import MaskDecoder, read_mask
from segaudit.io.transforms import ImageTransform, Layout

#: Images whose stored probabilities are larger than this are read in bands.
TILE_IMAGE_BYTES = 64 * 2**20
#: About how many bytes of stored probabilities one band holds.
TILE_BAND_BYTES = 32 * 2**20

#: Reads rows [top, bottom) of one image's stored probabilities, in the stored layout.
RowReader = Callable[[int, int], NDArray[np.floating]]


def is_large(stored_shape: tuple[int, ...], itemsize: int) -> bool:
    """Whether an image of this stored (K, H, W) or (H, W, K) shape is read in bands."""
    return int(np.prod(stored_shape, dtype=np.int64)) * itemsize > TILE_IMAGE_BYTES


def band_rows(row_bytes: int, chunk_rows: int = 1, factor: int = 1) -> int:
    """Rows per band: about TILE_BAND_BYTES, whole chunks of rows when one fits, whole
    downsampling blocks always."""
    rows = max(1, TILE_BAND_BYTES // max(1, row_bytes))
    if 1 < chunk_rows <= rows:
        rows -= rows % chunk_rows
    if factor > 1:
        rows = max(factor, rows - rows % factor)
    return rows


@dataclass(frozen=True)
class BandedImage:
    """One large image: its mask, and its probabilities read a band of rows at a time."""

    image_id: str
    mask: Path
    decoder: MaskDecoder
    transform: ImageTransform
    ignore: frozenset[int]
    num_classes: int
    stored_shape: tuple[int, int, int]  # as stored: (K, H, W) or (H, W, K)
    itemsize: int
    read_rows: RowReader
    source: str  # where the probabilities are, for messages
    chunk_rows: int = 1

    @property
    def size(self) -> tuple[int, int]:
        """(H, W) as stored, before downsampling."""
        if self.transform.layout is Layout.NHWC:
            return self.stored_shape[0], self.stored_shape[1]
        return self.stored_shape[1], self.stored_shape[2]

    @property
    def shape(self) -> tuple[int, int]:
        """(H, W) after downsampling."""
        h, w = self.size
        f = self.transform.downsample
        return -(-h // f), -(-w // f)

    def bands(self) -> Iterator[Band]:
        height, width = self.size
        labels = read_mask(self.image_id, self.mask, self.decoder)
        if labels.shape != (height, width):
            raise ShapeMismatchError(
                self.image_id,
                (labels.shape[0], labels.shape[1]),
                (height, width),
                "; --resize is not available for images this large: resize them beforehand",
            )
        k = self.num_classes
        rows = band_rows(k * width * self.itemsize, self.chunk_rows, self.transform.downsample)
        for top in range(0, height, rows):
            bottom = min(height, top + rows)
            raw = self._read(top, bottom)
            band_labels, probs = self.transform.apply(
                self.image_id, labels[top:bottom], raw, self.ignore
            )
            if probs.shape[0] != k:
                raise ImageError(
                    self.image_id,
                    f"probabilities have {probs.shape[0]} classes, the others {k}",
                )
            yield Band(top // self.transform.downsample, band_labels, probs)

    def _read(self, top: int, bottom: int) -> NDArray[np.floating]:
        from segaudit.io.probs import STORAGE_ERRORS

        try:
            return np.ascontiguousarray(self.read_rows(top, bottom))
        except STORAGE_ERRORS as error:
            raise ReadError(
                self.image_id,
                self.source,
                f"cannot read probabilities rows {top}..{bottom - 1} ({error})",
            ) from None
