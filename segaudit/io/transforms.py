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


#: Bytes of one band of class planes at full resolution made at a time by ResampledProbs
#: (small enough to stay in a core's cache while it is softmaxed and digested, with a second
#: such array; large enough that each band's numpy calls are few next to their work: 6 rows
#: of 19 classes at 2048 pixels digest faster than 3).
BAND_BYTES = 1 << 20


class ResampledProbs:
    """``resize_probs`` (then ``softmax`` for logits) of one image, made a band of output
    rows at a time: the same floats, bit for bit, without a K×H×W array.

    Each output row is a weighted sum of two rows of the horizontally resampled planes
    (K×h×W, made once), with the weights ``_resample_axis`` uses; the softmax (or the
    renormalisation) works on each pixel's class values alone. So any band of rows equals
    the same rows of the whole (checked by the tests). Used by the audit through
    :class:`segaudit.core.pixel.RowSource`; ``materialize()`` gives the whole array.
    """

    def __init__(self, probs: NDArray[np.floating], size: tuple[int, int], *, logits: bool) -> None:
        k = probs.shape[0]
        self.logits = logits
        self._shape = (k, size[0], size[1])
        self._wide = _widen(np.asarray(probs, dtype=np.float32), size[1])
        self._low, self._high, self._w_low, self._w_high = _row_weights(probs.shape[1], size[0])
        rows = self.band_height()
        self._band = np.empty((k, rows, size[1]), dtype=np.float32)  # reused by rows()
        self._other = np.empty_like(self._band)

    @property
    def shape(self) -> tuple[int, int, int]:
        return self._shape

    @property
    def dtype(self) -> np.dtype[np.floating]:
        return np.dtype(np.float32)

    def band_height(self) -> int:
        """Rows per band: about BAND_BYTES of float32 class planes."""
        k, _, width = self._shape
        return max(1, BAND_BYTES // (4 * int(k) * max(1, int(width))))

    def rows(self, start: int, stop: int) -> NDArray[np.float32]:
        """Output rows ``start:stop`` (K, stop - start, W), probabilities. The array is
        reused by the next call (it stays in cache while the caller digests it)."""
        count = stop - start
        band: NDArray[np.float32]
        if self._w_low is None or self._w_high is None:  # same height: rows as they are
            band = np.array(self._wide[:, start:stop])
        elif count > self._band.shape[1]:
            band = self._wide.take(self._low[start:stop], axis=1)
            band *= self._w_low[start:stop, None]
            other = self._wide.take(self._high[start:stop], axis=1)
            other *= self._w_high[start:stop, None]
            band += other
        else:
            band, other = self._band[:, :count], self._other[:, :count]
            wide, w_low, w_high = self._wide, self._w_low, self._w_high
            for j, r in enumerate(range(start, stop)):  # gather and weigh in one go
                np.multiply(wide[:, self._low[r]], w_low[r], out=band[:, j])
                np.multiply(wide[:, self._high[r]], w_high[r], out=other[:, j])
            np.add(band, other, out=band)
        if self.logits:
            np.subtract(band, band.max(axis=0), out=band)
            np.exp(band, out=band)
            np.divide(band, band.sum(axis=0), out=band)
        else:
            total = band.sum(axis=0)
            np.divide(band, total, out=band, where=total > 0)
        return band

    def always_valid(self) -> bool:
        """True when no row can hold a value the digest refuses (NaN, infinite, negative):
        every horizontally resampled value is finite, far from overflowing, and (for
        probabilities) not negative. Rows are then sums of two of them with non-negative
        weights summing to 1, finite; the softmax of finite values is finite and not
        negative, and so is the renormalisation of values that are not negative. False
        says nothing (such an image is to be digested whole to learn its fate)."""
        wide = self._wide
        if wide.size == 0:
            return True
        low, high = float(wide.min()), float(wide.max())  # NaN compares False below
        bound = 1e30
        return -bound < low <= high < bound and (self.logits or low >= 0.0)

    def materialize(self) -> NDArray[np.float32]:
        """The whole (K, H, W) array (for callers that need one; the audit does not)."""
        k, height, width = self._shape
        whole = np.empty((k, height, width), dtype=np.float32)
        step = self.band_height()
        for start in range(0, height, step):
            stop = min(height, start + step)
            whole[:, start:stop] = self.rows(start, stop)
        return whole

    def __array__(self, dtype: object = None, copy: object = None) -> NDArray[np.floating]:
        whole = self.materialize()
        return whole if dtype is None else whole.astype(dtype)  # type: ignore[call-overload]


def _widen(probs: NDArray[np.float32], width: int) -> NDArray[np.float32]:
    """``_resample_axis(probs[c], width, axis=1)`` for every class plane c at once (the
    same products and sums, so the same floats), into one contiguous (K, h, width)."""
    k, h, source = probs.shape
    if width == source:
        return np.ascontiguousarray(probs)
    if width % source:
        low, high, weight = _linear_weights(source, width)
        wide: NDArray[np.float32] = probs.take(low, axis=2) * (1 - weight)
        wide += probs.take(high, axis=2) * weight
        return wide
    factor = width // source
    phases = []
    for phase in range(factor):
        offset = (phase + 0.5) / factor - 0.5  # as in _resample_axis
        upper, weight = (True, offset) if offset >= 0 else (False, -offset)
        phases.append((phase, upper, np.float32(1 - weight), np.float32(weight)))
    # Rows of all planes a cache-sized chunk at a time: the same products and sums.
    flat = np.ascontiguousarray(probs).reshape(k * h, source)
    out = np.empty((k * h, source, factor), dtype=np.float32)
    chunk = max(1, _WIDEN_BYTES // (4 * source))
    lower, upper_rows, first, second = (
        np.empty((min(chunk, k * h), source), dtype=np.float32) for _ in range(4)
    )
    for start in range(0, k * h, chunk):
        stop = min(k * h, start + chunk)
        n = stop - start
        rows, low, high = flat[start:stop], lower[:n], upper_rows[:n]
        low[:, :1], low[:, 1:] = rows[:, :1], rows[:, :-1]  # the neighbour on the left
        high[:, -1:], high[:, :-1] = rows[:, -1:], rows[:, 1:]  # on the right
        for phase, upper, keep, take in phases:
            np.multiply(rows, keep, out=first[:n])
            np.multiply(high if upper else low, take, out=second[:n])
            np.add(first[:n], second[:n], out=out[start:stop, :, phase])
    return out.reshape(k, h, width)


#: Bytes of each temporary row chunk of _widen (a few of them stay in a core's cache).
_WIDEN_BYTES = 1 << 17


def _row_weights(
    source: int, target: int
) -> tuple[
    NDArray[np.intp], NDArray[np.intp], NDArray[np.float32] | None, NDArray[np.float32] | None
]:
    """For each output row of ``_resample_axis(plane, target, axis=0)``: the two source rows
    and their float32 weights, as that function applies them (None: rows copied as is)."""
    if target == source:
        rows = np.arange(target, dtype=np.intp)
        return rows, rows, None, None
    if target % source == 0:
        factor = target // source
        index = np.arange(target, dtype=np.intp) // factor
        upper = np.minimum(index + 1, source - 1)
        lower = np.maximum(index - 1, 0)
        w_low = np.empty(target, dtype=np.float32)
        w_high = np.empty(target, dtype=np.float32)
        other = np.empty(target, dtype=np.intp)
        for phase in range(factor):
            offset = (phase + 0.5) / factor - 0.5
            pick = slice(phase, None, factor)
            neighbour, weight = (upper, offset) if offset >= 0 else (lower, -offset)
            other[pick] = neighbour[pick]
            w_low[pick] = np.float32(1 - weight)
            w_high[pick] = np.float32(weight)
        return index, other, w_low, w_high
    low, high, second = _linear_weights(source, target)
    first: NDArray[np.float32] = (1 - second).astype(np.float32)
    return low, high, first, second


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
        labels, probs = self.apply_deferred(image_id, labels, raw, ignore)
        return labels, probs if isinstance(probs, np.ndarray) else probs.materialize()

    def apply_deferred(
        self,
        image_id: str,
        labels: NDArray[np.integer],
        raw: NDArray[np.floating],
        ignore: Collection[int],
    ) -> tuple[NDArray[np.integer], NDArray[np.floating] | ResampledProbs]:
        """As :meth:`apply`, but upsampled probabilities (``--resize probs``, with or without
        ``--logits``) come as a :class:`ResampledProbs` that the audit digests a band of
        rows at a time: no full-resolution K×H×W array is made."""
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
                if self.downsample == 1:
                    return labels, ResampledProbs(probs, target, logits=self.logits)
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
