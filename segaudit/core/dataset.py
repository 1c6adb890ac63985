"""The streaming contract between readers and the engine.

A dataset hands out images a block at a time (a block is a run of consecutive images that
the storage keeps together, such as one zarr chunk), never the whole dataset.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np
from numpy.typing import NDArray

from segaudit.errors import ImageError

if TYPE_CHECKING:
    from segaudit.core.compact import CompactImage


@dataclass(frozen=True, slots=True)
class Band:
    """Rows ``top`` .. ``top + labels.shape[0]`` of one image: labels (h, W), probs (K, h, W)."""

    top: int
    labels: NDArray[np.integer]
    probs: NDArray[np.floating]


class TileSource(Protocol):
    """An image too large to hold at once, read as bands of rows (see segaudit.core.tiles).

    ``bands()`` reads the image again on every call and may raise ImageError part way."""

    @property
    def shape(self) -> tuple[int, int]:
        """(H, W) as the engine sees it (after any downsampling)."""
        ...

    def bands(self) -> Iterator[Band]: ...


@dataclass(frozen=True, slots=True)
class LoadedImage:
    """One image's labels (H, W) and probabilities (K, H, W) (dense, or a compact image that
    digests itself), or why it could not be read.

    An image larger than the working-set budget comes as ``tiles`` instead (labels and
    probs None): the engine reads it band by band (segaudit.core.tiles)."""

    index: int
    image_id: str
    labels: NDArray[np.integer] | None
    probs: NDArray[np.floating] | CompactImage | None
    error: ImageError | None = None
    tiles: TileSource | None = None


class Dataset(Protocol):
    """Paired masks and probabilities, read a block at a time."""

    @property
    def num_classes(self) -> int: ...

    @property
    def image_ids(self) -> Sequence[str]: ...

    def blocks(self) -> Sequence[range]:
        """Consecutive index ranges covering every image once, aligned with storage chunks."""
        ...

    def load(self, block: range) -> Iterator[LoadedImage]:
        """The images of one block, in index order."""
        ...


def even_blocks(num_images: int, size: int) -> list[range]:
    """Ranges of ``size`` consecutive images (the last may be shorter)."""
    size = max(1, size)
    return [range(start, min(start + size, num_images)) for start in range(0, num_images, size)]
