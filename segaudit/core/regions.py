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


def _neighbour_pairs(
    connectivity: int, shape: tuple[int, ...]
) -> list[tuple[tuple[slice, slice], tuple[slice, slice]]]:
    """(pixel, neighbour) windows for each half-neighbourhood offset: right, down, diagonals."""
    h, w = shape
    offsets = [(0, 1), (1, 0)] + ([(1, 1), (1, -1)] if connectivity == 8 else [])
    pairs = []
    for dy, dx in offsets:
        rows = (slice(0, h - dy), slice(dy, h))
        cols = (slice(0, w - 1), slice(1, w)) if dx == 1 else (slice(1, w), slice(0, w - 1))
        if dx == 0:
            cols = (slice(0, w), slice(0, w))
        pairs.append(((rows[0], cols[0]), (rows[1], cols[1])))
    return pairs


def _split_by_pair(
    coarse: NDArray[np.int32],
    codes: NDArray[np.intp],
    flat: NDArray[np.intp],
    ncodes: int,
    connectivity: int,
) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """Region index of each flagged pixel (``flat``: their positions), and each region's
    pair code. Coarse components (flagged pixels, any pair) that hold one pair are regions
    as they are. The pixels of components that mix pairs are joined again, neighbour to
    neighbour of the same pair, as a graph (scipy.sparse.csgraph), all at once: no loop
    over components or pairs, so scattered pixels of many pairs cost no more than blobs."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    pixel_codes = codes.ravel()[flat]
    keys = coarse.ravel()[flat].astype(np.int64) * ncodes + pixel_codes
    groups, group_of_pixel = np.unique(keys, return_inverse=True)
    group_of_pixel = group_of_pixel.ravel()
    region_codes = groups % ncodes
    pairs_per_component = np.bincount(groups // ncodes)
    mixed = np.flatnonzero(pairs_per_component > 1)
    if mixed.size == 0:
        return group_of_pixel.astype(np.intp), region_codes.astype(np.intp)
    in_mixed = np.zeros(coarse.shape, dtype=bool)
    in_mixed.ravel()[flat] = np.isin(coarse.ravel()[flat], mixed)
    node = np.full(coarse.shape, -1, dtype=np.int64)
    positions = np.flatnonzero(in_mixed)
    node.ravel()[positions] = np.arange(positions.size)
    sources, targets = [], []
    for here, there in _neighbour_pairs(connectivity, coarse.shape):
        joined = in_mixed[here] & in_mixed[there] & (codes[here] == codes[there])
        sources.append(node[here][joined])
        targets.append(node[there][joined])
    source, target = np.concatenate(sources), np.concatenate(targets)
    graph = coo_matrix(
        (np.ones(source.size, dtype=np.int8), (source, target)),
        shape=(positions.size, positions.size),
    )
    count, part = connected_components(graph, directed=False)
    first = np.zeros(count, dtype=np.intp)
    first[part[::-1]] = np.arange(positions.size)[::-1]  # a pixel of each part, for its code
    region_of_pixel = group_of_pixel.astype(np.intp)
    mixed_pixels = in_mixed.ravel()[flat]
    region_of_pixel[mixed_pixels] = len(groups) + part
    part_codes = codes.ravel()[positions[first]]
    return region_of_pixel, np.concatenate([region_codes, part_codes]).astype(np.intp)


def find_regions(
    digest: PixelDigest, flagged: NDArray[np.bool_], options: RegionOptions | None = None
) -> list[Region]:
    """The suspect regions of one image, numbered from 1, largest first.

    One ``ndimage.label`` over all flagged pixels, then a split by (given, predicted) pair
    where a component mixes pairs: the cost does not grow with the number of pairs."""
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
    codes = np.full(mask.shape, -1, dtype=np.intp)
    codes.ravel()[flat] = given * num_classes + predicted
    coarse, _ = ndimage.label(mask, structure=options.structure)
    region_of_pixel, region_codes = _split_by_pair(
        coarse, codes, flat, num_classes * num_classes, options.connectivity
    )
    count = len(region_codes)
    areas = np.bincount(region_of_pixel, minlength=count)
    conf = np.bincount(
        region_of_pixel, weights=digest.self_confidence[box].ravel()[flat], minlength=count
    )
    prob = np.bincount(region_of_pixel, weights=digest.max_prob[box].ravel()[flat], minlength=count)
    labelled = np.zeros(mask.shape, dtype=np.int64)
    labelled.ravel()[flat] = region_of_pixel + 1
    found: list[tuple[int, int, int, int, int, int, int, float, float]] = []
    for index, window in enumerate(ndimage.find_objects(labelled)):
        area = int(areas[index])
        if window is None or area < options.min_area:
            continue
        rows, cols = window
        code = int(region_codes[index])
        found.append(
            (
                code // num_classes,
                code % num_classes,
                area,
                left + cols.start,
                top + rows.start,
                cols.stop - cols.start,
                rows.stop - rows.start,
                float(conf[index]) / area,
                float(prob[index]) / area,
            )
        )
    found.sort(key=lambda r: (-r[2], r[4], r[3], r[0], r[1]))
    return [Region(i, *row) for i, row in enumerate(found, start=1)]
