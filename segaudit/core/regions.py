"""Suspect regions: connected flagged pixels that share a (given, predicted) class pair.

A reviewer fixes labels object by object, not pixel by pixel: "an unlabelled car at
x, y, w, h, labelled road" is one region. A region is a connected component of the flagged
pixels of one (given, predicted) pair. So a car half labelled road and half labelled
sidewalk gives two regions (car→road is not the same fix as car→sidewalk), and two touching
regions never mix pairs. Components are found in plain numpy from the flagged pixels
alone (see ``_label_by_pair``): the work grows with the flagged pixels, not the image.

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
from segaudit.errors import OptionError

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
            raise OptionError(f"connectivity must be 4 or 8, got {self.connectivity}")
        if self.min_area < 1:
            raise OptionError(f"minimum region area must be at least 1 pixel, got {self.min_area}")

    @property
    def structure(self) -> NDArray[np.bool_]:
        """The neighbourhood as a ``scipy.ndimage`` structuring element."""
        if self.connectivity == 8:
            return np.ones((3, 3), dtype=bool)
        return np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], dtype=bool)


def _half_neighbourhood(connectivity: int) -> list[tuple[int, int]]:
    """(dy, dx) offsets that reach every neighbour pair once: right, down, and diagonals."""
    return [(0, 1), (1, 0)] + ([(1, 1), (1, -1)] if connectivity == 8 else [])


def component_roots(
    count: int, sources: NDArray[np.intp], targets: NDArray[np.intp]
) -> NDArray[np.intp]:
    """Connected components of a graph of ``count`` nodes with edges ``sources[i]`` —
    ``targets[i]``: each node's root, the smallest node of its component. Hook each root to
    the smaller root across an edge, then jump pointers until every node points at a root;
    repeat while an edge joins two roots (a few rounds: pixels come in raster order)."""
    parent = np.arange(count, dtype=np.intp)
    while sources.size:
        a, b = parent[sources], parent[targets]
        apart = a != b
        if not apart.any():
            break
        sources, targets, a, b = sources[apart], targets[apart], a[apart], b[apart]
        np.minimum.at(parent, np.maximum(a, b), np.minimum(a, b))
        while True:
            grand = parent[parent]
            if np.array_equal(grand, parent):
                break
            parent = grand
    return parent


def _label_by_pair(
    flat: NDArray[np.intp], codes: NDArray[np.intp], shape: tuple[int, int], connectivity: int
) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """Region index of each flagged pixel (``flat``: their positions in the box, row-major,
    sorted; ``codes``: their pair codes) and each region's pair code.

    A region is a component of neighbouring flagged pixels of one pair. Regions are
    numbered as the earlier ``ndimage.label`` + split did, which the ranking's last tie
    break depends on: first the components of flagged pixels (any pair) that hold one pair,
    by their first pixel; then the regions of components that mix pairs, by first pixel.
    Plain numpy (no scipy import, little Python per image): neighbours are found by
    searching the sorted positions, components by :func:`component_roots`."""
    height, width = shape
    count = flat.size
    rows, cols = np.divmod(flat, width)
    dy, dx = np.array(_half_neighbourhood(connectivity), dtype=np.intp).T
    # every (pixel, neighbour offset) at once: few numpy calls per image
    inside = (rows[:, None] + dy < height) & (cols[:, None] + dx >= 0)
    inside &= cols[:, None] + dx < width
    wanted = (flat[:, None] + (dy * width + dx)).ravel()
    target = np.minimum(np.searchsorted(flat, wanted), count - 1)
    joined = np.flatnonzero(inside.ravel() & (flat[target] == wanted))
    source, target = joined // dy.size, target[joined]
    coarse = component_roots(count, source, target)  # any pair
    same = codes[source] == codes[target]
    fine = component_roots(count, source[same], target[same])  # one pair
    mixed = np.zeros(count, dtype=bool)
    mixed[coarse[fine != coarse]] = True  # a component with two or more regions
    firsts, region = np.unique(fine, return_inverse=True)
    order = np.lexsort((firsts, mixed[coarse[firsts]]))
    number = np.empty(order.size, dtype=np.intp)
    number[order] = np.arange(order.size, dtype=np.intp)
    return number[region.ravel()], codes[firsts[order]].astype(np.intp)


def _reduce_by_region(
    values: NDArray[np.intp], order: NDArray[np.intp], starts: NDArray[np.intp]
) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """Per region: the minimum and maximum of ``values`` (pixels sorted by region)."""
    ordered = values[order]
    return np.minimum.reduceat(ordered, starts), np.maximum.reduceat(ordered, starts)


def find_regions(
    digest: PixelDigest, flagged: NDArray[np.bool_], options: RegionOptions | None = None
) -> list[Region]:
    """The suspect regions of one image, numbered from 1, largest first.

    Components of neighbouring flagged pixels of one (given, predicted) pair; boxes and
    means come from the flagged pixels alone."""
    return _regions(digest, flagged, options, None)


def region_map(
    digest: PixelDigest, flagged: NDArray[np.bool_], options: RegionOptions | None = None
) -> tuple[list[Region], NDArray[np.int64]]:
    """The regions of :func:`find_regions` and, per pixel, the id of its region: 0 where no
    pixel is flagged, -1 where a flagged pixel is in no region (smaller than ``min_area``).
    What ``score --save-masks`` writes, so ``apply`` can fix a region pixel by pixel."""
    ids = np.zeros(flagged.shape, dtype=np.int64)
    return _regions(digest, flagged, options, ids), ids


def _regions(
    digest: PixelDigest,
    flagged: NDArray[np.bool_],
    options: RegionOptions | None,
    ids: NDArray[np.int64] | None,
) -> list[Region]:
    options = options or RegionOptions()
    flat = np.flatnonzero(flagged)  # positions in the image, row-major: no box copies
    if flat.size == 0:
        return []
    given = digest.given.reshape(-1)[flat]
    predicted = digest.predicted.reshape(-1)[flat]
    num_classes = int(max(given.max(), predicted.max())) + 1
    region_of_pixel, region_codes = _label_by_pair(
        flat, given * num_classes + predicted, flagged.shape, options.connectivity
    )
    count = len(region_codes)
    areas = np.bincount(region_of_pixel, minlength=count)
    conf = np.bincount(
        region_of_pixel, weights=digest.self_confidence.reshape(-1)[flat], minlength=count
    )
    prob = np.bincount(region_of_pixel, weights=digest.max_prob.reshape(-1)[flat], minlength=count)
    order = np.argsort(region_of_pixel, kind="stable")
    starts = np.concatenate([[0], np.cumsum(areas)[:-1]]).astype(np.intp)
    rows, cols = np.divmod(flat, flagged.shape[1])
    y0, y1 = _reduce_by_region(rows, order, starts)
    x0, x1 = _reduce_by_region(cols, order, starts)
    keep = np.flatnonzero(areas >= options.min_area)
    # largest first; ties by top, left, then (given, predicted): deterministic numbering
    ranked = keep[np.lexsort((region_codes[keep], x0[keep], y0[keep], -areas[keep]))]
    if ids is not None:
        numbers = np.full(count, -1, dtype=np.int64)
        numbers[ranked] = np.arange(1, len(ranked) + 1)
        ids.reshape(-1)[flat] = numbers[region_of_pixel]
    codes, area = region_codes[ranked], areas[ranked]
    columns = zip(
        (codes // num_classes).tolist(),
        (codes % num_classes).tolist(),
        area.tolist(),
        x0[ranked].tolist(),
        y0[ranked].tolist(),
        (x1[ranked] - x0[ranked] + 1).tolist(),
        (y1[ranked] - y0[ranked] + 1).tolist(),
        (conf[ranked] / area).tolist(),  # float64 division, as float(a) / float(b)
        (prob[ranked] / area).tolist(),
        strict=True,
    )
    return [Region(number, *values) for number, values in enumerate(columns, start=1)]
