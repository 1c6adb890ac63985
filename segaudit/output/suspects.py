"""The suspect regions of every image, collected during pass 2 for ``regions.csv``.

The collector is an image sink, called from worker threads in whatever order blocks finish
(or fed regions found on Dask workers). Each image's rows go at once to a spill file
(:class:`segaudit.rundir.RegionSpill`), so memory does not grow with the number of regions;
only a small per-image summary stays in memory for the ranking. The rows are written in
image order, region id order: the file does not depend on worker count or timing.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray

from segaudit.core.pixel import PixelDigest
from segaudit.core.regions import Region, RegionOptions, find_regions
from segaudit.rundir import RegionRow, RegionSpill, RunWriter


@dataclass(frozen=True, slots=True)
class RegionSummary:
    """What the ranking shows of an image's regions: how many, and the largest."""

    count: int
    largest_area: int = 0
    largest_given: int | None = None
    largest_predicted: int | None = None


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
    """An image sink that finds each image's regions and spills their rows."""

    def __init__(self, names: tuple[str, ...], options: RegionOptions | None = None) -> None:
        self.names = names
        self.options = options or RegionOptions()
        self.summaries: dict[int, RegionSummary] = {}
        self._spill = RegionSpill()
        self._lock = threading.Lock()
        self._tiles: dict[int, list[Region]] = {}  # regions of tiled images being read

    def __call__(
        self, index: int, image_id: str, digest: PixelDigest, flagged: NDArray[np.bool_]
    ) -> None:
        self.add(index, image_id, find_regions(digest, flagged, self.options))

    def add(self, index: int, image_id: str, regions: list[Region]) -> None:
        """Keep one image's regions, found here or on a Dask worker."""
        summary = RegionSummary(len(regions))
        if regions:
            first = regions[0]  # the largest
            summary = RegionSummary(len(regions), first.area, first.given, first.predicted)
        rows = region_rows(image_id, regions, self.names)
        with self._lock:
            self.summaries[index] = summary
            self._spill.add(index, rows)

    def add_tile(
        self, index: int, image_id: str, top: int, digest: PixelDigest, flagged: NDArray[np.bool_]
    ) -> None:
        """Regions of one band of a tiled image (see segaudit.core.tiles): a region that
        crosses a band border is cut there."""
        found = [replace(r, y=r.y + top) for r in find_regions(digest, flagged, self.options)]
        with self._lock:
            self._tiles.setdefault(index, []).extend(found)

    def finish_tiles(self, index: int, image_id: str) -> None:
        """Number a tiled image's regions as find_regions does (largest first; ties by
        top, left, then pair) and keep them."""
        with self._lock:
            found = self._tiles.pop(index, [])
        found.sort(key=lambda r: (-r.area, r.y, r.x, r.given, r.predicted))
        self.add(index, image_id, [replace(r, region_id=i) for i, r in enumerate(found, 1)])

    def write(self, writer: RunWriter) -> None:
        """Write regions.csv into the run being written."""
        with self._lock:
            self._spill.write(writer)

    def close(self) -> None:
        self._spill.close()

    def __enter__(self) -> RegionCollector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
