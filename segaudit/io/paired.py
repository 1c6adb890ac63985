"""Masks paired with their probabilities, read a block of images at a time.

Two kinds, one per way probabilities are stored: :class:`StackedDataset` (rows of one
(N, K, H, W) array: zarr or .npy) and :class:`FileDataset` (one .npy/.npz per image). Both
read a mask, apply the per-image transform (layout, logits, resize, downsample) and hand
the engine a :class:`~segaudit.core.dataset.LoadedImage`; a problem of one image is that
image's :class:`ImageError`, which the engine turns into a skipped row. Only expected
failures (unreadable files, codec errors) become such errors; a bug in a reader reaches the
caller as it is.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from segaudit.core.compact import CompactImage, digest_probs
from segaudit.core.dataset import LoadedImage, even_blocks
from segaudit.core.pixel import RowSource
from segaudit.errors import (
    DatasetError,
    ImageError,
    LabelValueError,
    ReadError,
    ShapeMismatchError,
)
from segaudit.io.masks import MaskDecoder, read_mask
from segaudit.io.probfiles import load_probs_file
from segaudit.io.probs import STORAGE_ERRORS, ProbsReader
from segaudit.io.tiles import BandedImage, is_large
from segaudit.io.transforms import ImageTransform, Layout, summarize_values

#: Rows of a large image read for a message's hints (see PairedDataset.sample_raw).
SAMPLE_ROWS = 64
#: Images per block when each image has its own probabilities file.
FILES_PER_BLOCK = 4
Raw = NDArray[np.floating] | CompactImage | ImageError


@dataclass
class PairedDataset:
    """What both kinds share: ids, masks, pictures, and how an image is read."""

    ids: list[str]
    masks: list[Path]
    source: str  # where the probabilities are, for messages
    classes: int
    images: list[Path | None] = field(default_factory=list)
    transform: ImageTransform = field(default_factory=ImageTransform)
    decoder: MaskDecoder = field(default_factory=MaskDecoder)
    ignore: frozenset[int] = frozenset({255})

    @property
    def num_classes(self) -> int:
        return self.classes

    @property
    def image_ids(self) -> Sequence[str]:
        return self.ids

    def blocks(self) -> Sequence[range]:
        raise NotImplementedError

    def raw(self, block: range) -> list[Raw]:
        """Each image's stored probabilities (as on disk), or why they cannot be read."""
        raise NotImplementedError

    def banded(self, index: int) -> BandedImage | None:
        """The image as bands of rows when it is too large to read whole, else None."""
        return None

    def load(self, block: range) -> Iterator[LoadedImage]:
        large = [self.banded(index) for index in block]
        if not any(large):
            yield from self._load_whole(block)
            return
        for index, banded in zip(block, large, strict=True):
            if banded is None:
                yield from self._load_whole(range(index, index + 1))
            else:
                yield LoadedImage(index, self.ids[index], None, None, tiles=banded)

    def _banded(self, index: int, stored: tuple[int, ...], itemsize: int) -> bool:
        """Whether an image of this stored shape is read in bands (never with --resize)."""
        return len(stored) == 3 and self.transform.resize is None and is_large(stored, itemsize)

    def _load_whole(self, block: range) -> Iterator[LoadedImage]:
        for index, raw in zip(block, self.raw(block), strict=True):
            image_id = self.ids[index]
            try:
                if isinstance(raw, ImageError):
                    raise raw
                labels = read_mask(image_id, self.masks[index], self.decoder)
                probs: NDArray[np.floating] | RowSource | CompactImage = raw
                if isinstance(raw, np.ndarray):  # compact images are read as stored
                    labels, probs = self.transform.apply_deferred(
                        image_id, labels, raw, self.ignore
                    )
                if probs.shape[0] != self.classes:
                    raise ImageError(
                        image_id,
                        f"probabilities have {probs.shape[0]} classes, the others {self.classes}",
                    )
            except ImageError as error:
                yield LoadedImage(index, image_id, None, None, error)
                continue
            yield LoadedImage(index, image_id, labels, probs)

    def probe(self) -> None:
        """Read images as the audit will; raise DatasetError if every one tried fails."""
        n = len(self.ids)
        if self.transform.logits:
            self._refuse_probs_as_logits()
        errors: list[ImageError] = []
        for index in sorted({0, n // 2, n - 1}):
            image = next(self.load(range(index, index + 1)))
            error = image.error
            if image.tiles is not None:
                try:
                    band = next(image.tiles.bands())
                    image = LoadedImage(index, image.image_id, band.labels, band.probs)
                except ImageError as failure:
                    error = failure
            if error is None and image.labels is not None and image.probs is not None:
                try:
                    digest_probs(image.image_id, image.labels, image.probs, self.ignore)
                except ImageError as failure:
                    error = failure
            if error is None:
                return
            errors.append(error)
        raise DatasetError(self.explain(errors))

    def sample_raw(self, index: int) -> tuple[tuple[int, ...], Raw]:
        """The image's stored shape and its stored probabilities, for messages: of an image
        too large to read whole, only its first rows (a hint never costs an image's memory)."""
        banded = self.banded(index)
        if banded is None:
            raw = self.raw(range(index, index + 1))[0]
            return (() if isinstance(raw, ImageError) else raw.shape), raw
        try:
            return banded.stored_shape, banded.read_rows(0, min(SAMPLE_ROWS, banded.size[0]))
        except STORAGE_ERRORS as error:
            return banded.stored_shape, ImageError(self.ids[index], str(error))

    def class_first_raw(self, index: int) -> NDArray[np.floating] | None:
        raw = self.sample_raw(index)[1]
        if not isinstance(raw, np.ndarray) or raw.ndim != 3:
            return None
        return np.moveaxis(raw, -1, 0) if self.transform.layout is Layout.NHWC else raw

    def _refuse_probs_as_logits(self) -> None:
        """--logits on data that already are probabilities would flatten them: refuse."""
        raw = self.class_first_raw(0)
        if raw is not None and raw.shape[0] > 1 and summarize_values(raw).looks_like_probs:
            raise DatasetError(
                f"{self.source}: --logits was given but the values of image {self.ids[0]} are "
                "already probabilities (in [0, 1], summing to 1); drop --logits"
            )

    def explain(self, errors: list[ImageError]) -> str:
        """One line: which files, which image, why, and what to do about it."""
        first = errors[0]
        others = [e.image_id for e in errors[1:]]
        also = f" (so do {', '.join(others)})" if others else ""
        index = self.ids.index(first.image_id)
        where = self.source
        if isinstance(first, LabelValueError):
            where = f"{self.masks[index]} (paired with {self.source})"
        message = f"{where}: image {first.image_id} fails{also}: {first.reason}"
        if isinstance(first, LabelValueError):
            return message + f" (e.g. --ignore-index {first.value}, or --classes with a remap)"
        if isinstance(first, ReadError):
            return message
        shape, raw = self.sample_raw(index)
        if isinstance(raw, ImageError):
            return message
        if isinstance(first, ShapeMismatchError):
            hint = _layout_hint(shape, first.mask_shape, self.transform.layout)
            if hint:
                return message + hint
        probs = self.class_first_raw(index)
        if probs is None:
            return message
        values = summarize_values(probs)
        if values.looks_like_logits and not self.transform.logits and "--logits" not in message:
            message += (
                f"; values range {values.low:.3g}..{values.high:.3g} and sum to "
                f"{values.worst_sum:.3g}: if these are logits, pass --logits"
            )
        return message


def _layout_hint(shape: tuple[int, ...], mask: tuple[int, int], layout: Layout) -> str:
    """A --layout suggestion when the other layout would make the sizes agree."""
    guess = Layout.NHWC if shape[:2] == mask else Layout.NCHW if shape[1:] == mask else None
    if guess is None or guess is layout:
        return ""
    where = "last" if guess is Layout.NHWC else "first"
    return f"; the class axis looks {where}: pass --layout {guess.value}"


@dataclass
class StackedDataset(PairedDataset):
    """Images are rows of one stacked array (zarr or .npy)."""

    reader: ProbsReader | None = None
    rows: list[int] = field(default_factory=list)  # the array row of each image

    def _reader(self) -> ProbsReader:
        if self.reader is None:
            raise DatasetError(f"{self.source}: no probabilities array opened")
        return self.reader

    def blocks(self) -> Sequence[range]:
        """Runs of images whose rows are consecutive within one storage block."""
        size = max(1, self._reader().block_size)
        blocks: list[range] = []
        start = 0
        for i in range(1, len(self.rows) + 1):
            if (
                i == len(self.rows)
                or self.rows[i] != self.rows[i - 1] + 1
                or self.rows[i] // size != self.rows[start] // size
            ):
                blocks.append(range(start, i))
                start = i
        return blocks

    def banded(self, index: int) -> BandedImage | None:
        reader = self._reader()
        stored = reader.shape[1:]
        if not self._banded(index, stored, reader.dtype.itemsize):
            return None
        row = self.rows[index]
        axis = 0 if self.transform.layout is Layout.NHWC else 1

        def read_rows(top: int, bottom: int) -> NDArray[np.floating]:
            return reader.read_rows(row, axis, top, bottom)

        return BandedImage(
            self.ids[index],
            self.masks[index],
            self.decoder,
            self.transform,
            self.ignore,
            self.classes,
            (stored[0], stored[1], stored[2]),
            reader.dtype.itemsize,
            read_rows,
            self.source,
            reader.chunk_rows(axis),
        )

    def raw(self, block: range) -> list[Raw]:
        reader = self._reader()
        rows = [self.rows[i] for i in block]
        if rows == list(range(rows[0], rows[0] + len(rows))):
            try:
                stacked = reader.read(rows[0], rows[-1] + 1)
                return [stacked[j] for j in range(len(rows))]
            except STORAGE_ERRORS:
                if len(rows) == 1:
                    return [self._unreadable(block.start, rows[0])]
                # a damaged chunk spoils one read: read image by image, so only the images
                # it holds are skipped
        return [self._one(i, r) for i, r in zip(block, rows, strict=True)]

    def _one(self, index: int, row: int) -> Raw:
        try:
            image: NDArray[np.floating] | CompactImage = self._reader().read(row, row + 1)[0]
            return image
        except STORAGE_ERRORS:
            return self._unreadable(index, row)

    def _unreadable(self, index: int, row: int) -> ImageError:
        import sys

        error = sys.exc_info()[1]
        return ReadError(
            self.ids[index], self.source, f"cannot read probabilities of row {row} ({error})"
        )


@dataclass
class FileDataset(PairedDataset):
    """Each image's probabilities are a file of their own (.npy or .npz)."""

    files: list[Path] = field(default_factory=list)
    probs_key: str = ""  # the array of an .npz ("" : its only one, or a usual name)

    def blocks(self) -> Sequence[range]:
        return even_blocks(len(self.ids), FILES_PER_BLOCK)

    def banded(self, index: int) -> BandedImage | None:
        path = self.files[index]
        if path.suffix != ".npy":
            return None  # an .npz member cannot be read in parts
        try:
            array = load_probs_file(self.ids[index], path)
        except ImageError:
            return None  # the whole-image read reports it
        if not self._banded(index, array.shape, array.dtype.itemsize):
            return None
        axis = 0 if self.transform.layout is Layout.NHWC else 1
        image_id = self.ids[index]

        def read_rows(top: int, bottom: int) -> NDArray[np.floating]:
            index = [slice(None)] * 3
            index[axis] = slice(top, bottom)
            return np.asarray(load_probs_file(image_id, path)[tuple(index)])

        return BandedImage(
            image_id,
            self.masks[index],
            self.decoder,
            self.transform,
            self.ignore,
            self.classes,
            (array.shape[0], array.shape[1], array.shape[2]),
            array.dtype.itemsize,
            read_rows,
            str(path),
        )

    def raw(self, block: range) -> list[Raw]:
        out: list[Raw] = []
        for index in block:
            try:
                out.append(
                    np.asarray(load_probs_file(self.ids[index], self.files[index], self.probs_key))
                )
            except ImageError as error:
                out.append(error)
        return out
