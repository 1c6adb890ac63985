"""A finished run folder, read back for the gate: summary, ranking, regions, mask hashes."""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from segaudit.baseline import MASK_HASHES_FILE, file_sha256, read_mask_hashes
from segaudit.config import read_json_object
from segaudit.errors import DatasetError
from segaudit.output.regions import REGIONS_FILE
from segaudit.output.regions import read_regions as read_region_rows
from segaudit.output.table import RANKING_FILE, SUMMARY_FILE


@dataclass(frozen=True)
class RunImage:
    """One row of ranking.csv, as the gate needs it."""

    image_id: str
    score: float  # NaN: skipped or nothing valid
    flagged_pixels: int
    valid_pixels: int
    skipped: str


@dataclass
class RunData:
    """A finished ``segaudit score`` run folder, read for the gate."""

    folder: Path
    summary: dict[str, Any]
    images: list[RunImage]
    mask_hashes: dict[str, str] = field(default_factory=dict)

    @property
    def class_names(self) -> list[str]:
        return [str(n) for n in self.summary.get("class_names", [])]

    def mask_hash(self, image_id: str) -> str:
        return self.mask_hashes.get(image_id, "")


def _csv_rows(path: Path, needed: tuple[str, ...], what: str) -> list[dict[str, str]]:
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle)
            missing = [c for c in needed if c not in (reader.fieldnames or [])]
            if missing:
                raise DatasetError(f"{path}: {what} lacks column(s) {', '.join(missing)}")
            return list(reader)
    except FileNotFoundError:
        raise DatasetError(f"{path}: not found; re-run `segaudit score` to write it") from None
    except OSError as error:
        raise DatasetError(f"{path}: cannot read ({error.strerror})") from None


def _image(path: Path, row: dict[str, str]) -> RunImage:
    try:
        score = float(row["label_quality"]) if row["label_quality"] else math.nan
        return RunImage(
            row["image_id"],
            score,
            int(row["flagged_pixels"] or 0),
            int(row["valid_pixels"] or 0),
            row.get("skipped") or "",
        )
    except ValueError as error:
        raise DatasetError(f"{path}: bad row for {row.get('image_id')!r} ({error})") from None


def load_run(folder: Path, *, with_hashes: bool = False) -> RunData:
    """Read a run folder; ``with_hashes`` also loads (or computes) the mask hashes."""
    if not folder.is_dir():
        raise DatasetError(f"{folder}: run folder not found")
    summary = read_json_object(
        folder / SUMMARY_FILE,
        if_missing="pass the folder that `segaudit score --out` wrote",
        error=DatasetError,
    )
    ranking = folder / RANKING_FILE
    needed = ("image_id", "label_quality", "flagged_pixels", "valid_pixels")
    images = [_image(ranking, row) for row in _csv_rows(ranking, needed, "the ranking")]
    run = RunData(folder, summary, images)
    if with_hashes:
        run.mask_hashes = _mask_hashes(run)
    return run


def _mask_hashes(run: RunData) -> dict[str, str]:
    """masks.json of the run, else the hashes of the masks the summary names."""
    saved = run.folder / MASK_HASHES_FILE
    if saved.is_file():
        return read_mask_hashes(saved)
    labels = Path(str(run.summary.get("inputs", {}).get("labels", "")))
    if not labels.is_dir():
        raise DatasetError(
            f"{run.folder}: has no {MASK_HASHES_FILE} and the labels folder {labels} is not "
            "here; re-run `segaudit score` to record mask hashes for the baseline"
        )
    return {image.image_id: file_sha256(labels / f"{image.image_id}.png") for image in run.images}


def read_regions(run: RunData) -> list[dict[str, str]]:
    """The run's regions.csv rows (:func:`segaudit.output.regions.read_regions`), for the
    gate's region rules."""
    path = run.folder / REGIONS_FILE
    if not path.is_file():
        raise DatasetError(
            f"{run.folder}: the run has no {REGIONS_FILE}, which region rules need; "
            "re-run it with a segaudit that writes regions, or drop rules.regions"
        )
    try:
        return read_region_rows(path)
    except ValueError as error:  # missing columns, not UTF-8
        raise DatasetError(f"{path}: cannot read the regions table ({error})") from None
    except OSError as error:
        raise DatasetError(f"{path}: cannot read ({error.strerror})") from None
