"""Compact probability encodings, and the per-pixel digest made straight from them.

Two encodings keep a probabilities store small (see docs/guide/probabilities.md):

- ``uint8``: each class's probability as an integer code c in 0..255, read as c / 255. A
  pixel's codes sum to exactly 255 (largest-remainder rounding, :func:`quantize`).
- ``top-k``: per pixel the k most likely classes (ids; ties go to the lowest class) and
  their probabilities (uint8 codes as above, or float16), plus a coarse copy of every class:
  the mean probability of each s×s block (the *tail*, float16; by default s = 8 up to 64
  classes, none above). The rest of the mass, ``rest = 1 - sum(top k)``, is shared over
  the K - k other classes in proportion to their tail values at the pixel's block,
  ``rest * tail[c] / sum(tail of the classes outside the pixel's top k)``, capped at the
  k-th stored probability (an outside class is never more likely than a stored one).
  Without a tail (``tail_stride`` 0), or where the outside classes have no tail mass,
  evenly: ``rest / (K - k)``. A label outside a pixel's top k gets its share as its
  self-confidence; only top-k classes are predicted.

Decoded values are rounded to float16 (each 1/255 step has its own float16 value), so the
selection's histograms stay exact (no refine pass). A digest reads the stored k (or K, for
uint8) integer or float16 planes and makes H×W results only: no K float planes.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from segaudit.core.pixel import (
    SUM_SAMPLE,
    SUM_TOLERANCE,
    PixelDigest,
    RowSource,
    check_labels,
    digest_image,
    sample_pixels,
    valid_mask,
)
from segaudit.errors import ImageError, ProbabilityError

#: The uint8 code of probability 1.
CODE_MAX = 255
#: Side of the pixel blocks a top-k store's tail averages over (issue 12: stride 8 keeps
#: K=19 top-4 agreement high for 19 * 2 / 64 = 0.6 extra bytes a pixel).
TAIL_STRIDE = 8
#: Above this many classes a top-k store keeps no tail by default: the tail would cost a
#: third of the store, and with the rest spread over 100+ classes the even share already
#: puts every outside label far below the selection cutoff (K=150 top-5: flagged IoU 0.985
#: evenly, 0.94 with a tail; docs/guide/probabilities.md).
TAIL_MAX_CLASSES = 64
#: Largest tail stride a store may claim (a block bigger than this is no longer local).
MAX_TAIL_STRIDE = 1024
#: float16 value of each uint8 code c: c / 255 rounded once.
_CODE_VALUES: NDArray[np.float16] = (np.arange(256, dtype=np.float64) / CODE_MAX).astype(np.float16)


class CompactImage(Protocol):
    """One image's probabilities in a compact encoding; knows how to digest itself."""

    @property
    def num_classes(self) -> int: ...

    @property
    def shape(self) -> tuple[int, int, int]:
        """(K, H, W) as the dense array would be."""
        ...

    def digest(
        self,
        image_id: str,
        labels: NDArray[np.integer],
        ignore: Collection[int] = (),
        *,
        check_sums: bool = True,
        predict_below: float | None = None,
    ) -> PixelDigest:
        """The same facts :func:`segaudit.core.pixel.digest_image` gives for dense input."""
        ...

    def expand(self) -> NDArray[np.float16]:
        """The dense (K, H, W) float16 probabilities (K planes: for converting, not scoring)."""
        ...


def digest_probs(
    image_id: str,
    labels: NDArray[np.integer],
    probs: NDArray[np.floating] | RowSource | CompactImage,
    ignore: Collection[int] = (),
    *,
    check_sums: bool = True,
    predict_below: float | None = None,
) -> PixelDigest:
    """Digest dense probabilities, or ones made a band at a time (the unchanged path), or a
    compact image (its own digest)."""
    if isinstance(probs, np.ndarray | RowSource):
        return digest_image(
            image_id, labels, probs, ignore, check_sums=check_sums, predict_below=predict_below
        )
    return probs.digest(
        image_id, labels, ignore, check_sums=check_sums, predict_below=predict_below
    )


# ------------------------------------------------------------------------------ encoding


