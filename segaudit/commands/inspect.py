"""``segaudit inspect``: a fast look at a dataset before scoring it, without the audit passes.

Reads mask headers (sizes, modes), a sample of masks (class histogram), the probabilities'
metadata and a few images' values (probabilities or logits?), and lists pairing problems.
Nothing here raises for bad data: problems are collected and reported.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from segaudit.config.classes import ClassesConfig
from segaudit.errors import DatasetError, ImageError
from segaudit.io.inputs import read_ids_file
from segaudit.io.manifest import read_manifest
from segaudit.io.masks import MaskDecoder, mask_ids, read_mask
from segaudit.io.probfiles import FileProbs, is_probs_folder
from segaudit.io.probs import STORAGE_ERRORS, ProbsReader, is_url
from segaudit.io.sources import open_probs
from segaudit.io.transforms import (
    Layout,
    ValueSummary,
    class_axis,
    guess_layout,
    summarize_values,
)

#: Masks whose header (size, mode) is read; more are sampled evenly.
HEADER_SAMPLE = 2000
#: Masks read in full for the class histogram.
HISTOGRAM_SAMPLE = 32
#: Images whose probability values are looked at.
VALUE_SAMPLE = 3


@dataclass(frozen=True)
class ProbsInfo:
    """What the probabilities are, and how their values look on a few images."""

    path: str
    kind: str  # "stacked array" or "per-image files"
    images: int
    dtype: str
    shape: tuple[int, ...]  # stacked: (N, ...); per-image: the first image's
    layout: Layout  # as given
    layout_guess: Layout | None
    num_classes: int
    values: dict[str, ValueSummary] = field(default_factory=dict)

    @property
    def looks_like(self) -> str:
        """'probabilities', 'logits', 'not finite' or 'unknown' over the sampled images."""
        if not self.values:
            return "unknown"
        if not all(v.finite for v in self.values.values()):
            return "not finite"
        if all(v.looks_like_probs for v in self.values.values()):
            return "probabilities"
        return "logits"


@dataclass(frozen=True)
class InspectReport:
    """Counts, sizes, dtypes, layout, a class histogram and pairing problems."""

    masks: int
    mask_sizes: dict[tuple[int, int], int]  # (H, W) -> masks, over ``headers_read`` masks
    mask_modes: dict[str, int]
    headers_read: int
    class_histogram: dict[int, int]  # class id (after remap) -> pixels
    histogram_masks: int  # masks the histogram was computed from
    unreadable: dict[str, str]  # id -> reason, among the masks read
    probs: ProbsInfo | None
    missing_masks: list[str]  # ids with probabilities but no mask
    extra_masks: list[str]  # masks without probabilities
    duplicate_ids: list[str]
    problems: list[str]  # whole-dataset problems (e.g. probabilities that cannot be opened)

    @property
    def sampled(self) -> bool:
        """True when the histogram came from a sample of the masks, not all of them."""
        return self.histogram_masks < self.masks

    @property
    def ok(self) -> bool:
        return not (
            self.problems
            or self.missing_masks
            or self.extra_masks
            or self.duplicate_ids
            or self.unreadable
        )


def _evenly(items: list[Any], count: int) -> list[Any]:
    if len(items) <= count:
        return list(items)
    picks = np.linspace(0, len(items) - 1, count).round().astype(int)
    return [items[i] for i in sorted(set(picks.tolist()))]


def _image_values(image: np.ndarray[Any, Any], layout: Layout) -> ValueSummary | None:
    if image.ndim != 3:
        return None
    return summarize_values(np.moveaxis(image, -1, 0) if layout is Layout.NHWC else image)


def _stacked_info(
    reader: ProbsReader, layout: Layout, size: tuple[int, int] | None, problems: list[str]
) -> ProbsInfo:
    """Metadata and a few images' values; an image that cannot be read becomes a problem."""
    n = reader.shape[0]
    values: dict[str, ValueSummary] = {}
    for index in _evenly(list(range(n)), VALUE_SAMPLE):
        label = reader.image_ids[index] if reader.image_ids else f"#{index}"
        try:
            image = reader.read(index, index + 1)[0]
            if not isinstance(image, np.ndarray):  # a compact image: its dense values
                image = image.expand()
        except STORAGE_ERRORS as error:  # a corrupt chunk: a problem to list
            problems.append(f"{reader.path}: cannot read image {label} ({error})")
            continue
        summary = _image_values(image, layout)
        if summary is not None:
            values[label] = summary
    return ProbsInfo(
        reader.path,
        "stacked array",
        n,
        str(reader.dtype),
        tuple(reader.shape),
        layout,
        guess_layout(tuple(reader.shape[1:]), size),
        int(reader.shape[class_axis(layout, 4)]),
        values,
    )


