"""What every exporter gets: per suspect image its current class ids and its regions."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from segaudit.rundir import RegionRow


@dataclass(frozen=True)
class ClassInfo:
    """The run's classes: names and colours, and the values read as ignored."""

    names: tuple[str, ...]
    colors: tuple[tuple[int, int, int], ...]


@dataclass
class ExportItem:
    """One suspect image: its id, where the tool finds the picture, its current mask as
    class ids (``valid`` False where ignored) and its regions with their pixels."""

    image_id: str
    image_path: str
    labels: NDArray[np.integer]
    valid: NDArray[np.bool_]
    region_ids: NDArray[np.int64]  # 0 = not flagged; k = region k
    regions: list[RegionRow]
    score: float

    @property
    def height(self) -> int:
        return int(self.labels.shape[0])

    @property
    def width(self) -> int:
        return int(self.labels.shape[1])

    def class_masks(self) -> Iterator[tuple[int, NDArray[np.bool_]]]:
        """(class id, pixels) for every class present (ignored pixels in none)."""
        present: list[int] = np.unique(self.labels[self.valid]).tolist()
        for k in present:
            yield int(k), self.valid & (self.labels == k)

    def region_mask(self, region_id: int) -> NDArray[np.bool_]:
        mask: NDArray[np.bool_] = self.region_ids == region_id
        return mask
