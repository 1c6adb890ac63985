"""``segaudit report`` as a library call: read a finished run folder, write one HTML page.

The page is built from the run's files only (summary.json, ranking.csv, regions.csv and
overlays/), never from the dataset, so it can be made anywhere the run folder is copied.
``class_name`` narrows everything to one class, as the reference's ``filter_by_class``
does: the flagged pixels whose given or predicted class is that class. Per image that is
the area of the regions with that class (all of them with the default minimum region
area of 1 pixel; larger minimum areas leave small regions out).
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from segaudit.config import read_json_object
from segaudit.errors import SegauditError
from segaudit.output.overlay import (
    INDEX_FILE,
    LABELLED_REGIONS,
    MIN_LABELLED_AREA,
    OVERLAY_DIR,
    safe_file_stem,
)
from segaudit.output.regions import REGIONS_FILE, read_regions
from segaudit.output.report import REPORT_FILE, ReportData, write_report
from segaudit.output.table import RANKING_FILE, SUMMARY_FILE, read_ranking

#: Regions listed per gallery image: those with a numbered box in the overlay.
GALLERY_REGIONS = LABELLED_REGIONS


class ReportError(SegauditError):
    """The run folder cannot be reported on (missing or unreadable files, unknown class)."""


@dataclass(frozen=True)
class ReportRequest:
    """What ``segaudit report`` was asked to do."""

    run_dir: Path
    out: Path | None = None
    top: int = 20
    class_name: str | None = None


@dataclass
class ReportOutcome:
    """Where the report went and what it shows."""

    path: Path
    size_bytes: int
    images: int
    gallery: int
    flagged_pixels: int
    class_name: str | None
    top_issues: list[str] = field(default_factory=list)


def _read_json(path: Path) -> dict[str, Any]:
    return read_json_object(
        path,
        if_missing="is this a run folder? Run `segaudit score --out DIR` first",
        error=ReportError,
    )


def _read_rows(path: Path, reader: Any, required: bool) -> list[dict[str, str]] | None:
    if not path.is_file():
        if required:
            raise ReportError(f"{path}: not found; run `segaudit score --out DIR` first")
        return None
    try:
        rows: list[dict[str, str]] = reader(path)
    except (OSError, ValueError) as error:
        raise ReportError(f"{path}: cannot read ({error})") from None
    return rows


def _overlay_files(run_dir: Path, ids: list[str]) -> dict[str, Path]:
    """Overlay file per image id: from overlays/index.json, else by file name."""
    folder = run_dir / OVERLAY_DIR
    if not folder.is_dir():
        return {}
    index = folder / INDEX_FILE
    if index.is_file():
        names = _read_json(index)
        return {i: folder / str(n) for i, n in names.items() if (folder / str(n)).is_file()}
    by_stem: dict[str, list[Path]] = defaultdict(list)
    for path in folder.glob("*.png"):
        by_stem[path.stem.split("_", 1)[-1]].append(path)
    found = {}
    for image_id in ids:
        paths = by_stem.get(safe_file_stem(image_id), [])
        if len(paths) == 1:  # two ids with one file name: do not guess
            found[image_id] = paths[0]
    return found


def _boxed(region: dict[str, str]) -> bool:
    """Whether the overlay draws a numbered box for this region (the gallery lists those)."""
    return int(region["region_id"]) <= LABELLED_REGIONS and int(region["area"]) >= MIN_LABELLED_AREA


def _number(text: str) -> float:
    try:
        return float(text) if text else math.nan
    except ValueError:
        return math.nan


def _check_class(summary: dict[str, Any], class_name: str | None, summary_path: Path) -> None:
    names = [str(n) for n in summary.get("class_names", [])]
    if class_name is not None and class_name not in names:
        raise ReportError(
            f"{summary_path}: no class named {class_name!r}; valid names: {', '.join(names)}"
        )


def collect(request: ReportRequest) -> ReportData:
    """Everything the page shows, read from the run folder and narrowed to the class."""
    run_dir = request.run_dir
    if not run_dir.is_dir():
        raise ReportError(f"{run_dir}: run folder not found; run `segaudit score --out DIR` first")
    summary_path = run_dir / SUMMARY_FILE
    summary = _read_json(summary_path)
    _check_class(summary, request.class_name, summary_path)
    ranking = _read_rows(run_dir / RANKING_FILE, read_ranking, required=True) or []
    regions = _read_rows(run_dir / REGIONS_FILE, read_regions, required=False)
    if request.class_name is not None and regions is None:
        raise ReportError(
            f"{run_dir / REGIONS_FILE}: not found; --class needs it (score again with this "
            "version of segaudit)"
        )
    wanted = request.class_name
    by_image: dict[str, list[dict[str, str]]] = defaultdict(list)
    for row in regions or []:
        if wanted is None or wanted in (row["given"], row["predicted"]):
            by_image[row["image_id"]].append(row)

    images: list[dict[str, Any]] = []
    for row in ranking:
        image_id = row["image_id"]
        mine = by_image.get(image_id, [])
        if wanted is not None and not mine:
            continue
        classes = sorted({r["given"] for r in mine} | {r["predicted"] for r in mine})
        flagged = int(row["flagged_pixels"] or 0)
        if wanted is not None:
            flagged = sum(int(r["area"]) for r in mine)
        images.append(
            {
                "rank": int(row["rank"]),
                "image_id": image_id,
                "score": _number(row["label_quality"]),
                "flagged": flagged,
                "fraction": _number(row["flagged_fraction"]),
                "valid": int(row["valid_pixels"] or 0),
                "top_given": row["top_given"],
                "top_predicted": row["top_predicted"],
                "region_count": len(mine) if regions is not None else None,
                "largest_area": max((int(r["area"]) for r in mine), default=0),
                "classes": classes,
                "skipped": row.get("skipped", ""),
                "regions": mine,
            }
        )

    overlays = _overlay_files(run_dir, [row["image_id"] for row in ranking])
    suspects = [i for i in images if not i["skipped"] and i["flagged"] > 0]
    gallery = suspects[: max(0, request.top)]
    for image in gallery:
        image["overlay"] = overlays.get(image["image_id"])
        boxed = [r for r in image["regions"] if _boxed(r)][:GALLERY_REGIONS]
        image["more_regions"] = len(image["regions"]) - len(boxed)
        image["regions"] = boxed
    return ReportData(
        run_dir=run_dir,
        summary=summary,
        images=images,
        gallery=gallery,
        class_name=wanted,
        has_regions=regions is not None,
    )


def build_report(request: ReportRequest) -> ReportOutcome:
    """Write the HTML report for a run folder (``RUNDIR/report.html`` by default)."""
    data = collect(request)
    path = request.out or request.run_dir / REPORT_FILE
    write_report(data, path)
    return ReportOutcome(
        path=path,
        size_bytes=path.stat().st_size,
        images=len(data.images),
        gallery=len(data.gallery),
        flagged_pixels=data.flagged_pixels,
        class_name=data.class_name,
        top_issues=data.issue_sentences(3),
    )
