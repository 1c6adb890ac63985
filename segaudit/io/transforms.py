"""Per-image transforms between what is on disk and what the engine reads.

Applied to one image at a time, before the engine sees it: class axis first, logits to
probabilities, resolution matching (bilinear upsampling of probabilities or majority pooling
of labels) and downsampling. Every function here is plain numpy and keeps memory to a few
copies of one image.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
from numpy.typing import NDArray

from segaudit.core.pixel import SUM_TOLERANCE, sample_pixels
from segaudit.errors import ImageError, OptionError, ShapeMismatchError


class Layout(StrEnum):
    """Where the class axis is: first (N, K, H, W) / (K, H, W), or last (N, H, W, K) / (H, W, K)."""

    NCHW = "nchw"
    NHWC = "nhwc"


class Resize(StrEnum):
    """How to match probabilities and masks of different sizes."""

    PROBS = "probs"  # bilinear resampling of the probabilities to the mask size
    LABELS = "labels"  # majority pooling of the labels to the probabilities' size


def class_axis(layout: Layout, ndim: int) -> int:
    """The index of the class axis in an array of ``ndim`` dimensions."""
    return ndim - 1 if layout is Layout.NHWC else ndim - 3


def guess_layout(shape: tuple[int, ...], size: tuple[int, int] | None) -> Layout | None:
    """Class axis first or last of one image's (3-D) array: by which axes match the mask's
    size (H, W), else by which axis is smallest; None when unclear."""
    if len(shape) != 3:
        return None
    if size is not None:
        if shape[1:] == size:
            return Layout.NCHW
        if shape[:2] == size:
            return Layout.NHWC
    if shape[0] < min(shape[1:]):
        return Layout.NCHW
    if shape[2] < min(shape[:2]):
        return Layout.NHWC
    return None


def to_class_first(probs: NDArray[np.floating], layout: Layout) -> NDArray[np.floating]:
    """One image's (K, H, W) view of a (K, H, W) or (H, W, K) array."""
    if layout is Layout.NHWC:
        return np.moveaxis(probs, -1, 0)
    return probs


def softmax(logits: NDArray[np.floating]) -> NDArray[np.float32]:
    """Softmax over the class axis (0), in float32, shifted by the max so it never overflows."""
    out = np.array(logits, dtype=np.float32)  # a copy we own
    out -= out.max(axis=0, keepdims=True)
    np.exp(out, out=out)
    out /= out.sum(axis=0, keepdims=True)
    return out


def _sample(probs: NDArray[np.floating]) -> NDArray[np.float64]:
    """The pixels the audit's own check looks at (core.pixel.sample_pixels), so inspect
    and score judge "sums to 1" alike."""
    return np.asarray(sample_pixels(probs), dtype=np.float64)


@dataclass(frozen=True)
class ValueSummary:
    """Range and per-pixel sums of a sample of one image's values (for 'is this logits?')."""

    low: float
    high: float
    worst_sum: float  # the per-pixel class sum farthest from 1
    finite: bool

    @property
    def looks_like_probs(self) -> bool:
        return (
            self.finite
            and self.low >= 0.0
            and self.high <= 1.0 + SUM_TOLERANCE
            and abs(self.worst_sum - 1.0) <= SUM_TOLERANCE
        )

    @property
    def looks_like_logits(self) -> bool:
        """Finite values that are clearly not probabilities."""
        return self.finite and not self.looks_like_probs


def summarize_values(probs: NDArray[np.floating]) -> ValueSummary:
    """Look at a strided sample of pixels of a (K, H, W) array."""
    sample = _sample(probs)
    if sample.size == 0:
        return ValueSummary(0.0, 0.0, 1.0, True)
    finite = bool(np.isfinite(sample).all())
    sums = sample.sum(axis=0)
    worst = float(sums.flat[int(np.nanargmax(np.abs(sums - 1.0)))]) if finite else float("nan")
    return ValueSummary(float(np.nanmin(sample)), float(np.nanmax(sample)), worst, finite)


def resize_probs(
    probs: NDArray[np.floating], size: tuple[int, int], *, renormalise: bool = True
) -> NDArray[np.float32]:
    """Bilinear resampling of (K, h, w) to (K, H, W), pixel centres aligned.

    The same convention as Pillow's and PyTorch's ``align_corners=False``: edges clamp.
    Probabilities are renormalised to sum to 1 (rounding aside they already do); logits not.
    """
    k = probs.shape[0]
    out = np.empty((k, size[0], size[1]), dtype=np.float32)
    for c in range(k):  # one class plane at a time keeps temporaries to H×W
        plane = np.asarray(probs[c], dtype=np.float32)
        out[c] = _resample_axis(_resample_axis(plane, size[1], axis=1), size[0], axis=0)
    if renormalise:
        total = out.sum(axis=0)
        np.divide(out, total, out=out, where=total > 0)
    return out


