"""Per-pixel facts about one image: self-confidence, predicted class, its probability.

Every pass of the audit starts here. The work is done on an order-preserving integer
view of the probabilities (non-negative IEEE floats sort like their bit patterns), so a
float16 image is never widened to float32 as a whole: one max over classes, then one
comparison per class plane for the argmax. No K×H×W temporary is made.
"""

from __future__ import annotations

import functools
from collections.abc import Collection
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from segaudit.errors import (
    LabelValueError,
    ProbabilityError,
    ProbabilitySumError,
    ShapeMismatchError,
)

#: float dtype -> (unsigned view, first bit pattern that is inf/nan or negative)
_ORDERED_VIEWS: dict[np.dtype[np.floating], tuple[type[np.unsignedinteger], int]] = {
    np.dtype(np.float16): (np.uint16, 0x7C00),
    np.dtype(np.float32): (np.uint32, 0x7F800000),
    np.dtype(np.float64): (np.uint64, 0x7FF0000000000000),
}

#: How far a pixel's probabilities may sum from 1 before they are called "not probabilities".
SUM_TOLERANCE = 0.02
#: Pixels per image checked for summing to 1 (a strided sample; the check is a sanity check).
SUM_SAMPLE = 4096


@dataclass(frozen=True, slots=True)
class PixelDigest:
    """What the passes need of one image, each H×W.

    ``given`` is 0 where ``valid`` is False (ignored pixels take part in nothing).
    ``self_confidence`` and ``max_prob`` hold the input values exactly, widened to float64.
    ``exact_keys`` is True when the values came from float16, whose every value has its own
    histogram bin (see :mod:`segaudit.core.selection`).
    ``predicted`` is the argmax everywhere, unless the digest was made with ``predict_below``:
    then it is exact where the self-confidence is at most that value (every pixel pass 2 can
    flag) and equal to ``given`` elsewhere.
    """

    valid: NDArray[np.bool_]
    given: NDArray[np.intp]
    predicted: NDArray[np.intp]
    self_confidence: NDArray[np.float64]
    max_prob: NDArray[np.float64]
    exact_keys: bool

    @property
    def disagrees(self) -> NDArray[np.bool_]:
        """Valid pixels whose predicted class differs from the given one."""
        disagree: NDArray[np.bool_] = self.valid & (self.predicted != self.given)
        return disagree


def valid_mask(labels: NDArray[np.integer], ignore: Collection[int]) -> NDArray[np.bool_]:
    """Pixels whose label is not in the ignore set."""
    values = list(ignore)
    if values and labels.dtype.kind in "ui":  # values the dtype cannot hold ignore nothing
        info = np.iinfo(labels.dtype)
        values = [v for v in values if info.min <= v <= info.max]
    if not values:
        return np.ones(labels.shape, dtype=bool)
    if len(values) == 1:  # the common case (255): one comparison, no np.isin sort
        single: NDArray[np.bool_] = labels != values[0]
        return single
    ignored: NDArray[np.bool_] = np.isin(labels, np.asarray(values, dtype=np.int64))
    valid: NDArray[np.bool_] = ~ignored
    return valid


def check_labels(
    image_id: str, labels: NDArray[np.integer], valid: NDArray[np.bool_], num_classes: int
) -> None:
    """Raise if a label that is not ignored is outside 0..K-1."""
    if valid.all():
        used = labels  # nothing ignored: no boolean-indexed copy
    elif valid.any():
        used = labels[valid]
    else:
        return
    low, high = int(used.min()), int(used.max())
    if low < 0 or high >= num_classes:
        raise LabelValueError(image_id, high if high >= num_classes else low, num_classes)


def _ordered_bits(
    image_id: str, probs: NDArray[np.floating]
) -> tuple[NDArray[np.unsignedinteger], int]:
    try:
        view, first_bad = _ORDERED_VIEWS[probs.dtype]
    except KeyError:
        raise ProbabilityError(image_id, f"unsupported probability dtype {probs.dtype}") from None
    return np.ascontiguousarray(probs).view(view), first_bad


def sample_pixels(probs: NDArray[np.floating]) -> NDArray[np.floating]:
    """About SUM_SAMPLE pixels on a regular grid (a view): where "sums to 1" is checked."""
    _, h, w = probs.shape
    step = max(1, int(np.sqrt(h * w / SUM_SAMPLE)))
    return probs[:, ::step, ::step]


