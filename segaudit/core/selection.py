"""The global selection of method.md §3 without holding every pixel's score.

The reference sorts the self-confidence of every pixel in the dataset and keeps the T lowest.
segaudit keeps histograms instead. A non-negative float32 sorts like its bit pattern, so the
top 19 bits of that pattern (``coarse_key``) are an order-preserving bin index: 1,024 bins
per power of two, 131,073 bins for [0, 2]. A float16 value keeps all its bits in those 19, so
for float16 input each bin holds exactly one value and the histograms are exact. For float32
and float64 input one more look at the pixels of the few boundary bins makes the answer exact
(at float32 resolution).

Two histograms are filled in pass 1, neither needs the thresholds:
- :class:`ScoreHistogram`: self-confidence of every valid pixel (ranks for the cutoff);
- :class:`ConfidenceHistogram`: per predicted class, the probability of that class on pixels
  whose prediction disagrees with the label (the confident count T, once thresholds exist).

Ties: every pixel whose self-confidence equals the cutoff is selected, so when several pixels
share the T-th lowest value exactly, segaudit selects all of them (the reference picks some of
them in an unspecified order). The rule depends on no ordering, chunking or worker count.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

KEY_SHIFT = 13
_LOW_MASK = (1 << KEY_SHIFT) - 1
#: coarse keys of [0, 2]; larger values share the last bin.
SCORE_BINS = (int(np.float32(2.0).view(np.uint32)) >> KEY_SHIFT) + 1
#: coarse key of 2**-24, the smallest float16 above zero; smaller max-probabilities are
#: lumped into one bin, which no threshold (>= 1e-6) reaches.
_CONF_FLOOR_KEY = int(np.float32(2.0**-24).view(np.uint32)) >> KEY_SHIFT
CONF_BINS = SCORE_BINS - _CONF_FLOOR_KEY + 1

#: The reference's margin for "probability >= threshold".
COMPARISON_MARGIN = 1e-6


def float32_bits(values: NDArray[np.floating]) -> NDArray[np.uint32]:
    """Order-preserving uint32 keys of non-negative values (rounded to float32)."""
    as32 = values.astype(np.float32) + np.float32(0.0)  # -0.0 becomes +0.0
    return as32.view(np.uint32)


def coarse_key(values: NDArray[np.floating]) -> NDArray[np.intp]:
    """Order-preserving bin index of non-negative values; exact for float16 values."""
    keys = (float32_bits(values) >> KEY_SHIFT).astype(np.intp)
    return np.minimum(keys, SCORE_BINS - 1, out=keys)


def key_value(keys: NDArray[np.integer] | int) -> NDArray[np.float64]:
    """The smallest value that has this coarse key (the value itself for float16 inputs)."""
    bits = (np.asarray(keys, dtype=np.uint64) << KEY_SHIFT).astype(np.uint32)
    return bits.view(np.float32).astype(np.float64)


def _packed(counts: NDArray[np.int64]) -> tuple[int, NDArray[np.int32], NDArray[np.int64]]:
    """A histogram as (size, nonzero bins, their counts): what a pickle carries.

    Partial results cross process boundaries (Dask workers); most bins of one block's
    histograms are empty, so this is kilobytes instead of the dense megabytes.
    """
    nonzero = np.flatnonzero(counts)
    return counts.size, nonzero.astype(np.int32), counts[nonzero]


def _unpacked(packed: tuple[int, NDArray[np.int32], NDArray[np.int64]]) -> NDArray[np.int64]:
    size, nonzero, values = packed
    counts = np.zeros(size, np.int64)
    counts[nonzero] = values
    return counts


def _add_sparse(counts: NDArray[np.int64], codes: NDArray[np.intp]) -> None:
    """counts[c] += 1 for each code, cheaply when codes are few compared to bins."""
    if codes.size == 0:
        return
    if codes.size * 8 >= counts.size:
        counts += np.bincount(codes, minlength=counts.size)
    else:
        uniq, n = np.unique(codes, return_counts=True)
        counts[uniq] += n


@dataclass
class ScoreHistogram:
    """Counts of valid pixels per coarse self-confidence key. Mergeable."""

    counts: NDArray[np.int64] = field(default_factory=lambda: np.zeros(SCORE_BINS, np.int64))

    def update(self, self_confidence: NDArray[np.floating]) -> None:
        _add_sparse(self.counts, coarse_key(self_confidence))

    def merge(self, other: ScoreHistogram) -> None:
        self.counts += other.counts

    def __getstate__(self) -> dict[str, Any]:
        return {"counts": _packed(self.counts)}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.counts = _unpacked(state["counts"])

    @property
    def total(self) -> int:
        return int(self.counts.sum())

    def bin_of_rank(self, rank: int) -> int:
        """Coarse key holding the rank-th lowest value (1-based)."""
        cumulative = np.cumsum(self.counts)
        return int(np.searchsorted(cumulative, rank, side="left"))

    def count_below(self, key: int) -> int:
        return int(self.counts[:key].sum())


@dataclass
class ConfidenceHistogram:
    """Per predicted class k: counts of disagreeing pixels by coarse key of P[k]. Mergeable."""

    num_classes: int
    counts: NDArray[np.int64] = field(init=False)

    def __post_init__(self) -> None:
        self.counts = np.zeros(self.num_classes * CONF_BINS, np.int64)

    def update(self, predicted: NDArray[np.intp], max_prob: NDArray[np.floating]) -> None:
        """predicted and max_prob of the disagreeing pixels only.

        Values are rounded toward zero to float32 (a no-op for float16/32 input), so every
        float64 value lies at or above its bin's low edge, which count_bounds relies on.
        """
        as32 = max_prob.astype(np.float32)
        as32 = np.where(as32 > max_prob, np.nextafter(as32, np.float32(0)), as32)
        local = coarse_key(as32) - (_CONF_FLOOR_KEY - 1)
        np.maximum(local, 0, out=local)
        if local.size == 0:
            return
        # A disagreeing pixel's top probability is about 1/K or more, so its keys span a few
        # thousand bins per class: count in that window (one bincount) instead of sorting.
        low, high = int(local.min()), int(local.max())
        span = high - low + 1
        if self.num_classes * span <= 4 * local.size + 65536:
            local -= low
            local += predicted * span
            window = np.bincount(local, minlength=self.num_classes * span)
            per_class = self.counts.reshape(self.num_classes, CONF_BINS)
            per_class[:, low : high + 1] += window.reshape(self.num_classes, span)
        else:
            _add_sparse(self.counts, predicted * CONF_BINS + local)

    def merge(self, other: ConfidenceHistogram) -> None:
        self.counts += other.counts

    def __getstate__(self) -> dict[str, Any]:
        return {"num_classes": self.num_classes, "counts": _packed(self.counts)}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.num_classes = state["num_classes"]
        self.counts = _unpacked(state["counts"])

    def count_bounds(self, thresholds: NDArray[np.float64]) -> tuple[int, int]:
        """Bounds on T, the confident off-diagonal count; equal when keys are exact.

        A bin counts when its smallest value reaches ``t_k - 1e-6``; the bin that straddles
        that value (only possible for float32/64 input) may count in part.
        """
        per_class = self.counts.reshape(self.num_classes, CONF_BINS)
        local = np.arange(CONF_BINS)
        low_edge = np.where(local == 0, 0.0, key_value(local + _CONF_FLOOR_KEY - 1))
        high_edge = np.append(low_edge[1:], np.inf)
        lower = upper = 0
        for k in range(self.num_classes):
            limit = thresholds[k] - COMPARISON_MARGIN
            sure = low_edge >= limit
            straddles = (low_edge < limit) & (high_edge > limit)
            lower += int(per_class[k, sure].sum())
            upper += int(per_class[k, sure | straddles].sum())
        return lower, upper


@dataclass
class FineCounts:
    """Exact float32 keys of pixels in a window of coarse bins, as sorted (key, count)."""

    low_key: int
    high_key: int
    keys: NDArray[np.uint32] = field(default_factory=lambda: np.zeros(0, np.uint32))
    counts: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))

    def update(self, self_confidence: NDArray[np.floating]) -> None:
        bits = float32_bits(self_confidence)
        coarse = np.minimum(bits >> KEY_SHIFT, SCORE_BINS - 1)
        inside = bits[(coarse >= self.low_key) & (coarse <= self.high_key)]
        if inside.size:
            keys, counts = np.unique(inside, return_counts=True)
            self._combine(keys, counts.astype(np.int64))

    def merge(self, other: FineCounts) -> None:
        self._combine(other.keys, other.counts)

    def _combine(self, keys: NDArray[np.uint32], counts: NDArray[np.int64]) -> None:
        all_keys = np.concatenate([self.keys, keys])
        all_counts = np.concatenate([self.counts, counts])
        self.keys, where = np.unique(all_keys, return_inverse=True)
        self.counts = np.bincount(where, weights=all_counts).astype(np.int64)


@dataclass(frozen=True)
class Cutoff:
    """Select pixels whose self-confidence, as float32, is <= ``value``; None selects none."""

    value: float | None

    def select(self, self_confidence: NDArray[np.floating]) -> NDArray[np.bool_]:
        if self.value is None:
            return np.zeros(self_confidence.shape, dtype=bool)
        return self_confidence.astype(np.float32) <= np.float32(self.value)


def exact_cutoff(scores: ScoreHistogram, rank: int) -> Cutoff:
    """The rank-th lowest self-confidence, when every bin holds a single value."""
    if rank <= 0:
        return Cutoff(None)
    return Cutoff(float(key_value(scores.bin_of_rank(min(rank, scores.total)))))


def refine_window(scores: ScoreHistogram, low_rank: int, high_rank: int) -> tuple[int, int]:
    """Coarse keys that may hold the cutoff when T lies in [low_rank, high_rank]."""
    total = scores.total
    return (
        scores.bin_of_rank(min(max(low_rank, 1), total)),
        scores.bin_of_rank(min(max(high_rank, 1), total)),
    )


def refined_cutoff(scores: ScoreHistogram, fine: FineCounts, rank: int) -> Cutoff:
    """The rank-th lowest self-confidence from the coarse counts below the window and the
    exact keys inside it."""
    if rank <= 0:
        return Cutoff(None)
    rank = min(rank, scores.total)
    within = rank - scores.count_below(fine.low_key)
    position = int(np.searchsorted(np.cumsum(fine.counts), within, side="left"))
    bits = np.asarray(fine.keys[position], dtype=np.uint32)
    return Cutoff(float(bits.view(np.float32)))
