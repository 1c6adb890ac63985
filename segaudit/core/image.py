"""Image-level label quality scores (method.md §1)."""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from segaudit.errors import OptionError

DEFAULT_TEMPERATURE = 0.1


def check_temperature(temperature: float) -> float:
    """Reject temperatures the softmin cannot use (the reference clamps negatives; we refuse)."""
    if not math.isfinite(temperature) or temperature <= 0:
        raise OptionError(f"temperature must be a positive number, got {temperature}")
    return temperature


def softmin_score(pixel_scores: NDArray[np.float64], temperature: float) -> float:
    """Softmin-weighted mean of pixel scores: leans on the worst pixels. NaN if none."""
    if pixel_scores.size == 0:
        return math.nan
    shifted = (pixel_scores.min() - pixel_scores) / temperature  # <= 0: never overflows
    weights = np.exp(shifted)
    # Not np.dot: BLAS splits a long dot product over its threads, so the last bits would
    # depend on the machine and its BLAS thread count (a Dask worker runs BLAS on one
    # thread); its threads also spin against the audit's own. numpy's sum is the same
    # everywhere.
    np.multiply(weights, pixel_scores, out=shifted)
    return float(shifted.sum() / weights.sum())