def _check_sums(image_id: str, probs: NDArray[np.floating]) -> None:
    """Raise if a sample of pixels' class probabilities do not sum to about 1."""
    sums = np.add.reduce(sample_pixels(probs), axis=0, dtype=np.float64).ravel()
    if sums.size == 0:
        return
    worst = float(sums[np.argmax(np.abs(sums - 1.0))])  # the actual sum, not its distance
    if abs(worst - 1.0) > SUM_TOLERANCE:
        raise ProbabilitySumError(image_id, worst)


def _argmax(
    bits: NDArray[np.unsignedinteger], max_bits: NDArray[np.unsignedinteger]
) -> NDArray[np.intp]:
    """argmax over classes with ties to the lowest class, one plane at a time (no K×H×W
    temporary): walk the planes from the top class down, overwriting where a plane is max."""
    predicted = np.zeros(max_bits.shape, dtype=np.intp)
    hit = np.empty(max_bits.shape, dtype=bool)
    for k in range(bits.shape[0] - 1, -1, -1):
        np.equal(bits[k], max_bits, out=hit)
        np.copyto(predicted, k, where=hit)
    return predicted


@functools.lru_cache(maxsize=8)
def _pixel_offsets(size: int) -> NDArray[np.intp]:
    """0..size-1, made once per image size (read-only, shared by threads)."""
    offsets = np.arange(size, dtype=np.intp)
    offsets.flags.writeable = False
    return offsets


def _take_classes(
    bits: NDArray[np.unsignedinteger], classes: NDArray[np.intp]
) -> NDArray[np.unsignedinteger]:
    """bits[classes[y, x], y, x] for every pixel: one gather from the flat array."""
    plane = classes.size
    flat = classes.reshape(-1) * plane
    flat += _pixel_offsets(plane)
    taken: NDArray[np.unsignedinteger] = np.take(bits.reshape(-1), flat).reshape(classes.shape)
    return taken


def _argmax_where(
    bits: NDArray[np.unsignedinteger], where: NDArray[np.bool_], given: NDArray[np.intp]
) -> NDArray[np.intp]:
    """The argmax at the ``where`` pixels only (ties to the lowest class); ``given`` elsewhere.
    Pass 2 needs the prediction only where a pixel can be flagged, a few percent of them."""
    predicted = given.copy()
    at = np.flatnonzero(where)
    if at.size:
        columns = bits.reshape(bits.shape[0], -1)[:, at]
        predicted.reshape(-1)[at] = columns.argmax(axis=0)
    return predicted


@runtime_checkable
class RowSource(Protocol):
    """Probabilities (K, H, W) that are made a band of rows at a time, never as a whole
    (low-resolution logits upsampled and softmaxed: see :mod:`segaudit.io.transforms`).

    ``rows(start, stop)`` returns exactly the rows ``start:stop`` of what ``materialize()``
    returns (same floats, bit for bit); the array may be reused by the next call."""

    @property
    def shape(self) -> tuple[int, int, int]: ...

    @property
    def dtype(self) -> np.dtype[np.floating]: ...

    def band_height(self) -> int: ...

    def rows(self, start: int, stop: int) -> NDArray[np.floating]: ...

    def materialize(self) -> NDArray[np.floating]: ...


