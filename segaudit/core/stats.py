"""Pass 1: per-class thresholds (method.md §2) as a mergeable sum and count per class."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

#: The reference floors every threshold here, and gives it to classes no pixel is labelled with.
THRESHOLD_FLOOR = 2e-6


@dataclass
class ClassStats:
    """Sum of P[k] and pixel count over pixels labelled k, for every class k."""

    num_classes: int
    sums: NDArray[np.float64] = field(init=False)
    counts: NDArray[np.int64] = field(init=False)

    def __post_init__(self) -> None:
        self.sums = np.zeros(self.num_classes, np.float64)
        self.counts = np.zeros(self.num_classes, np.int64)

    def update(self, given: NDArray[np.intp], self_confidence: NDArray[np.float64]) -> None:
        """given and self_confidence of the valid pixels of one image."""
        self.sums += np.bincount(given, weights=self_confidence, minlength=self.num_classes)
        self.counts += np.bincount(given, minlength=self.num_classes)

    def merge(self, other: ClassStats) -> None:
        self.sums += other.sums
        self.counts += other.counts

    def thresholds(self) -> NDArray[np.float64]:
        """Mean self-confidence per class, floored at 2e-6 (absent classes get the floor)."""
        means = self.sums / np.maximum(self.counts, 1)
        return np.maximum(means, THRESHOLD_FLOOR)
