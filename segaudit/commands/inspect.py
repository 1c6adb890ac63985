"""``segaudit inspect``: ``score`` without the audit, a look at a dataset before scoring it.

The inputs are opened exactly as ``score`` opens them (:func:`segaudit.io.inputs.open_inputs`:
same options, pairing, probe and pairing check), so whatever ``score`` would refuse,
``inspect`` refuses with the same message. Then it reads mask headers (sizes, modes), a
sample of masks (class histogram), the probabilities' metadata and a few images' values.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from segaudit.errors import ImageError
from segaudit.io.inputs import Inputs, InputSpec, open_inputs
from segaudit.io.masks import read_mask
from segaudit.io.paired import PairedDataset, StackedDataset
from segaudit.io.pairing_check import PairingStats, sample_indices
from segaudit.io.transforms import Layout, ValueSummary, class_axis, guess_layout, summarize_values

#: Masks whose header (size, mode) is read; more are sampled evenly.
HEADER_SAMPLE = 2000
#: Masks read in full for the class histogram.
HISTOGRAM_SAMPLE = 32
#: Images whose probability values are looked at.
VALUE_SAMPLE = 3
#: Progress stage name (the CLI labels it).
STAGE = "inspect"


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
    """Counts, sizes, dtypes, layout, a class histogram and the pairing check's numbers."""

    inputs: Inputs
    masks: int
    mask_sizes: dict[tuple[int, int], int]  # (H, W) -> masks, over ``headers_read`` masks
    mask_modes: dict[str, int]
    headers_read: int
    class_histogram: dict[int, int]  # class id (after remap) -> pixels
    histogram_masks: int  # masks the histogram was computed from
    unreadable: dict[str, str]  # id -> reason, among the masks read (score skips them)
    probs: ProbsInfo
    pictures: int  # images with an RGB picture (--images)
    pairing: PairingStats | None  # None with --no-pairing-check

    @property
    def sampled(self) -> bool:
        """True when the histogram came from a sample of the masks, not all of them."""
        return self.histogram_masks < self.masks


def _probs_info(dataset: PairedDataset, size: tuple[int, int] | None) -> ProbsInfo:
    layout = dataset.transform.layout
    values: dict[str, ValueSummary] = {}
    for index in sample_indices(len(dataset.ids), VALUE_SAMPLE):
        raw = dataset.class_first_raw(index)
        if raw is not None:
            values[dataset.ids[index]] = summarize_values(raw)
    if isinstance(dataset, StackedDataset) and dataset.reader is not None:
        reader = dataset.reader
        shape = tuple(int(n) for n in reader.shape)
        kind, dtype, per_image = "stacked array", str(reader.dtype), shape[1:]
    else:
        first: Any = dataset.raw(range(0, 1))[0]
        shape = () if isinstance(first, ImageError) else tuple(first.shape)
        dtype = "?" if isinstance(first, ImageError) else str(getattr(first, "dtype", "compact"))
        kind = "per-image files"
        per_image = shape
    guess = guess_layout(per_image, size) if len(per_image) == 3 else None
    k = int(shape[class_axis(layout, len(shape))]) if len(shape) in (3, 4) else dataset.classes
    return ProbsInfo(dataset.source, kind, len(dataset.ids), dtype, shape, layout, guess, k, values)


def inspect_dataset(
    spec: InputSpec,
    *,
    histogram_sample: int = HISTOGRAM_SAMPLE,
    on_progress: Callable[[str, int, int], None] | None = None,
) -> InspectReport:
    """Open the inputs as ``score`` does (raising what it would raise), then describe them."""
    inputs = open_inputs(spec)
    dataset = inputs.dataset
    ids = dataset.ids
    headers = sample_indices(len(ids), HEADER_SAMPLE)
    histogram_at = set(sample_indices(len(ids), histogram_sample))
    total = len(headers) + len(histogram_at)
    sizes: Counter[tuple[int, int]] = Counter()
    modes: Counter[str] = Counter()
    unreadable: dict[str, str] = {}
    done = 0
    for index in headers:
        try:
            with Image.open(dataset.masks[index]) as image:
                sizes[(image.height, image.width)] += 1
                modes[image.mode] += 1
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
            unreadable[ids[index]] = f"{dataset.masks[index]}: {error}"
        done += 1
        if on_progress is not None and done % 50 == 0:
            on_progress(STAGE, done, total)
    histogram: Counter[int] = Counter()
    used = 0
    for index in sorted(histogram_at):
        done += 1
        if on_progress is not None:
            on_progress(STAGE, done, total)
        if ids[index] in unreadable:
            continue
        try:
            labels = read_mask(ids[index], dataset.masks[index], dataset.decoder)
        except ImageError as error:
            unreadable[ids[index]] = error.reason
            continue
        values, counts = np.unique(labels, return_counts=True)
        histogram.update(dict(zip(values.tolist(), counts.tolist(), strict=True)))
        used += 1
    if on_progress is not None:
        on_progress(STAGE, total, total)
    size = sizes.most_common(1)[0][0] if sizes else None
    return InspectReport(
        inputs=inputs,
        masks=len(ids),
        mask_sizes=dict(sizes.most_common()),
        mask_modes=dict(modes.most_common()),
        headers_read=len(headers),
        class_histogram=dict(sorted(histogram.items())),
        histogram_masks=used,
        unreadable=unreadable,
        probs=_probs_info(dataset, size),
        pictures=sum(1 for p in dataset.images if p is not None),
        pairing=inputs.pairing,
    )
