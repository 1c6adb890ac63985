"""Pair masks with probabilities (by image id, or by a manifest) and read them a block at a time.

Opening a dataset checks everything that concerns the dataset as a whole (ids, shapes, the
number of classes) and then reads the first image the way the audit will: if it fails, a
couple more are tried, and when every one fails the problem is the dataset's, reported at
once as one :class:`DatasetError`. Problems of single images surface later as skipped rows.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from segaudit.core.dataset import LoadedImage, even_blocks
from segaudit.core.pixel import digest_image
from segaudit.errors import DatasetError, ImageError
from segaudit.io.manifest import read_manifest
from segaudit.io.masks import MaskDecoder, mask_ids, read_mask
from segaudit.io.probfiles import FileProbs, is_probs_folder, load_probs_file
from segaudit.io.probs import ProbsReader, is_url, open_probs
from segaudit.io.transforms import ImageTransform, Layout, class_axis, summarize_values

#: How many ids an error message lists before it says "and N more".
LISTED_IDS = 10
#: Images per block when each image has its own probabilities file.
FILES_PER_BLOCK = 4


def _listed(ids: Sequence[str]) -> str:
    shown = ", ".join(ids[:LISTED_IDS])
    more = len(ids) - LISTED_IDS
    return shown + (f" and {more} more" if more > 0 else "")


def read_ids_file(path: Path) -> list[str]:
    """One image id per line; blank lines and '#' comments are skipped."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as error:
        raise DatasetError(f"{path}: cannot read ids file ({error.strerror})") from None
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def _check_unique(ids: Sequence[str], source: str) -> None:
    counts = Counter(ids)
    duplicates = sorted(i for i, count in counts.items() if count > 1)
    if duplicates:
        raise DatasetError(f"{source}: duplicate image ids: {_listed(duplicates)}")


@dataclass(frozen=True)
class DatasetSpec:
    """Where the data is and how to read it (what ``segaudit score`` was given)."""

    labels: Path | None = None
    probs: Path | str | None = None
    ids: Path | None = None
    manifest: Path | None = None
    transform: ImageTransform = field(default_factory=ImageTransform)
    decoder: MaskDecoder = field(default_factory=MaskDecoder)
    ignore: frozenset[int] = frozenset({255})
    num_classes: int | None = None  # from the classes config, checked against the probabilities
    classes_source: str = ""
    probe: bool = True