def _resample_axis(plane: NDArray[np.float32], target: int, axis: int) -> NDArray[np.float32]:
    """Linear interpolation of a 2-D array along one axis to ``target`` samples."""
    source = plane.shape[axis]
    if target == source:
        return plane
    if target % source == 0:  # integer upsampling: each output phase is a shifted copy
        factor = target // source
        lower = np.concatenate([plane.take([0], axis), plane.take(range(source - 1), axis)], axis)
        upper = np.concatenate([plane.take(range(1, source), axis), plane.take([-1], axis)], axis)
        shape = list(plane.shape)
        shape[axis] = target
        out = np.empty(shape, dtype=np.float32)
        for phase in range(factor):
            offset = (phase + 0.5) / factor - 0.5  # in (-0.5, 0.5): neighbour below or above
            where = [slice(None), slice(None)]
            where[axis] = slice(phase, None, factor)
            other, weight = (upper, offset) if offset >= 0 else (lower, -offset)
            out[tuple(where)] = plane * np.float32(1 - weight) + other * np.float32(weight)
        return out
    low, high, weight = _linear_weights(source, target)
    shape = [1, 1]
    shape[axis] = target
    weight = weight.reshape(shape)
    resampled: NDArray[np.float32] = (
        plane.take(low, axis) * (1 - weight) + plane.take(high, axis) * weight
    )
    return resampled


def _linear_weights(
    source: int, target: int
) -> tuple[NDArray[np.intp], NDArray[np.intp], NDArray[np.float32]]:
    """For each target index: the two source indices and the weight of the second."""
    centres = (np.arange(target, dtype=np.float64) + 0.5) * (source / target) - 0.5
    centres = np.clip(centres, 0, source - 1)
    low = np.floor(centres).astype(np.intp)
    high = np.minimum(low + 1, source - 1)
    return low, high, (centres - low).astype(np.float32)


