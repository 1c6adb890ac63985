"""Suspect regions: connected flagged pixels that share a (given, predicted) class pair.

A reviewer fixes labels object by object, not pixel by pixel: "an unlabelled car at
x, y, w, h, labelled road" is one region. Flagged pixels are split by their (given,
predicted) pair, and each pair's pixels are labelled into connected components with
``scipy.ndimage.label``. So a car half labelled road and half labelled sidewalk gives two
regions (car→road is not the same fix as car→sidewalk), and two touching regions never
mix pairs.

Options: ``connectivity`` 4 (edge neighbours) or 8 (edge and corner neighbours, the
default: a thin diagonal outline stays one region), and ``min_area`` in pixels (default 1:
every flagged pixel belongs to exactly one region, so region areas add up to the image's
flagged pixels). Regions are numbered from 1 per image, largest first; ties by top, then
left edge, then (given, predicted), so the numbering is deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from segaudit.core.pixel import PixelDigest

DEFAULT_CONNECTIVITY = 8
DEFAULT_MIN_AREA = 1
CONNECTIVITIES = (4, 8)


@dataclass(frozen=True, slots=True)
class Region:
    """One connected group of flagged pixels labelled ``given`` that the model calls
    ``predicted``. The box is in pixels: left ``x``, top ``y``, ``width``, ``height``."""

    region_id: int
    given: int
    predicted: int
    area: int
    x: int
    y: int
    width: int
    height: int
    mean_self_confidence: float
    mean_predicted_probability: float


@dataclass(frozen=True)
class RegionOptions:
    """How flagged pixels are grouped into regions."""

    connectivity: int = DEFAULT_CONNECTIVITY
    min_area: int = DEFAULT_MIN_AREA

    def __post_init__(self) -> None:
        if self.connectivity not in CONNECTIVITIES:
            raise ValueError(f"connectivity must be 4 or 8, got {self.connectivity}")
        if self.min_area < 1:
            raise ValueError(f"minimum region area must be at least 1 pixel, got {self.min_area}")

    @property
    def structure(self) -> NDArray[np.bool_]:
        """The neighbourhood for ``ndimage.label``."""
        if self.connectivity == 8:
            return np.ones((3, 3), dtype=bool)
        return np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], dtype=bool)


def _bounds(flagged: NDArray[np.bool_]) -> tuple[slice, slice] | None:
    """The smallest box holding every flagged pixel (labelling only that box is cheaper)."""
    rows = np.flatnonzero(flagged.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(flagged.any(axis=0))
    return slice(int(rows[0]), int(rows[-1]) + 1), slice(int(cols[0]), int(cols[-1]) + 1)


def find_regions(
    digest: PixelDigest, flagged: NDArray[np.bool_], options: RegionOptions | None = None
) -> list[Region]:
    """The suspect regions of one image, numbered from 1, largest first."""
    from scipy import ndimage  # on first use: commands that label nothing start faster

    options = options or RegionOptions()
    box = _bounds(flagged)
    if box is None:
        return []
    top, left = box[0].start, box[1].start
    mask = flagged[box]
    given = digest.given[box][mask]
    predicted = digest.predicted[box][mask]
    num_classes = int(max(given.max(), predicted.max())) + 1
    codes = np.full(mask.shape, -1, dtype=np.intp)
    codes[mask] = given * num_classes + predicted
    self_conf = digest.self_confidence[box]
    max_prob = digest.max_prob[box]

    found: list[tuple[int, int, int, int, int, int, int, float, float]] = []
    for code in np.unique(codes[mask]).tolist():
        labels, count = ndimage.label(codes == code, structure=options.structure)
        flat = labels.ravel()
        areas = np.bincount(flat, minlength=count + 1)
        conf_sums = np.bincount(flat, weights=self_conf.ravel(), minlength=count + 1)
        prob_sums = np.bincount(flat, weights=max_prob.ravel(), minlength=count + 1)
        for label, slices in enumerate(ndimage.find_objects(labels), start=1):
            area = int(areas[label])
            if slices is None or area < options.min_area:
                continue
            rows, cols = slices
            found.append(
                (
                    code // num_classes,
                    code % num_classes,
                    area,
                    left + cols.start,
                    top + rows.start,
                    cols.stop - cols.start,
                    rows.stop - rows.start,
                    float(conf_sums[label]) / area,
                    float(prob_sums[label]) / area,
                )
            )
    found.sort(key=lambda r: (-r[2], r[4], r[3], r[0], r[1]))
    return [Region(i, *row) for i, row in enumerate(found, start=1)]