@dataclass
class FolderDataset:
    """Masks paired with probabilities: rows of one stacked array, or one file per image."""

    ids: list[str]
    masks: list[Path]
    probs: ProbsReader | FileProbs
    rows: list[int] | None = None  # stacked: the array row of each image
    files: list[Path] | None = None  # per-image files: the file of each image
    images: list[Path | None] = field(default_factory=list)
    transform: ImageTransform = field(default_factory=ImageTransform)
    decoder: MaskDecoder = field(default_factory=MaskDecoder)
    ignore: frozenset[int] = frozenset({255})
    classes: int = 0

    @classmethod
    def open(
        cls, mask_dir: Path, probs_path: Path | str, ids_file: Path | None = None
    ) -> FolderDataset:
        """Masks named by id paired with probabilities, default reading options."""
        return open_dataset(DatasetSpec(labels=mask_dir, probs=probs_path, ids=ids_file))

    @property
    def num_classes(self) -> int:
        return self.classes

    @property
    def image_ids(self) -> Sequence[str]:
        return self.ids

    @property
    def source(self) -> str:
        return self.probs.path

    def blocks(self) -> Sequence[range]:
        """Runs of images whose rows are consecutive within one storage chunk."""
        if self.rows is None:
            return even_blocks(len(self.ids), FILES_PER_BLOCK)
        size = max(1, getattr(self.probs, "block_size", 1))
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

    def _raw(self, block: range) -> list[NDArray[np.floating] | ImageError]:
        """Each image's stored probabilities (as on disk), or why they cannot be read."""
        if self.files is not None:
            out: list[NDArray[np.floating] | ImageError] = []
            for index in block:
                try:
                    out.append(np.asarray(load_probs_file(self.ids[index], self.files[index])))
                except ImageError as error:
                    out.append(error)
            return out
        assert self.rows is not None and not isinstance(self.probs, FileProbs)
        rows = [self.rows[i] for i in block]
        try:
            if rows == list(range(rows[0], rows[0] + len(rows))):
                stacked = self.probs.read(rows[0], rows[-1] + 1)
                return [stacked[j] for j in range(len(rows))]
            return [self.probs.read(r, r + 1)[0] for r in rows]
        except Exception as error:  # a corrupt chunk spoils the images stored in it
            return [
                ImageError(self.ids[i], f"{self.probs.path}: cannot read probabilities ({error})")
                for i in block
            ]

    def load(self, block: range) -> Iterator[LoadedImage]:
        for index, raw in zip(block, self._raw(block), strict=True):
            image_id = self.ids[index]
            try:
                if isinstance(raw, ImageError):
                    raise raw
                labels = read_mask(image_id, self.masks[index], self.decoder)
                labels, probs = self.transform.apply_deferred(image_id, labels, raw, self.ignore)
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
            if error is None and image.labels is not None and image.probs is not None:
                try:
                    digest_image(image.image_id, image.labels, image.probs, self.ignore)
                except ImageError as failure:
                    error = failure
            if error is None:
                return
            errors.append(error)
        raise DatasetError(self._explain(errors))

    def _class_first_raw(self, index: int) -> NDArray[np.floating] | None:
        raw = self._raw(range(index, index + 1))[0]
        if isinstance(raw, ImageError) or raw.ndim != 3:
            return None
        return np.moveaxis(raw, -1, 0) if self.transform.layout is Layout.NHWC else raw

    def _refuse_probs_as_logits(self) -> None:
        """--logits on data that already are probabilities would flatten them: refuse."""
        raw = self._class_first_raw(0)
        if raw is not None and raw.shape[0] > 1 and summarize_values(raw).looks_like_probs:
            raise DatasetError(
                f"{self.source}: --logits was given but the values of image {self.ids[0]} are "
                "already probabilities (in [0, 1], summing to 1); drop --logits"
            )

    def _explain(self, errors: list[ImageError]) -> str:
        """One line: which files, which image, why, and what to do about it."""
        first = errors[0]
        others = [e.image_id for e in errors[1:]]
        also = f" (so do {', '.join(others)})" if others else ""
        index = self.ids.index(first.image_id)
        where = self.source
        if first.reason.startswith("label value"):
            where = f"{self.masks[index]} (paired with {self.source})"
        message = f"{where}: image {first.image_id} fails{also}: {first.reason}"
        if first.reason.startswith("label value"):
            value = first.reason.split()[2]
            return message + f" (e.g. --ignore-index {value}, or --classes with a remap)"
        raw = self._raw(range(index, index + 1))[0]
        if isinstance(raw, ImageError):
            return message
        if "(H x W)" in message:
            hint = _layout_hint(raw.shape, self.masks[index], self.transform.layout)
            if hint:
                return message + hint
        probs = self._class_first_raw(index)
        if probs is None:
            return message
        values = summarize_values(probs)
        if values.looks_like_logits and not self.transform.logits and "--logits" not in message:
            message += (
                f"; values range {values.low:.3g}..{values.high:.3g} and sum to "
                f"{values.worst_sum:.3g}: if these are logits, pass --logits"
            )
        return message


def _layout_hint(shape: tuple[int, ...], mask: Path, layout: Layout) -> str:
    """A --layout suggestion when the other layout would make the sizes agree."""
    from PIL import Image

    try:
        with Image.open(mask) as image:
            width, height = image.size
    except Exception:
        return ""
    other = Layout.NCHW if layout is Layout.NHWC else Layout.NHWC
    spatial = tuple(shape[:2] if other is Layout.NHWC else shape[1:])
    if spatial != (height, width):
        return ""
    where = "last" if other is Layout.NHWC else "first"
    return f"; the class axis looks {where}: pass --layout {other.value}"


def _stacked_classes(reader: ProbsReader, layout: Layout) -> int:
    return int(reader.shape[class_axis(layout, 4)])


