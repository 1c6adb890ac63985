"""``score --save-masks``: per image with flagged pixels, two masks written during pass 2.

* ``flagged/<name>.png``: which pixels are flagged, and in which region: 0 = not flagged,
  k = region k of regions.csv, 255 (65535 in a 16-bit mask, used when an image has 255 or
  more regions) = flagged but in no region (smaller than ``--min-region-area``).
* ``suggested/<name>.png``: the input mask with each flagged pixel set to the model's class,
  in the input's own encoding (mode, palette, remap inverted; see :mod:`segaudit.io.encoding`).

The saver is an image sink that also finds the regions (once, for regions.csv and for the
region ids), so it stands in for the regions collector's own sink. Each image's files are
written into the run's staging folder as it finishes: nothing is kept in memory.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from segaudit.core.pixel import PixelDigest
from segaudit.core.regions import region_map
from segaudit.errors import DatasetError
from segaudit.io.encoding import ClassEncoder, RawMask, read_raw, write_raw
from segaudit.output.suspects import RegionCollector, scored_regions
from segaudit.rundir import NO_REGION, RunWriter


def region_id_mask(ids: NDArray[np.int64], count: int) -> RawMask:
    """The flagged mask: region ids in mode L, or 16-bit when there are 255 regions or more
    (ids past 65534 are written as "in no region")."""
    mode = "L" if count < NO_REGION["L"] else "I;16"
    none = NO_REGION[mode]
    pixels = np.where(ids < 0, none, np.minimum(ids, none))
    return RawMask(pixels.astype(np.uint8 if mode == "L" else np.uint16), mode)


class MaskSaver:
    """An image sink: regions to the collector, flagged and suggested masks to the run."""

    def __init__(
        self,
        collector: RegionCollector,
        writer: RunWriter,
        masks: Sequence[Path],
        encoder: ClassEncoder,
    ) -> None:
        self.collector = collector
        self.writer = writer
        self.masks = masks
        self.encoder = encoder
        self.saved: set[str] = set()
        self._lock = threading.Lock()

    def __call__(
        self, index: int, image_id: str, digest: PixelDigest, flagged: NDArray[np.bool_]
    ) -> None:
        options = self.collector.options
        regions, ids = region_map(digest, flagged, options)
        self.collector.add(scored_regions(options, index, image_id, digest, flagged, regions, ids))
        if not flagged.any():
            return
        raw = read_raw(image_id, self.masks[index])
        if raw.shape != flagged.shape:
            raise DatasetError(
                f"{self.masks[index]}: the mask is {raw.shape[0]}x{raw.shape[1]} but was audited "
                f"at {flagged.shape[0]}x{flagged.shape[1]}; --save-masks needs masks audited at "
                "their own size (no --resize labels, no --downsample)"
            )
        suggested = self.encoder.suggest(image_id, raw, flagged, digest.predicted[flagged])
        flagged_path, suggested_path = self.writer.saved_mask_paths(image_id)
        write_raw(region_id_mask(ids, len(regions)), flagged_path)
        write_raw(suggested, suggested_path)
        with self._lock:
            self.saved.add(image_id)

    def write_index(self) -> None:
        with self._lock:
            self.writer.write_saved_mask_index(self.saved)
