"""Suspect regions: connected flagged pixels that share a (given, predicted) class pair.

A reviewer fixes labels object by object, not pixel by pixel: "an unlabelled car at
x, y, w, h, labelled road" is one region. A region is a connected component of the flagged
pixels of one (given, predicted) pair. So a car half labelled road and half labelled
sidewalk gives two regions (car→road is not the same fix as car→sidewalk), and two touching
regions never mix pairs. ``scipy.ndimage.label`` labels all flagged pixels at once;
components that mix pairs are split by ``scipy.sparse.csgraph`` (see ``find_regions``).

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


def _half_neighbourhood(connectivity: int) -> list[tuple[int, int]]:
    """(dy, dx) offsets that reach every neighbour pair once: right, down, and diagonals."""
    return [(0, 1), (1, 0)] + ([(1, 1), (1, -1)] if connectivity == 8 else [])


def _split_by_pair(
    coarse: NDArray[np.int32],
    pixel_codes: NDArray[np.intp],
    flat: NDArray[np.intp],
    ncodes: int,
    connectivity: int,
) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """Region index of each flagged pixel (``flat``: their positions in the box, row-major;
    ``pixel_codes``: their pair codes), and each region's pair code. Coarse components
    (flagged pixels, any pair) that hold one pair are regions as they are. The pixels of
    components that mix pairs are joined again, neighbour to neighbour of the same pair, as
    a graph (scipy.sparse.csgraph): the work grows with those pixels, not with the box or
    the number of pairs."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    components = coarse.ravel()[flat]
    keys = components.astype(np.int64) * ncodes + pixel_codes
    groups, group_of_pixel = np.unique(keys, return_inverse=True)
    group_of_pixel = group_of_pixel.ravel().astype(np.intp)
    region_codes = (groups % ncodes).astype(np.intp)
    pairs_per_component = np.bincount(groups // ncodes)
    mixed = np.flatnonzero(pairs_per_component > 1)
    if mixed.size == 0:
        return group_of_pixel, region_codes
    in_mixed = np.isin(components, mixed)
    positions = flat[in_mixed]  # sorted, as flat is
    codes = pixel_codes[in_mixed]
    height, width = coarse.shape
    rows, cols = np.divmod(positions, width)
    sources, targets = [], []
    for dy, dx in _half_neighbourhood(connectivity):
        inside = (rows + dy < height) & (cols + dx >= 0) & (cols + dx < width)
        source = np.flatnonzero(inside)
        wanted = positions[source] + dy * width + dx
        target = np.minimum(np.searchsorted(positions, wanted), positions.size - 1)
        joined = (positions[target] == wanted) & (codes[target] == codes[source])
        sources.append(source[joined])
        targets.append(target[joined])
    source, target = np.concatenate(sources), np.concatenate(targets)
    graph = coo_matrix(
        (np.ones(source.size, dtype=np.int8), (source, target)),
        shape=(positions.size, positions.size),
    )
    count, part = connected_components(graph, directed=False)
    first = np.zeros(count, dtype=np.intp)
    first[part[::-1]] = np.arange(positions.size)[::-1]  # a pixel of each part, for its code
    group_of_pixel[in_mixed] = len(groups) + part
    return group_of_pixel, np.concatenate([region_codes, codes[first]]).astype(np.intp)


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

    One ``ndimage.label`` over all flagged pixels, then a split by (given, predicted) pair
    where a component mixes pairs; boxes and means come from the flagged pixels alone."""
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
    from scipy import ndimage  # on first use: commands that label nothing start faster

    options = options or RegionOptions()
    box = _bounds(flagged)
    if box is None:
        return []
    top, left = box[0].start, box[1].start
    mask = flagged[box]
    flat = np.flatnonzero(mask)
    given = digest.given[box].ravel()[flat]
    predicted = digest.predicted[box].ravel()[flat]
    num_classes = int(max(given.max(), predicted.max())) + 1
    coarse, _ = ndimage.label(mask, structure=options.structure)
    region_of_pixel, region_codes = _split_by_pair(
        coarse,
        given * num_classes + predicted,
        flat,
        num_classes * num_classes,
        options.connectivity,
    )
    count = len(region_codes)
    areas = np.bincount(region_of_pixel, minlength=count)
    conf = np.bincount(
        region_of_pixel, weights=digest.self_confidence[box].ravel()[flat], minlength=count
    )
    prob = np.bincount(region_of_pixel, weights=digest.max_prob[box].ravel()[flat], minlength=count)
    order = np.argsort(region_of_pixel, kind="stable")
    starts = np.concatenate([[0], np.cumsum(areas)[:-1]]).astype(np.intp)
    rows, cols = np.divmod(flat, mask.shape[1])
    y0, y1 = _reduce_by_region(rows, order, starts)
    x0, x1 = _reduce_by_region(cols, order, starts)
    keep = np.flatnonzero(areas >= options.min_area)
    # largest first; ties by top, left, then (given, predicted): deterministic numbering
    ranked = keep[np.lexsort((region_codes[keep], x0[keep], y0[keep], -areas[keep]))]
    if ids is not None:
        numbers = np.full(count, -1, dtype=np.int64)
        numbers[ranked] = np.arange(1, len(ranked) + 1)
        inside = np.zeros(mask.size, dtype=np.int64)  # ids[box] is a strided view
        inside[flat] = numbers[region_of_pixel]
        ids[box] = inside.reshape(mask.shape)
    return [
        Region(
            number,
            int(region_codes[r]) // num_classes,
            int(region_codes[r]) % num_classes,
            int(areas[r]),
            int(left + x0[r]),
            int(top + y0[r]),
            int(x1[r] - x0[r] + 1),
            int(y1[r] - y0[r] + 1),
            float(conf[r]) / float(areas[r]),
            float(prob[r]) / float(areas[r]),
        )
        for number, r in enumerate(ranked, start=1)
    ]