def _block_starts(source: int, target: int) -> NDArray[np.intp]:
    """First source index of each of ``target`` blocks covering 0..source-1."""
    return (np.arange(target, dtype=np.int64) * source // target).astype(np.intp)


def pool_labels(
    labels: NDArray[np.integer], size: tuple[int, int], ignore: Collection[int]
) -> NDArray[np.integer]:
    """Majority vote of labels over blocks, down to ``size`` (h, w); block edges ``i * H // h``."""
    big_h, big_w = labels.shape
    h, w = size
    if h > big_h or w > big_w:
        raise ValueError(f"cannot pool a {big_h}x{big_w} mask up to {h}x{w}")
    return majority(labels, _block_starts(big_h, h), _block_starts(big_w, w), ignore)


#: Largest blocks × classes table counted in one go; beyond it, one pass per class.
_MAX_VOTE_TABLE = 1 << 24


def majority(
    labels: NDArray[np.integer],
    rows: NDArray[np.intp],
    cols: NDArray[np.intp],
    ignore: Collection[int],
) -> NDArray[np.integer]:
    """Majority vote of labels in the blocks starting at ``rows`` x ``cols``.

    Ignored pixels do not vote; ties go to the lowest class id; a block of ignored pixels
    only stays ignored (it takes the smallest ignore value).
    """
    fill = min(ignore) if ignore else 0
    dtype = np.result_type(labels.dtype, np.min_scalar_type(fill))
    voting = ~np.isin(labels, np.fromiter(ignore, dtype=np.int64)) if ignore else None
    present, compact = np.unique(labels, return_inverse=True)
    compact = compact.reshape(labels.shape)
    blocks = len(rows) * len(cols)
    if blocks * len(present) > _MAX_VOTE_TABLE:
        return _majority_by_class(labels, rows, cols, voting, fill, dtype)
    heights = np.diff(np.append(rows, labels.shape[0]))
    widths = np.diff(np.append(cols, labels.shape[1]))
    block_row = np.repeat(np.arange(len(rows)), heights)
    block_col = np.repeat(np.arange(len(cols)), widths)
    key = (block_row[:, None] * len(cols) + block_col[None, :]) * len(present) + compact
    counts = np.bincount(
        key.ravel() if voting is None else key[voting],
        minlength=blocks * len(present),
    ).reshape(blocks, len(present))
    best = present.astype(dtype)[counts.argmax(axis=1)]  # first maximum: the lowest class
    best[counts.max(axis=1) == 0] = fill
    out: NDArray[np.integer] = best.reshape(len(rows), len(cols))
    return out


def _majority_by_class(
    labels: NDArray[np.integer],
    rows: NDArray[np.intp],
    cols: NDArray[np.intp],
    voting: NDArray[np.bool_] | None,
    fill: int,
    dtype: np.dtype[np.integer],
) -> NDArray[np.integer]:
    """The same vote one class at a time (for many blocks times many classes)."""
    best = np.full((len(rows), len(cols)), fill, dtype=dtype)
    best_count = np.zeros(best.shape, dtype=np.int64)
    for value in np.unique(labels if voting is None else labels[voting]):
        votes = (labels == value).astype(np.int32)  # ascending classes; only more votes win
        counts = np.add.reduceat(np.add.reduceat(votes, rows, axis=0), cols, axis=1)
        better = counts > best_count
        best[better] = value
        best_count[better] = counts[better]
    return best


def _factor_starts(size: int, factor: int) -> NDArray[np.intp]:
    return np.arange(0, size, factor, dtype=np.intp)


def downsample_labels(
    labels: NDArray[np.integer], factor: int, ignore: Collection[int]
) -> NDArray[np.integer]:
    """Majority vote over factor×factor blocks (the last ones may be partial)."""
    big_h, big_w = labels.shape
    return majority(labels, _factor_starts(big_h, factor), _factor_starts(big_w, factor), ignore)


def mean_pool(probs: NDArray[np.floating], factor: int) -> NDArray[np.float32]:
    """Mean of (K, H, W) over factor×factor blocks (the last ones may be partial), float32."""
    k, big_h, big_w = probs.shape
    h, w = -(-big_h // factor), -(-big_w // factor)
    heights = np.minimum(factor, big_h - np.arange(h) * factor).astype(np.float32)
    widths = np.minimum(factor, big_w - np.arange(w) * factor).astype(np.float32)
    area = heights[:, None] * widths[None, :]
    out = np.empty((k, h, w), dtype=np.float32)
    padded = np.zeros((h * factor, w * factor), dtype=np.float32)
    for c in range(k):  # one plane at a time: strided adds, no K×H×W temporary
        padded[:big_h, :big_w] = probs[c]
        rows = padded[0::factor].copy()
        for r in range(1, factor):
            rows += padded[r::factor]
        block = rows[:, 0::factor].copy()
        for r in range(1, factor):
            block += rows[:, r::factor]
        out[c] = block / area
    return out


@dataclass(frozen=True)
class ImageTransform:
    """What to do to each image between reading and auditing."""

    layout: Layout = Layout.NCHW
    logits: bool = False
    resize: Resize | None = None
    downsample: int = 1

    def __post_init__(self) -> None:
        if self.downsample < 1:
            raise OptionError(f"downsample must be a positive integer, got {self.downsample}")

    def apply(
        self,
        image_id: str,
        labels: NDArray[np.integer],
        raw: NDArray[np.floating],
        ignore: Collection[int],
    ) -> tuple[NDArray[np.integer], NDArray[np.floating]]:
        """Labels (H, W) and probabilities (K, H, W) ready for the engine."""
        if raw.ndim != 3:
            raise ImageError(
                image_id,
                f"probabilities have shape {raw.shape}; expected 3 dimensions per image "
                f"({'H, W, K' if self.layout is Layout.NHWC else 'K, H, W'})",
            )
        probs = to_class_first(raw, self.layout)
        size = (probs.shape[1], probs.shape[2])
        if labels.shape != size:
            if self.resize is Resize.PROBS:
                target = (labels.shape[0], labels.shape[1])
                probs = resize_probs(probs, target, renormalise=not self.logits)
            elif self.resize is Resize.LABELS:
                if size[0] > labels.shape[0] or size[1] > labels.shape[1]:
                    raise ImageError(
                        image_id,
                        f"probabilities ({size[0]}x{size[1]}) are larger than the mask "
                        f"({labels.shape[0]}x{labels.shape[1]}); use --resize probs",
                    )
                labels = pool_labels(labels, size, ignore)
            else:
                raise ShapeMismatchError(
                    image_id,
                    (labels.shape[0], labels.shape[1]),
                    size,
                    "; pass --resize probs or --resize labels",
                )
        if self.logits:
            probs = softmax(probs)
        if self.downsample > min(labels.shape):  # checked before allocating anything
            raise ImageError(
                image_id,
                f"--downsample {self.downsample} is larger than the image "
                f"({labels.shape[0]}x{labels.shape[1]}); use at most {min(labels.shape)}",
            )
        if self.downsample > 1:
            labels = downsample_labels(labels, self.downsample, ignore)
            probs = mean_pool(probs, self.downsample)
        return labels, probs
