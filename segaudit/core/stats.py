"""Pass 1: per-class thresholds (method.md §2) as a mergeable sum and count per class."""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np
from numpy.typing import NDArray

#: The reference floors every threshold here, and gives it to classes no pixel is labelled with.
THRESHOLD_FLOOR = 2e-6
#: Every finite float64 is a whole multiple of 2**-1074.
_EXACT_SHIFT = 1074


def _exact(value: float) -> int:
    """``value * 2**1074`` as an exact integer."""
    numerator, denominator = value.as_integer_ratio()
    return numerator * ((1 << _EXACT_SHIFT) // denominator)


@dataclass
class ClassStats:
    """Sum of P[k] and pixel count over pixels labelled k, for every class k.

    Each image's sums are float64; across images they are added exactly (as integers), so
    the thresholds do not depend on how images are grouped into blocks or merged.
    """

    num_classes: int
    exact_sums: list[int] = field(init=False)
    counts: NDArray[np.int64] = field(init=False)

    def __post_init__(self) -> None:
        self.exact_sums = [0] * self.num_classes
        self.counts = np.zeros(self.num_classes, np.int64)

    def update(self, given: NDArray[np.intp], self_confidence: NDArray[np.float64]) -> None:
        """given and self_confidence of the valid pixels of one image."""
        image_sums = np.bincount(given, weights=self_confidence, minlength=self.num_classes)
        for k in np.flatnonzero(image_sums):
            self.exact_sums[k] += _exact(float(image_sums[k]))
        self.counts += np.bincount(given, minlength=self.num_classes)

    def merge(self, other: ClassStats) -> None:
        self.exact_sums = [a + b for a, b in zip(self.exact_sums, other.exact_sums, strict=True)]
        self.counts += other.counts

    def thresholds(self) -> NDArray[np.float64]:
        """Mean self-confidence per class, floored at 2e-6 (absent classes get the floor)."""
        means = [
            float(Fraction(s, int(n) << _EXACT_SHIFT)) if n else 0.0
            for s, n in zip(self.exact_sums, self.counts, strict=True)
        ]
        return np.maximum(np.array(means, np.float64), THRESHOLD_FLOOR)
