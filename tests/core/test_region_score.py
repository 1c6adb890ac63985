"""The region queue (segaudit.core.region_score) and the image-scoring methods
(segaudit.core.methods) on images whose answers can be worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.typing import NDArray

from segaudit.api import get_label_quality_scores
from segaudit.core import methods
from segaudit.core.image import softmin_score
from segaudit.core.pixel import PixelDigest
from segaudit.core.region_score import (
    DEFAULT_WEIGHTS,
    EDGE_BAND,
    FEATURES,
    RegionFeatures,
    feature_matrix,
    pair_shares,
    region_features,
    region_rank,
    region_scores,
)
from segaudit.core.regions import Region, RegionOptions, find_regions, region_map
from segaudit.errors import OptionError


def _digest(given: NDArray[np.intp], predicted: NDArray[np.intp], conf: float) -> PixelDigest:
    sc = np.where(given == predicted, 0.9, conf)
    return PixelDigest(
        np.ones(given.shape, bool), given, predicted, sc.astype(np.float64),
        np.full(given.shape, 0.9), False,
    )  # fmt: skip


def _edge_band(given: NDArray[np.intp]) -> NDArray[np.bool_]:
    """Brute force: pixels within EDGE_BAND (chessboard) of a pixel whose 3×3 neighbourhood
    holds another class."""
    h, w = given.shape
    edge = np.zeros((h, w), bool)
    for y in range(h):
        for x in range(w):
            window = given[max(0, y - 1) : y + 2, max(0, x - 1) : x + 2]
            edge[y, x] = (window != given[y, x]).any()
    band = np.zeros((h, w), bool)
    for y, x in zip(*np.nonzero(edge), strict=True):
        r = EDGE_BAND - 1
        band[max(0, y - r) : y + r + 1, max(0, x - r) : x + r + 1] = True
    return band


def test_a_whole_object_flagged_as_another_class() -> None:
    given = np.zeros((20, 24), np.intp)
    given[4:14, 6:16] = 1  # a 10×10 object
    predicted = np.where(given == 1, 2, 0)
    digest = _digest(given, predicted, 0.01)
    flagged = given == 1
    regions = find_regions(digest, flagged)
    (feature,) = region_features(digest, flagged, regions)
    assert feature.object_coverage == 1.0
    assert feature.thickness == 5.0  # the centre of a 10×10 square is 5 steps from outside
    assert feature.edge_fraction == pytest.approx(_edge_band(given)[flagged].mean())


def test_a_thin_band_on_an_outline() -> None:
    given = np.zeros((12, 12), np.intp)
    given[:, 6:] = 1
    predicted = given.copy()
    predicted[:, 6] = 0  # the model puts the edge one pixel to the right
    digest = _digest(given, predicted, 0.3)
    flagged = predicted != given
    regions = find_regions(digest, flagged)
    (band,) = region_features(digest, flagged, regions)
    assert band.edge_fraction == 1.0
    assert band.thickness == 1.0
    assert band.object_coverage == pytest.approx(12 / 72)


def test_regions_of_one_pair_get_their_own_features() -> None:
    """Two separate regions of one pair, listed largest first, keep their own numbers."""
    given = np.zeros((20, 30), np.intp)
    given[2:6, 2:6] = 1
    given[10:18, 15:25] = 1
    predicted = np.where(given == 1, 2, 0)
    digest = _digest(given, predicted, 0.01)
    flagged = given == 1
    regions = find_regions(digest, flagged)
    small, large = sorted(region_features(digest, flagged, regions), key=lambda f: f.thickness)
    assert [r.area for r in regions] == [80, 16]
    assert region_features(digest, flagged, regions) == [large, small]
    assert (large.thickness, small.thickness) == (4.0, 2.0)


def _reference_features(
    digest: PixelDigest, flagged: NDArray[np.bool_], regions: list[Region], options: RegionOptions
) -> list[RegionFeatures]:
    """The features by their definitions, on whole-image arrays: each pair's mask and each
    given class labelled by ``ndimage.label``, the edge band by filters of the whole image."""
    from scipy import ndimage

    given = np.where(digest.valid, digest.given, -1)
    edge = ndimage.maximum_filter(given, size=3, mode="nearest") != ndimage.minimum_filter(
        given, size=3, mode="nearest"
    )
    edges = ndimage.binary_dilation(edge, iterations=EDGE_BAND - 1) if EDGE_BAND > 1 else edge
    out = []
    for r in regions:
        mask = flagged & (digest.given == r.given) & (digest.predicted == r.predicted)
        labelled, _ = ndimage.label(mask & digest.valid, structure=options.structure)
        objects, _ = ndimage.label(digest.valid & (digest.given == r.given), options.structure)
        box = (slice(r.y, r.y + r.height), slice(r.x, r.x + r.width))
        (index,) = [  # the one component of this pair with the region's box and area
            i
            for i, b in enumerate(ndimage.find_objects(labelled), start=1)
            if b == box and np.count_nonzero(labelled[b] == i) == r.area
        ]
        inside = labelled[box] == index
        padded = np.pad(inside, 1)
        thickness = float(ndimage.distance_transform_cdt(padded, metric="chessboard").max())
        under = np.bincount(objects[box][inside])
        main = int(under.argmax())  # ties: the first in raster order
        coverage = r.area / float(np.count_nonzero(objects == main))
        on_edge = float(np.count_nonzero(edges[box][inside])) / r.area
        out.append(RegionFeatures(on_edge, thickness, min(1.0, coverage)))
    return out


@pytest.mark.parametrize("connectivity", [4, 8])
@pytest.mark.parametrize("seed", range(6))
def test_features_equal_their_whole_image_definitions(connectivity: int, seed: int) -> None:
    """The whole-array steps (edge band in numpy, every region's thickness by peeling, the
    given objects as runs) give the same floats as labelling each pair and each given class
    over the whole image and transforming each region alone; ignored pixels, image borders,
    touching regions, objects that reach far beyond a region and ties between objects under
    a region included."""
    rng = np.random.default_rng(seed)
    h, w = rng.integers(12, 40, 2)
    cell = int(rng.integers(1, 5))
    coarse = rng.integers(0, 4, (-(-h // cell), -(-w // cell)))
    given = np.repeat(np.repeat(coarse, cell, 0), cell, 1)[:h, :w].astype(np.intp)
    valid = rng.random((h, w)) > 0.1
    given[~valid] = 0
    predicted = np.where(rng.random((h, w)) < 0.5, rng.integers(0, 4, (h, w)), given)
    flagged = valid & (predicted != given) & (rng.random((h, w)) < (0.9 if seed else 0.99))
    digest = PixelDigest(
        valid, given, predicted, rng.random((h, w)), rng.random((h, w)), False
    )  # fmt: skip
    for min_area in (1, 3):
        options = RegionOptions(connectivity, min_area)
        regions = find_regions(digest, flagged, options)
        expected = _reference_features(digest, flagged, regions, options)
        assert region_features(digest, flagged, regions, options) == expected
        ids = region_map(digest, flagged, options)[1]
        assert region_features(digest, flagged, regions, options, ids=ids) == expected


def test_score_prefers_a_confident_thick_region_to_a_thin_unsure_band() -> None:
    given = np.zeros((30, 30), np.intp)
    given[:, 15:] = 1
    given[5:15, 3:11] = 2  # an object the model calls class 0
    predicted = given.copy()
    predicted[5:15, 3:11] = 0
    predicted[:, 15] = 0  # and a band along the 0|1 edge
    digest = _digest(given, predicted, 0.002)
    digest.self_confidence[:, 15] = 0.3
    flagged = predicted != given
    regions = find_regions(digest, flagged)
    feats = region_features(digest, flagged, regions)
    shares = pair_shares([[(r.given, r.predicted) for r in regions]], 1, 3)
    scores = region_scores(regions, feats, shares)
    by_pair = {(r.given, r.predicted): s for r, s in zip(regions, scores, strict=True)}
    assert by_pair[(2, 0)] > by_pair[(1, 0)]
    assert ((scores > 0) & (scores < 1)).all()
    # the streamed split (pass-2 logits, pair shares at the end) is the logistic formula
    w = np.array([DEFAULT_WEIGHTS[name] for name in FEATURES])
    logit = feature_matrix(regions, feats, shares) @ w + DEFAULT_WEIGHTS["bias"]
    np.testing.assert_allclose(scores, 1 / (1 + np.exp(-logit)), rtol=1e-12)


def test_pair_shares_count_images_not_regions() -> None:
    shares = pair_shares([[(1, 0), (1, 0)], [(1, 0), (2, 1)], []], 4, 3)
    assert shares[1, 0] == 0.5 and shares[2, 1] == 0.25 and shares.sum() == 0.75


def test_region_rank_is_dataset_wide_and_deterministic() -> None:
    ranks = region_rank([np.array([0.2, 0.9]), np.array([]), np.array([0.9, 0.5])])
    assert [r.tolist() for r in ranks] == [[4, 1], [], [2, 3]]  # the tie keeps dataset order


def test_methods_equal_the_existing_scores() -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, (4, 8, 10))
    probs = rng.dirichlet(np.ones(3), (4, 8, 10)).transpose(0, 3, 1, 2)
    softmin, pixels = get_label_quality_scores(labels, probs)
    npi, _ = get_label_quality_scores(labels, probs, method="num_pixel_issues")
    context = methods.DatasetContext()
    for i in range(4):
        sc = pixels[i].ravel()
        flagged = round((1 - npi[i]) * sc.size)
        image = methods.ImageEvidence(sc, labels[i].ravel(), flagged)
        assert methods.get_method("softmin")(image, context) == softmin[i]
        assert methods.softmin(image, context) == softmin_score(sc, 0.1)
        assert methods.num_pixel_issues(image, context) == pytest.approx(npi[i])
        assert methods.worst_pixel(image, context) == sc.min()


def test_threshold_softmin_and_region_evidence() -> None:
    sc = np.array([0.5, 0.9, 0.2])
    given = np.array([0, 0, 1])
    thresholds = np.array([0.5, 0.1])
    context = methods.DatasetContext(0.1, thresholds)
    image = methods.ImageEvidence(sc, given, 1, np.array([0.3, 0.8]))
    ratios = np.array([1.0, 1.0, 1.0])  # each pixel at or above its class threshold
    assert methods.threshold_softmin(image, context) == softmin_score(ratios, 0.1)
    assert methods.region_evidence(image, context) == pytest.approx(0.2)
    assert methods.region_evidence(methods.ImageEvidence(sc), context) == 1.0
    assert methods.region_none(image, context) == pytest.approx(0.7 * 0.2)
    assert methods.region_none(methods.ImageEvidence(sc), context) == 1.0
    with pytest.raises(OptionError, match="thresholds"):
        methods.threshold_softmin(methods.ImageEvidence(sc), methods.DatasetContext())
    with pytest.raises(OptionError, match="softmin, num_pixel_issues"):
        methods.get_method("best")
    assert set(methods.NEEDS) == set(methods.METHODS)
    assert next(iter(methods.METHODS)) == methods.DEFAULT_METHOD