def quantize(buckets: NDArray[np.floating]) -> NDArray[np.uint8]:
    """Integer codes (B, ...) summing to exactly 255 per pixel, proportional to ``buckets``.

    Largest-remainder rounding: floor(p * 255), then the missing units go to the buckets
    with the largest fractional parts (ties to the lower bucket). It never reorders two
    buckets, so the most likely class keeps the largest code. A pixel whose buckets sum to
    0 gets all 255 in its first bucket."""
    values = np.asarray(buckets, dtype=np.float64)
    total = values.sum(axis=0)
    scaled = values * np.divide(CODE_MAX, total, out=np.zeros_like(total), where=total > 0)
    floor = np.floor(scaled)
    deficit = CODE_MAX - floor.sum(axis=0)
    deficit[total <= 0] = 0
    order = np.argsort(floor - scaled, axis=0, kind="stable")  # largest fraction first
    rank = np.empty_like(order)
    steps = np.arange(values.shape[0]).reshape((-1,) + (1,) * (values.ndim - 1))
    np.put_along_axis(rank, order, np.broadcast_to(steps, order.shape), axis=0)
    codes: NDArray[np.uint8] = (floor + (rank < deficit)).astype(np.uint8)
    if (total <= 0).any():
        codes[0][total <= 0] = CODE_MAX
    return codes


def top_k(probs: NDArray[np.floating], k: int) -> tuple[NDArray[np.intp], NDArray[np.float32]]:
    """The k largest classes per pixel of (K, ...) probabilities, largest first, ties to the
    lowest class id: (ids (k, ...), values (k, ...) float32). k passes of one argmax each."""
    work = np.array(probs, dtype=np.float32)
    ids = np.empty((k, *work.shape[1:]), dtype=np.intp)
    values = np.empty((k, *work.shape[1:]), dtype=np.float32)
    for j in range(k):
        best = work.argmax(axis=0)  # first maximum: the lowest class
        ids[j] = best
        values[j] = np.take_along_axis(work, best[None], axis=0)[0]
        np.put_along_axis(work, best[None], -np.inf, axis=0)
    return ids, values


def encode_top_k(
    probs: NDArray[np.floating], k: int, codes: bool
) -> tuple[NDArray[np.unsignedinteger], NDArray[np.uint8] | NDArray[np.float16]]:
    """(class ids, stored probabilities) of (K, ...) probabilities: uint8 ids for K <= 255,
    else uint16; probabilities as uint8 codes (with the rest as an unstored last bucket, so
    the k codes and the rest sum to 255) or float16."""
    num_classes = probs.shape[0]
    ids, values = top_k(probs, k)
    id_dtype = class_id_dtype(num_classes)
    if not codes:
        return ids.astype(id_dtype), values.astype(np.float16)
    if k == num_classes:
        return ids.astype(id_dtype), quantize(values)
    rest = np.clip(1.0 - values.sum(axis=0, dtype=np.float64), 0.0, None)
    quantized = quantize(np.concatenate([values.astype(np.float64), rest[None]], axis=0))
    return ids.astype(id_dtype), quantized[:k]


def coarse_tail(probs: NDArray[np.floating], stride: int) -> NDArray[np.float16]:
    """(K, ceil(H/s), ceil(W/s)): the mean probability of every class over each s×s block
    (edge blocks: over the pixels they have), float16. Sums are made in float32."""
    num_classes, h, w = probs.shape
    rows, cols = np.arange(0, h, stride), np.arange(0, w, stride)
    if not h or not w:
        return np.zeros((num_classes, rows.size, cols.size), np.float16)
    sums = np.add.reduceat(np.add.reduceat(probs, rows, axis=1, dtype=np.float32), cols, axis=2)
    counts = np.minimum(stride, h - rows)[:, None] * np.minimum(stride, w - cols)[None, :]
    means: NDArray[np.float16] = (sums / counts.astype(np.float32)).astype(np.float16)
    return means


def default_tail_stride(num_classes: int) -> int:
    """The tail stride a top-k store gets unless one is asked for (0: no tail)."""
    return TAIL_STRIDE if num_classes <= TAIL_MAX_CLASSES else 0


