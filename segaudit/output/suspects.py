"""The suspect regions of every image, collected during pass 2 for ``regions.csv``, and
their review queue: a ``region_score`` and a dataset-wide ``region_rank``.

The collector is an image sink, called from worker threads in whatever order blocks finish
(or fed what Dask workers found). Each image's rows go at once to a spill file
(:class:`segaudit.rundir.RegionSpill`), so memory does not grow with the rows; what stays
is a small per-image summary for the ranking and, per region, the part of its score known
in pass 2 (:func:`segaudit.core.region_score.region_logits`) and its class pair. The rest
of the score needs every image (how common each pair is across the dataset), so scores and
ranks are finished when the file is written, in image order, region id order: the file does
not depend on worker count or timing.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray

from segaudit.core.methods import DatasetContext, ImageEvidence, get_method
from segaudit.core.pixel import PixelDigest
from segaudit.core.region_score import (
    finish_scores,
    pair_shares,
    region_features,
    region_logits,
    region_rank,
)
from segaudit.core.regions import Region, RegionOptions, region_map
from segaudit.rundir import RegionRow, RegionSpill, RunWriter


@dataclass(frozen=True, slots=True)
class RegionSummary:
    """What the ranking shows of an image's regions: how many, and the largest."""

    count: int
    largest_area: int = 0
    largest_given: int | None = None
    largest_predicted: int | None = None


@dataclass(frozen=True)
class ImageRegions:
    """One image's regions and their pass-2 score parts: what a worker sends back."""

    index: int
    image_id: str
    regions: list[Region]
    logits: NDArray[np.float64]


def image_regions(
    options: RegionOptions,
    index: int,
    image_id: str,
    digest: PixelDigest,
    flagged: NDArray[np.bool_],
) -> ImageRegions:
    """Find one image's regions and the pass-2 part of their scores (runs where the image
    is: a local thread or a Dask worker)."""
    regions, ids = region_map(digest, flagged, options)
    return scored_regions(options, index, image_id, digest, flagged, regions, ids)


def scored_regions(
    options: RegionOptions,
    index: int,
    image_id: str,
    digest: PixelDigest,
    flagged: NDArray[np.bool_],
    regions: list[Region],
    ids: NDArray[np.int64] | None = None,
) -> ImageRegions:
    """One image's regions (found already; ``ids``: their map, if made) with the pass-2
    part of their scores."""
    if not regions:
        return ImageRegions(index, image_id, [], np.zeros(0))
    features = region_features(digest, flagged, regions, options, ids=ids)
    return ImageRegions(index, image_id, regions, region_logits(regions, features))


def region_rows(image_id: str, regions: list[Region], names: tuple[str, ...]) -> list[RegionRow]:
    """One image's regions as rows of regions.csv (class names, not ids)."""
    return [
        RegionRow(
            image_id,
            r.region_id,
            names[r.given],
            names[r.predicted],
            r.area,
            r.x,
            r.y,
            r.width,
            r.height,
            r.mean_self_confidence,
            r.mean_predicted_probability,
        )
        for r in regions
    ]


class RegionCollector:
    """An image sink that finds each image's regions, spills their rows and keeps what
    their scores need."""

    def __init__(self, names: tuple[str, ...], options: RegionOptions | None = None) -> None:
        self.names = names
        self.options = options or RegionOptions()
        self.summaries: dict[int, RegionSummary] = {}
        self._spill = RegionSpill()
        # per image: pass-2 logits, and the regions' (given, predicted) as class ids
        self._parts: dict[int, tuple[NDArray[np.float64], NDArray[np.intp], NDArray[np.intp]]]
        self._parts = {}
        self._scores: dict[int, NDArray[np.float64]] | None = None
        self._lock = threading.Lock()
        self._tiles: dict[int, list[tuple[Region, float]]] = {}  # tiled images being read

    def __call__(
        self, index: int, image_id: str, digest: PixelDigest, flagged: NDArray[np.bool_]
    ) -> None:
        self.add(image_regions(self.options, index, image_id, digest, flagged))

    def add(self, found: ImageRegions) -> None:
        """Keep one image's regions, found here or on a Dask worker."""
        regions = found.regions
        summary = RegionSummary(len(regions))
        if regions:
            first = regions[0]  # the largest
            summary = RegionSummary(len(regions), first.area, first.given, first.predicted)
        spilled = RegionSpill.format(region_rows(found.image_id, regions, self.names))
        given = np.array([r.given for r in regions], np.intp)
        predicted = np.array([r.predicted for r in regions], np.intp)
        with self._lock:
            self.summaries[found.index] = summary
            self._spill.store(found.index, spilled)
            if regions:
                self._parts[found.index] = (found.logits, given, predicted)
            self._scores = None

    def add_tile(
        self, index: int, image_id: str, top: int, digest: PixelDigest, flagged: NDArray[np.bool_]
    ) -> None:
        """Regions of one band of a tiled image (see segaudit.core.tiles), with their
        pass-2 score parts from the band: a region that crosses a band border is cut there."""
        band = image_regions(self.options, index, image_id, digest, flagged)
        found = [
            (replace(r, y=r.y + top), float(v))
            for r, v in zip(band.regions, band.logits, strict=True)
        ]
        with self._lock:
            self._tiles.setdefault(index, []).extend(found)

    def finish_tiles(self, index: int, image_id: str) -> None:
        """Number a tiled image's regions as find_regions does (largest first; ties by
        top, left, then pair) and keep them."""
        with self._lock:
            found = self._tiles.pop(index, [])
        found.sort(key=lambda rv: (-rv[0].area, rv[0].y, rv[0].x, rv[0].given, rv[0].predicted))
        regions = [replace(r, region_id=i) for i, (r, _) in enumerate(found, 1)]
        logits = np.array([v for _, v in found], np.float64)
        self.add(ImageRegions(index, image_id, regions, logits))

    def scores(self, images: int) -> dict[int, NDArray[np.float64]]:
        """Each image's region scores (region id order), once every image is in:
        ``images`` is the number of images audited (the pair shares' denominator)."""
        with self._lock:
            if self._scores is None:
                k = len(self.names)
                pairs = (
                    zip(g.tolist(), p.tolist(), strict=True) for _, g, p in self._parts.values()
                )
                shares = pair_shares(pairs, images, k)
                self._scores = {
                    index: finish_scores(logits, given, predicted, shares)
                    for index, (logits, given, predicted) in self._parts.items()
                }
            return self._scores

    def write(self, writer: RunWriter, images: int) -> None:
        """Write regions.csv into the run being written, with scores and ranks."""
        scores = self.scores(images)
        order = sorted(scores)
        ranks = dict(zip(order, region_rank([scores[i] for i in order]), strict=True))

        def finish(index: int) -> tuple[list[float], list[int]]:
            return scores[index].tolist(), [int(rank) for rank in ranks[index]]

        with self._lock:
            self._spill.write(writer, finish)

    def close(self) -> None:
        self._spill.close()

    def __enter__(self) -> RegionCollector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def region_method_score(method: str, valid_pixels: int, scores: NDArray[np.float64]) -> float:
    """An image's score by a region method of :mod:`segaudit.core.methods` (those read only
    whether the image has valid pixels, not their values: one stands for them)."""
    present = np.ones(min(valid_pixels, 1), np.float64)
    evidence = ImageEvidence(present, region_scores=scores)
    return get_method(method)(evidence, DatasetContext())
