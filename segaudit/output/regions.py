"""regions.csv: every suspect region of every image, collected during pass 2.

The collector is an image sink, called from worker threads in whatever order blocks finish.
Each image's rows go at once to a spill file (so memory does not grow with the number of
regions), and only a small per-image summary and the rows' place in the spill file stay in
memory. :meth:`RegionCollector.write` then copies the rows into ``regions.csv`` in image
order, region id order: the file does not depend on worker count or timing.
"""

from __future__ import annotations

import csv
import io
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np
from numpy.typing import NDArray

from segaudit.core.pixel import PixelDigest
from segaudit.core.regions import Region, RegionOptions, find_regions
from segaudit.output.atomic import atomic_write

REGIONS_FILE = "regions.csv"
#: The columns of regions.csv; the CI gate reads them by these names.
REGION_COLUMNS = (
    "image_id",
    "region_id",
    "given",
    "predicted",
    "area",
    "x",
    "y",
    "width",
    "height",
    "mean_self_confidence",
    "mean_predicted_probability",
)


@dataclass(frozen=True, slots=True)
class RegionSummary:
    """What the ranking shows of an image's regions: how many, and the largest."""

    count: int
    largest_area: int = 0
    largest_given: int | None = None
    largest_predicted: int | None = None


def region_rows(
    image_id: str, regions: list[Region], names: tuple[str, ...]
) -> Iterator[list[str]]:
    """The CSV rows of one image's regions (class names, not ids)."""
    for r in regions:
        yield [
            image_id,
            str(r.region_id),
            names[r.given],
            names[r.predicted],
            str(r.area),
            str(r.x),
            str(r.y),
            str(r.width),
            str(r.height),
            f"{r.mean_self_confidence:.6g}",
            f"{r.mean_predicted_probability:.6g}",
        ]


class RegionCollector:
    """An image sink that finds each image's regions and spills their rows to a temp file."""

    def __init__(self, names: tuple[str, ...], options: RegionOptions | None = None) -> None:
        self.names = names
        self.options = options or RegionOptions()
        self.summaries: dict[int, RegionSummary] = {}
        self._places: dict[int, tuple[int, int]] = {}  # index -> (offset, length) in spill
        self._spill: IO[bytes] = tempfile.TemporaryFile(prefix="segaudit-regions-")  # noqa: SIM115 (closed in close())
        self._lock = threading.Lock()

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
        text = io.StringIO()
        csv.writer(text, lineterminator="\n").writerows(region_rows(image_id, regions, self.names))
        data = text.getvalue().encode("utf-8")
        with self._lock:
            self.summaries[index] = summary
            if data:
                offset = self._spill.seek(0, io.SEEK_END)
                self._spill.write(data)
                self._places[index] = (offset, len(data))

    def write(self, path: Path) -> None:
        """Write regions.csv atomically: image order, then region id."""
        with self._lock, atomic_write(path) as handle:
            csv.writer(handle, lineterminator="\n").writerow(REGION_COLUMNS)
            for index in sorted(self._places):
                offset, length = self._places[index]
                self._spill.seek(offset)
                handle.write(self._spill.read(length).decode("utf-8"))

    def close(self) -> None:
        self._spill.close()

    def __enter__(self) -> RegionCollector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_regions(path: Path) -> list[dict[str, str]]:
    """The rows of a regions.csv, for commands that work on a finished run (the report, the
    gate). Raises ValueError if the header lacks any of :data:`REGION_COLUMNS`."""
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in REGION_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(
                f"lacks column(s) {', '.join(missing)}; re-run `segaudit score` to write it"
            )
        return list(reader)