def tail_shape(num_classes: int, h: int, w: int, stride: int) -> tuple[int, int, int]:
    """The tail's shape for an H×W image."""
    return num_classes, -(-h // stride), -(-w // stride)


def class_id_dtype(num_classes: int) -> np.dtype[np.unsignedinteger]:
    """uint8 up to 255 classes (so 255, the fill of a missing chunk, is never a class)."""
    return np.dtype(np.uint8) if num_classes <= 255 else np.dtype(np.uint16)


# ------------------------------------------------------------------------------ decoding


def _prepare(
    image_id: str,
    labels: NDArray[np.integer],
    size: tuple[int, int],
    num_classes: int,
    ignore: Collection[int],
) -> tuple[NDArray[np.bool_], NDArray[np.intp]]:
    """valid and given, with the same checks and messages as the dense digest."""
    if labels.shape != size:
        raise ImageError(
            image_id,
            f"mask is {labels.shape[0]}x{labels.shape[1]} but probabilities are "
            f"{size[0]}x{size[1]} (H x W)",
        )
    valid = valid_mask(labels, ignore)
    check_labels(image_id, labels, valid, num_classes)
    given = labels.astype(np.intp) if valid.all() else np.where(valid, labels, 0).astype(np.intp)
    return valid, given


def _finish(
    valid: NDArray[np.bool_],
    given: NDArray[np.intp],
    predicted: NDArray[np.intp],
    self_conf: NDArray[np.float16],
    max_prob: NDArray[np.float16],
    predict_below: float | None,
) -> PixelDigest:
    """The digest, with the dense path's ``predict_below`` contract: predicted equals given
    where the self-confidence is above the cutoff."""
    confidence = self_conf.astype(np.float64)
    if predict_below is not None:
        below = confidence.astype(np.float32) <= np.float32(predict_below)
        predicted = np.where(below & valid, predicted, given)
    return PixelDigest(
        valid=valid,
        given=given,
        predicted=predicted,
        self_confidence=confidence,
        max_prob=max_prob.astype(np.float64),
        exact_keys=True,
    )


def _check_sum(image_id: str, sums: NDArray[np.floating], at_most: bool) -> None:
    """Raise unless a sample of per-pixel sums is about 1 (or, ``at_most``, not above it)."""
    if not sums.size:
        return
    excess = sums - 1.0 if at_most else np.abs(sums - 1.0)
    worst = float(np.max(excess))
    if worst > SUM_TOLERANCE:
        raise ProbabilityError(
            image_id,
            f"stored probabilities sum to {1.0 + worst:.3g} at some pixels, not "
            f"{'at most ' if at_most else ''}1; the store is damaged: write it again",
        )


@dataclass(frozen=True)
class QuantizedImage:
    """Every class's probability as a uint8 code (K, H, W): p = code / 255."""

    codes: NDArray[np.uint8]

    @property
    def num_classes(self) -> int:
        return int(self.codes.shape[0])

    @property
    def shape(self) -> tuple[int, int, int]:
        k, h, w = self.codes.shape
        return int(k), int(h), int(w)

    def digest(
        self,
        image_id: str,
        labels: NDArray[np.integer],
        ignore: Collection[int] = (),
        *,
        check_sums: bool = True,
        predict_below: float | None = None,
    ) -> PixelDigest:
        codes = self.codes
        k, h, w = self.shape
        valid, given = _prepare(image_id, labels, (h, w), k, ignore)
        if check_sums:
            step = max(1, int(np.sqrt(h * w / SUM_SAMPLE)))  # the pixels sample_pixels takes
            sums = np.add.reduce(codes[:, ::step, ::step], axis=0, dtype=np.int64)
            _check_sum(image_id, sums / CODE_MAX, at_most=False)
        top = codes.max(axis=0)
        predicted = np.zeros((h, w), dtype=np.intp)
        hit = np.empty((h, w), dtype=bool)
        for c in range(k - 1, -1, -1):  # the lowest class wins ties: it is written last
            np.equal(codes[c], top, out=hit)
            np.copyto(predicted, c, where=hit)
        flat = given.reshape(-1) * (h * w) + np.arange(h * w, dtype=np.intp)
        own = np.take(codes.reshape(-1), flat).reshape(h, w)
        return _finish(valid, given, predicted, _CODE_VALUES[own], _CODE_VALUES[top], predict_below)

    def expand(self) -> NDArray[np.float16]:
        expanded: NDArray[np.float16] = _CODE_VALUES[self.codes]
        return expanded


@dataclass(frozen=True)
class TopKImage:
    """Per pixel the k most likely class ids (k, H, W) and their probabilities (k, H, W):
    uint8 codes or float16; optionally the tail (K, ceil(H/s), ceil(W/s)) that shares out
    the rest (module doc), else the other K - k classes share it evenly."""

    classes: NDArray[np.unsignedinteger]
    probs: NDArray[np.uint8] | NDArray[np.float16]
    total_classes: int
    tail: NDArray[np.float16] | None = None
    tail_stride: int = 0

    @property
    def num_classes(self) -> int:
        return self.total_classes

    @property
    def shape(self) -> tuple[int, int, int]:
        _, h, w = self.classes.shape
        return self.total_classes, int(h), int(w)

    @property
    def k(self) -> int:
        return int(self.classes.shape[0])

    def _values(
        self, image_id: str, check_sums: bool
    ) -> tuple[NDArray[np.float16], NDArray[np.float32], NDArray[np.float16]]:
        """The k stored probabilities as float16 planes, the rest of the mass (H, W), and
        its even share over the other classes."""
        k, others = self.k, self.total_classes - self.k
        if self.classes.size and int(self.classes.max()) >= self.total_classes:
            raise ProbabilityError(
                image_id,
                f"class id {int(self.classes.max())} in the top-{k} ids is not a class "
                f"(0..{self.total_classes - 1}); the store is damaged or truncated: write it again",
            )
        if self.probs.dtype == np.uint8:
            sums = np.add.reduce(self.probs, axis=0, dtype=np.int64)
            if check_sums:
                _check_sum(image_id, sample_pixels(sums[None])[0] / CODE_MAX, others > 0)
            values = _CODE_VALUES[self.probs]
            left = np.clip(CODE_MAX - sums, 0, None)
            rest = (left / CODE_MAX).astype(np.float32)
            even = left / (CODE_MAX * max(others, 1))
        else:
            values = np.asarray(self.probs, dtype=np.float16)
            if not np.isfinite(values).all() or (values < 0).any():
                what = "NaN or infinite" if not np.isfinite(values).all() else "negative"
                raise ProbabilityError(image_id, f"probabilities contain {what} values")
            sums32 = np.add.reduce(values, axis=0, dtype=np.float32)
            if check_sums:
                _check_sum(image_id, sample_pixels(sums32[None])[0], others > 0)
            rest = np.clip(np.float32(1.0) - sums32, 0, None)
            even = rest / np.float32(max(others, 1))
        if others == 0:
            rest, even = np.zeros_like(rest), np.zeros_like(even)
        return values, rest, even.astype(np.float16)

    def _outside(
        self, image_id: str, values: NDArray[np.float16], rest: NDArray[np.float32],
        even: NDArray[np.float16],
    ) -> Callable[[NDArray[np.intp]], NDArray[np.float16]]:  # fmt: skip
        """A function giving, per pixel, the probability of a class (H, W ids) on the
        assumption that it is outside the pixel's top k: its share of the rest."""
        if self.tail is None or self.total_classes == self.k:
            return lambda wanted: even
        num_classes, h, w = self.shape
        stride = self.tail_stride
        if stride < 1 or self.tail.shape != tail_shape(num_classes, h, w, stride):
            raise ProbabilityError(
                image_id,
                f"tail is {self.tail.shape}, not {tail_shape(num_classes, h, w, max(stride, 1))} "
                f"for stride {stride}; the store is damaged: write it again",
            )
        tail = self.tail.reshape(num_classes, -1).astype(np.float32)
        if not np.isfinite(tail).all() or (tail < 0).any():
            raise ProbabilityError(
                image_id, "tail has NaN, infinite or negative values; the store is damaged"
            )
        cells = tail.shape[1]
        cell = (np.arange(h, dtype=np.intp) // stride)[:, None] * -(-w // stride) + (
            np.arange(w, dtype=np.intp) // stride
        )[None, :]
        flat = tail.reshape(-1)
        outside = tail.sum(axis=0)[cell]
        for j in range(self.k):
            outside -= np.take(flat, self.classes[j].astype(np.intp) * cells + cell)
        scale = np.divide(rest, outside, out=np.zeros_like(rest), where=outside > 0)
        cap = np.minimum(values[-1].astype(np.float32), rest)
        fallback = outside <= 0

        def share(wanted: NDArray[np.intp]) -> NDArray[np.float16]:
            estimate = np.take(flat, wanted * cells + cell) * scale
            np.minimum(estimate, cap, out=estimate)
            result: NDArray[np.float16] = estimate.astype(np.float16)
            np.copyto(result, even, where=fallback)
            return result

        return share

    def digest(
        self,
        image_id: str,
        labels: NDArray[np.integer],
        ignore: Collection[int] = (),
        *,
        check_sums: bool = True,
        predict_below: float | None = None,
    ) -> PixelDigest:
        num_classes, h, w = self.shape
        valid, given = _prepare(image_id, labels, (h, w), num_classes, ignore)
        values, rest, even = self._values(image_id, check_sums)
        self_conf = self._outside(image_id, values, rest, even)(given).copy()
        top = values.max(axis=0)
        predicted = np.full((h, w), num_classes, dtype=np.intp)
        for j in range(self.k):
            ids = self.classes[j]
            np.copyto(self_conf, values[j], where=ids == given)
            lower = (values[j] == top) & (ids < predicted)  # ties: the lowest class id
            np.copyto(predicted, ids, where=lower, casting="unsafe")
        return _finish(valid, given, predicted, self_conf, top, predict_below)

    def expand(self) -> NDArray[np.float16]:
        values, rest, even = self._values("", check_sums=False)
        share = self._outside("", values, rest, even)
        num_classes, h, w = self.shape
        dense = np.empty(self.shape, np.float16)
        for c in range(num_classes):
            dense[c] = share(np.full((h, w), c, dtype=np.intp))
        for j in range(self.k):
            np.put_along_axis(dense, self.classes[j][None].astype(np.intp), values[j][None], 0)
        return dense
