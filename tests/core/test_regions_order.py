"""Region numbering is exactly what it was with ``scipy.ndimage.label`` and a
``scipy.sparse.csgraph`` split (segaudit before issue 12): the plain-numpy labelling must
give the same regions in the same order, ties included, so regions.csv does not change.
The earlier implementation is kept here as the oracle (scipy is a test-time import)."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.typing import NDArray

from segaudit.core.pixel import PixelDigest, digest_image
from segaudit.core.regions import (
    Region,
    RegionOptions,
    _half_neighbourhood,
    _reduce_by_region,
    component_roots,
    find_regions,
)


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


def earlier_find_regions(
    digest: PixelDigest, flagged: NDArray[np.bool_], options: RegionOptions
) -> list[Region]:
    """find_regions as it was (ndimage.label, then _split_by_pair)."""
    from scipy import ndimage

    rows_any = np.flatnonzero(flagged.any(axis=1))
    if rows_any.size == 0:
        return []
    cols_any = np.flatnonzero(flagged.any(axis=0))
    box = (
        slice(int(rows_any[0]), int(rows_any[-1]) + 1),
        slice(int(cols_any[0]), int(cols_any[-1]) + 1),
    )
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
    ranked = keep[np.lexsort((region_codes[keep], x0[keep], y0[keep], -areas[keep]))]
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


def _digest(given: NDArray[np.intp], predicted: NDArray[np.intp], k: int, seed: int) -> PixelDigest:
    rng = np.random.default_rng(seed)
    h, w = given.shape
    probs = rng.random((k, h, w)).astype(np.float32) * 0.2
    rows, cols = np.indices((h, w))
    probs[predicted, rows, cols] = 0.5 + rng.random((h, w)).astype(np.float32) * 0.3
    probs /= probs.sum(axis=0)
    return digest_image("x", given, probs)


@pytest.mark.parametrize("connectivity", [4, 8])
@pytest.mark.parametrize("min_area", [1, 3])
@pytest.mark.parametrize("seed", range(12))
def test_same_regions_in_the_same_order_as_before(
    connectivity: int, min_area: int, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    k = 2 + seed % 4
    h, w = int(rng.integers(1, 40)), int(rng.integers(1, 60))
    coarse_blocks = rng.integers(0, k, (h // 4 + 1, w // 4 + 1))
    given = np.kron(coarse_blocks, np.ones((4, 4), int))[:h, :w]
    noisy = rng.random((h, w)) < 0.3
    given = np.where(noisy, rng.integers(0, k, (h, w)), given)
    predicted = rng.integers(0, k, (h, w))
    digest = _digest(given, predicted, k, seed)
    density = (0.2, 0.5, 0.9)[seed % 3]  # sparse specks (many ties), blobs, nearly all
    flagged = digest.disagrees & (rng.random((h, w)) < density)
    options = RegionOptions(connectivity, min_area)
    assert find_regions(digest, flagged, options) == earlier_find_regions(digest, flagged, options)


def test_roots_are_the_smallest_node_of_each_component() -> None:
    rng = np.random.default_rng(5)
    n = 300
    sources = rng.integers(0, n, 250)
    targets = rng.integers(0, n, 250)
    roots = component_roots(n, sources.astype(np.intp), targets.astype(np.intp))
    # the same by repeated relaxation (slow, obviously right)
    label = np.arange(n)
    while True:
        new = label.copy()
        np.minimum.at(new, sources, label[targets])
        np.minimum.at(new, targets, label[sources])
        if np.array_equal(new, label):
            break
        label = new
    np.testing.assert_array_equal(roots, label)