def digest_image(
    image_id: str,
    labels: NDArray[np.integer],
    probs: NDArray[np.floating] | RowSource,
    ignore: Collection[int] = (),
    *,
    check_sums: bool = True,
    predict_below: float | None = None,
) -> PixelDigest:
    """Digest one image: labels (H, W) ints, probs (K, H, W) floats, class axis first.

    ``predict_below`` (pass 2's cutoff) limits the argmax to pixels whose self-confidence,
    as float32, is at most that value. ``probs`` may be a :class:`RowSource`: then it is
    digested a band of rows at a time (every per-pixel fact is computed from that pixel's
    class values alone, so the digest is the same as of the whole array)."""
    num_classes = probs.shape[0]
    if labels.shape != probs.shape[1:]:
        raise ShapeMismatchError(
            image_id, (labels.shape[0], labels.shape[1]), (probs.shape[1], probs.shape[2])
        )
    valid = valid_mask(labels, ignore)
    check_labels(image_id, labels, valid, num_classes)
    given = labels.astype(np.intp) if valid.all() else np.where(valid, labels, 0).astype(np.intp)
    if isinstance(probs, np.ndarray):
        facts = _pixel_facts(image_id, probs, given, valid, predict_below)
        if check_sums:
            _check_sums(image_id, probs)
        dtype = probs.dtype
    else:
        try:
            facts = _facts_by_rows(image_id, probs, given, valid, check_sums, predict_below)
        except ProbabilityError:  # say it exactly as the whole array would
            whole = probs.materialize()
            facts = _pixel_facts(image_id, whole, given, valid, predict_below)
            if check_sums:
                _check_sums(image_id, whole)
            raise  # unreachable in practice: the whole array raises first
        dtype = probs.dtype
    self_conf, predicted, max_prob = facts
    return PixelDigest(
        valid=valid,
        given=given,
        predicted=predicted,
        self_confidence=self_conf,
        max_prob=max_prob,
        exact_keys=dtype == np.float16,
    )


_Facts = tuple[NDArray[np.float64], NDArray[np.intp], NDArray[np.float64]]


def _pixel_facts(
    image_id: str,
    probs: NDArray[np.floating],
    given: NDArray[np.intp],
    valid: NDArray[np.bool_],
    predict_below: float | None,
) -> _Facts:
    """Self-confidence, predicted class and its probability of every pixel of ``probs``
    (all of an image's rows, or a band of them); raises on values that are not
    probabilities."""
    bits, first_bad = _ordered_bits(image_id, probs)
    max_bits = bits.max(axis=0)
    if max_bits.size and int(max_bits.max()) >= first_bad and not (probs < 0).any():
        # -0.0 has the sign bit set but is a valid probability: make it +0.0 (a copy, but
        # only on this rare path) and look again.
        probs = probs + probs.dtype.type(0.0)
        bits, first_bad = _ordered_bits(image_id, probs)
        max_bits = bits.max(axis=0)
    if max_bits.size and int(max_bits.max()) >= first_bad:
        what = "NaN or infinite" if not np.isfinite(probs).all() else "negative"
        raise ProbabilityError(image_id, f"probabilities contain {what} values")

    self_conf = _take_classes(bits, given).view(probs.dtype).astype(np.float64)
    if predict_below is None:
        predicted = _argmax(bits, max_bits)
    else:
        below = self_conf.astype(np.float32) <= np.float32(predict_below)
        predicted = _argmax_where(bits, below & valid, given)
    max_prob = max_bits.view(probs.dtype).astype(np.float64)
    return self_conf, predicted, max_prob


def _facts_by_rows(
    image_id: str,
    source: RowSource,
    given: NDArray[np.intp],
    valid: NDArray[np.bool_],
    check_sums: bool,
    predict_below: float | None,
) -> _Facts:
    """:func:`_pixel_facts` one band of rows at a time, and the sum check on the same
    sample of pixels as :func:`_check_sums` (raised, if at all, after every band)."""
    _, height, width = source.shape
    self_conf = np.empty((height, width), dtype=np.float64)
    max_prob = np.empty((height, width), dtype=np.float64)
    predicted = np.empty((height, width), dtype=np.intp)
    step = max(1, int(np.sqrt(height * width / SUM_SAMPLE)))
    worst = 0.0
    band = max(1, source.band_height())
    for start in range(0, height, band):
        stop = min(height, start + band)
        probs = source.rows(start, stop)
        rows = slice(start, stop)
        facts = _pixel_facts(image_id, probs, given[rows], valid[rows], predict_below)
        self_conf[rows], predicted[rows], max_prob[rows] = facts
        if check_sums:
            sample = probs[:, (-start) % step :: step, ::step]
            if sample.size:
                sums = np.add.reduce(sample, axis=0, dtype=np.float64)
                worst = max(worst, float(np.max(np.abs(sums - 1.0))))
    if worst > SUM_TOLERANCE:
        raise ProbabilityError(
            image_id,
            f"class probabilities sum to {1.0 + worst:.3g} at some pixels, not 1; "
            "if these are logits, pass --logits",
        )
    return self_conf, predicted, max_prob