def _file_classes(files: list[Path], ids: list[str], layout: Layout, source: str) -> int:
    """K from the first per-image file that has three dimensions."""
    shapes = []
    for index in sorted({0, len(ids) // 2, len(ids) - 1}):
        try:
            shape = load_probs_file(ids[index], files[index]).shape
        except ImageError:
            continue
        if len(shape) == 3:
            return int(shape[class_axis(layout, 3)])
        shapes.append(f"{files[index].name} {shape}")
    raise DatasetError(
        f"{source}: no readable per-image file with 3 dimensions among those tried "
        f"({'; '.join(shapes) or 'none readable'}); expected (K, H, W) or, with --layout nhwc, "
        "(H, W, K)"
    )


def _pair_folder(spec: DatasetSpec) -> FolderDataset:
    if spec.labels is None or spec.probs is None:
        raise DatasetError("give --labels and --probs, or a --manifest")
    masks = mask_ids(spec.labels)
    if not is_url(spec.probs) and is_probs_folder(Path(spec.probs)):
        probs = FileProbs.open(Path(spec.probs))
        if spec.ids is not None:
            ids = read_ids_file(spec.ids)
            _check_unique(ids, str(spec.ids))
            _check_pairing(ids, masks.keys(), str(spec.labels), "mask")
            _check_pairing(ids, probs.files.keys(), probs.path, "probabilities file")
        else:
            ids = sorted(masks)
            unpaired = sorted(set(probs.files) - set(masks))
            if unpaired:
                raise DatasetError(
                    f"{probs.path}: {len(unpaired)} probabilities file(s) have no mask in "
                    f"{spec.labels}: {_listed(unpaired)}"
                )
            unpaired = [i for i in ids if i not in probs.files]
            if unpaired:
                raise DatasetError(
                    f"{spec.labels}: {len(unpaired)} mask(s) have no probabilities file in "
                    f"{probs.path}: {_listed(unpaired)}"
                )
        files = [probs.files[i] for i in ids]
        return FolderDataset(ids, [masks[i] for i in ids], probs, files=files)
    reader = open_probs(spec.probs)
    n = reader.shape[0]
    if spec.ids is not None:
        ids, source = read_ids_file(spec.ids), str(spec.ids)
    elif reader.image_ids is not None:
        ids, source = reader.image_ids, f"{reader.path} (image_ids attribute)"
    else:
        ids, source = sorted(masks), f"sorted mask names in {spec.labels}"
    if len(ids) != n:
        raise DatasetError(
            f"{reader.path}: holds {n} images but {source} lists {len(ids)} ids; "
            "give the probabilities' image order with --ids FILE (or use --manifest)"
        )
    _check_unique(ids, source)
    _check_pairing(ids, masks.keys(), str(spec.labels), "mask")
    return FolderDataset(list(ids), [masks[i] for i in ids], reader, rows=list(range(n)))


def _check_pairing(ids: Sequence[str], found: Iterable[str], where: str, what: str) -> None:
    have = set(found)
    missing = [i for i in ids if i not in have]
    if missing:
        raise DatasetError(f"{where}: no {what} for {len(missing)} image(s): {_listed(missing)}")
    extra = sorted(have - set(ids))
    if extra:
        raise DatasetError(
            f"{where}: {len(extra)} {what}(s) have no partner: {_listed(extra)}; "
            "remove them or list the ids to use with --ids / --manifest"
        )


def _pair_manifest(spec: DatasetSpec, manifest: Path) -> FolderDataset:
    rows = read_manifest(manifest)
    ids = [row.image_id for row in rows]
    absent = [row.image_id for row in rows if not row.mask.is_file()]
    if absent:
        raise DatasetError(
            f"{manifest}: mask file missing for {len(absent)} id(s): {_listed(absent)}"
        )
    masks = [row.mask for row in rows]
    images = [row.image for row in rows]
    if rows[0].probs_path is not None:
        files = [row.probs_path for row in rows if row.probs_path is not None]
        absent = [row.image_id for row in rows if row.probs_path and not row.probs_path.is_file()]
        if absent:
            raise DatasetError(
                f"{manifest}: probabilities file missing for {len(absent)} id(s): {_listed(absent)}"
            )
        probs = FileProbs(str(manifest), dict(zip(ids, files, strict=True)))
        return FolderDataset(ids, masks, probs, files=files, images=images)
    if spec.probs is None:
        raise DatasetError(
            f"{manifest}: the probs column holds array rows; pass the array with --probs"
        )
    reader = open_probs(spec.probs)
    indices = [row.probs_index for row in rows if row.probs_index is not None]
    outside = [i for i, r in zip(ids, indices, strict=True) if r >= reader.shape[0]]
    if outside:
        raise DatasetError(
            f"{manifest}: probs row out of range (the array holds {reader.shape[0]} images) "
            f"for: {_listed(outside)}"
        )
    return FolderDataset(ids, masks, reader, rows=indices, images=images)


def open_dataset(spec: DatasetSpec) -> FolderDataset:
    """Pair, check the number of classes, and probe the first image (see the module doc)."""
    if spec.manifest is not None:
        if spec.labels is not None:
            raise DatasetError(
                f"{spec.manifest}: the manifest names the masks; drop --labels {spec.labels}"
            )
        dataset = _pair_manifest(spec, spec.manifest)
    else:
        dataset = _pair_folder(spec)
    layout = spec.transform.layout
    if dataset.files is not None:
        classes = _file_classes(dataset.files, dataset.ids, layout, dataset.source)
    else:
        assert not isinstance(dataset.probs, FileProbs)
        classes = _stacked_classes(dataset.probs, layout)
    if spec.num_classes is not None and spec.num_classes != classes:
        axis = "last" if layout is Layout.NHWC else "first"
        raise DatasetError(
            f"{spec.classes_source or 'classes config'}: lists {spec.num_classes} classes but "
            f"the probabilities in {dataset.source} have {classes} (class axis {axis}; "
            "see --layout); use the config the model was trained with"
        )
    dataset.transform, dataset.decoder = spec.transform, spec.decoder
    dataset.ignore, dataset.classes = spec.ignore, classes
    if spec.probe:
        dataset.probe()
    return dataset