def _files_info(probs: FileProbs, layout: Layout, size: tuple[int, int] | None) -> ProbsInfo:
    ids = sorted(probs.files)
    values: dict[str, ValueSummary] = {}
    first: np.ndarray[Any, Any] | None = None
    for image_id in _evenly(ids, VALUE_SAMPLE):
        try:
            array = probs.read(image_id)
        except ImageError:
            continue
        first = array if first is None else first
        summary = _image_values(array, layout)
        if summary is not None:
            values[image_id] = summary
    shape = tuple(first.shape) if first is not None else ()
    k = int(shape[class_axis(layout, 3)]) if len(shape) == 3 else 0
    dtype = str(first.dtype) if first is not None else "?"
    guess = guess_layout(shape, size)
    return ProbsInfo(
        probs.path, "per-image files", len(ids), dtype, shape, layout, guess, k, values
    )


def _open_probs(
    probs: Path | str, layout: Layout, size: tuple[int, int] | None, problems: list[str]
) -> tuple[ProbsInfo, list[str] | None]:
    """Info about the probabilities and the ids they hold (None: by position only)."""
    if not is_url(probs) and is_probs_folder(Path(probs)):
        files = FileProbs.open(Path(probs))
        return _files_info(files, layout, size), sorted(files.files)
    reader = open_probs(probs)
    return _stacked_info(reader, layout, size, problems), reader.image_ids


def inspect_dataset(
    labels: Path | None,
    probs: Path | str | None,
    *,
    ids: Path | None = None,
    manifest: Path | None = None,
    layout: Layout = Layout.NCHW,
    classes: ClassesConfig | None = None,
    histogram_sample: int = HISTOGRAM_SAMPLE,
) -> InspectReport:
    """Look at masks and probabilities without auditing; collect problems instead of raising."""
    problems: list[str] = []
    masks: dict[str, Path] = {}
    prob_ids: list[str] | None = None
    manifest_files: FileProbs | None = None
    try:
        if manifest is not None:
            rows = read_manifest(manifest)
            masks = {row.image_id: row.mask for row in rows}
            prob_ids = [row.image_id for row in rows]
            files = {row.image_id: row.probs_path for row in rows if row.probs_path is not None}
            manifest_files = FileProbs(str(manifest), files) if files else None
        elif labels is not None:
            masks = mask_ids(labels)
    except DatasetError as error:
        problems.append(str(error))
    decoder = MaskDecoder.from_config(classes)
    names = sorted(masks)
    sizes: Counter[tuple[int, int]] = Counter()
    modes: Counter[str] = Counter()
    unreadable: dict[str, str] = {}
    headers = _evenly(names, HEADER_SAMPLE)
    for image_id in headers:
        try:
            with Image.open(masks[image_id]) as image:
                sizes[(image.height, image.width)] += 1
                modes[image.mode] += 1
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
            unreadable[image_id] = f"{masks[image_id]}: {error}"
    histogram: Counter[int] = Counter()
    sampled = [i for i in _evenly(names, histogram_sample) if i not in unreadable]
    for image_id in sampled:
        try:
            values, counts = np.unique(
                read_mask(image_id, masks[image_id], decoder), return_counts=True
            )
        except (ImageError, DatasetError) as error:
            unreadable[image_id] = str(error)
            continue
        histogram.update(dict(zip(values.tolist(), counts.tolist(), strict=True)))
    size = sizes.most_common(1)[0][0] if sizes else None
    info: ProbsInfo | None = None
    if manifest_files is not None:
        info = _files_info(manifest_files, layout, size)
    elif probs is not None:
        try:
            info, held = _open_probs(probs, layout, size, problems)
            if prob_ids is None:
                prob_ids = read_ids_file(ids) if ids is not None else held
            if prob_ids is None and info.images != len(names):
                problems.append(
                    f"{info.path}: holds {info.images} images but there are {len(names)} "
                    "masks; give the order with --ids or use --manifest"
                )
        except DatasetError as error:
            problems.append(str(error))
    pairing = prob_ids if prob_ids is not None else names
    counts = Counter(pairing)
    mask_set = set(masks)
    return InspectReport(
        masks=len(masks),
        mask_sizes=dict(sizes.most_common()),
        mask_modes=dict(modes.most_common()),
        headers_read=len(headers),
        class_histogram=dict(sorted(histogram.items())),
        histogram_masks=len(sampled),
        unreadable=unreadable,
        probs=info,
        missing_masks=[i for i in counts if i not in mask_set],
        extra_masks=sorted(mask_set - set(counts)) if probs is not None or manifest else [],
        duplicate_ids=sorted(i for i, c in counts.items() if c > 1),
        problems=problems,
    )
