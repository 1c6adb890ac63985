"""Image label-quality methods by name: lower score = more likely the image has an error.

``softmin`` (the default, method.md §1, equal to the reference) leans on an image's worst
pixels, but saturates: once ~100 pixels are near zero, more bad pixels change nothing, and a
thin band of unsure pixels along every outline weighs like a mislabelled object. The other
methods use what softmin ignores. Each is listed with when the streaming engine has its
inputs:

- ``softmin``: softmin of the pixels' self-confidence. Pass 1.
- ``num_pixel_issues``: 1 - flagged pixels / valid pixels (the reference's method). Pass 2.
- ``worst_pixel``: the lowest self-confidence. Pass 1.
- ``threshold_softmin``: softmin of self-confidence over its class's threshold, capped at 1:
  a pixel counts only as far as it falls below what its class usually gets, so classes the
  model is unsure of everywhere stop dominating. Pass 2 (needs pass 1's thresholds).
- ``region_evidence``: 1 - the largest ``region_score`` (:mod:`segaudit.core.region_score`)
  among the image's regions: the chance its most suspect region is not a real error. After
  pass 2 (the scores need every image's (given, predicted) pairs); per image it is enough to
  keep, for each pair, the largest ``region_logits`` value, since the score grows with it.
- ``region_none``: the product of (1 - ``region_score``) over its regions: the chance none is
  a real error, were they independent. After pass 2; needs every region's logit.

On benchmarks/detection (docs/guide/detection.md) only ``region_evidence`` beats softmin's
AUPRC overall, and only just; softmin stays the default.

Each method is a pure function of an ``ImageEvidence`` (what the engine has of one image)
and a ``DatasetContext``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np
from numpy.typing import NDArray

from segaudit.core.image import DEFAULT_TEMPERATURE, softmin_score
from segaudit.errors import OptionError

DEFAULT_METHOD = "softmin"


@dataclass(frozen=True)
class ImageEvidence:
    """One image, as the engine has it.

    ``self_confidence`` and ``given``: the valid pixels' self-confidence and given class, in
    the same (any) order. ``flagged_pixels``: pass 2's count. ``region_scores``: the
    ``region_score`` of each of its regions (empty if none)."""

    self_confidence: NDArray[np.float64]
    given: NDArray[np.intp] | None = None
    flagged_pixels: int = 0
    region_scores: NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))


@dataclass(frozen=True)
class DatasetContext:
    """Dataset-wide facts a method may need: the softmin temperature and the per-class
    thresholds of pass 1 (``AuditResult.thresholds``)."""

    temperature: float = DEFAULT_TEMPERATURE
    thresholds: NDArray[np.float64] | None = None


def softmin(image: ImageEvidence, context: DatasetContext) -> float:
    """The default, equal to the reference's ``softmin``."""
    return softmin_score(image.self_confidence, context.temperature)


def num_pixel_issues(image: ImageEvidence, context: DatasetContext) -> float:
    """1 - flagged / valid pixels, as the reference's ``num_pixel_issues``."""
    valid = image.self_confidence.size
    return math.nan if valid == 0 else 1.0 - image.flagged_pixels / valid


def worst_pixel(image: ImageEvidence, context: DatasetContext) -> float:
    """The image's lowest self-confidence."""
    return math.nan if image.self_confidence.size == 0 else float(image.self_confidence.min())


def threshold_softmin(image: ImageEvidence, context: DatasetContext) -> float:
    """Softmin of self-confidence / its class's threshold, capped at 1."""
    if context.thresholds is None or image.given is None:
        raise OptionError("threshold_softmin needs the class thresholds and given classes")
    if image.self_confidence.size == 0:
        return math.nan
    floor = np.maximum(context.thresholds[image.given], 1e-12)
    ratio = np.minimum(image.self_confidence / floor, 1.0)
    return softmin_score(ratio, context.temperature)


def region_evidence(image: ImageEvidence, context: DatasetContext) -> float:
    """1 - the image's largest region score (1.0 when nothing is flagged); ties between
    images are broken by the caller's usual order (flagged pixels, then dataset order)."""
    if image.self_confidence.size == 0:
        return math.nan
    if image.region_scores.size == 0:
        return 1.0
    return 1.0 - float(image.region_scores.max())


def region_none(image: ImageEvidence, context: DatasetContext) -> float:
    """The product of (1 - region score) over the image's regions (1.0 when none)."""
    if image.self_confidence.size == 0:
        return math.nan
    return float(np.prod(1.0 - image.region_scores))


Method = Callable[[ImageEvidence, DatasetContext], float]

#: Every method by name; ``softmin`` first (the default).
METHODS: Mapping[str, Method] = MappingProxyType(
    {
        "softmin": softmin,
        "num_pixel_issues": num_pixel_issues,
        "worst_pixel": worst_pixel,
        "threshold_softmin": threshold_softmin,
        "region_evidence": region_evidence,
        "region_none": region_none,
    }
)

#: When the engine has what each method needs: "pass1" (pixel scores), "pass2" (flags and
#: the thresholds), "regions" (after pass 2: region scores need every image's pairs).
NEEDS: Mapping[str, str] = MappingProxyType(
    {
        "softmin": "pass1",
        "num_pixel_issues": "pass2",
        "worst_pixel": "pass1",
        "threshold_softmin": "pass2",
        "region_evidence": "regions",
        "region_none": "regions",
    }
)


def get_method(name: str) -> Method:
    """The method called ``name``; a clear error listing the methods otherwise."""
    try:
        return METHODS[name]
    except KeyError:
        raise OptionError(
            f"unknown scoring method {name!r}; choose one of: {', '.join(METHODS)}"
        ) from None
