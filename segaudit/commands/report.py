"""``segaudit report``: read a finished run folder, write one HTML page.

The page is built from the run's files only (read and validated by :mod:`segaudit.rundir`),
never from the dataset, so it can be made anywhere the run folder is copied.
``class_name`` narrows everything to one class, as the reference's ``filter_by_class``
does: the flagged pixels whose given or predicted class is that class. Per image that is
the area of the regions with that class (all of them with the default minimum region
area of 1 pixel; larger minimum areas leave small regions out).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from segaudit.errors import OptionError
from segaudit.output.html import ReportData, render_report
from segaudit.output.overlay import LABELLED_REGIONS, MIN_LABELLED_AREA
from segaudit.rundir import RegionRow, Run, read_run, write_report_file

#: Regions listed per gallery image: those with a numbered box in the overlay.
GALLERY_REGIONS = LABELLED_REGIONS


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


def _boxed(region: RegionRow) -> bool:
    """Whether the overlay draws a numbered box for this region (the gallery lists those)."""
    return region.region_id <= LABELLED_REGIONS and region.area >= MIN_LABELLED_AREA


def collect(request: ReportRequest, run: Run | None = None) -> ReportData:
    """Everything the page shows, read from the run folder and narrowed to the class."""
    run = run or read_run(request.run_dir)
    wanted = request.class_name
    if wanted is not None and wanted not in run.class_names:
        raise OptionError(
            f"--class {wanted!r}: no such class in {request.run_dir}; valid names: "
            f"{', '.join(run.class_names)}"
        )
    has_regions = run.has_regions()
    if wanted is not None and not has_regions:
        raise OptionError(f"{request.run_dir}: the run has no regions.csv, which --class needs")
    by_image: dict[str, list[RegionRow]] = defaultdict(list)
    kept: list[RegionRow] = []
    for region in run.regions() if has_regions else []:
        if wanted is None or wanted in (region.given, region.predicted):
            by_image[region.image_id].append(region)
            kept.append(region)

    images: list[dict[str, Any]] = []
    for row in run.ranking:
        mine = by_image.get(row.image_id, [])
        if wanted is not None and not mine:
            continue
        classes = sorted({r.given for r in mine} | {r.predicted for r in mine})
        flagged = row.flagged_pixels if wanted is None else sum(r.area for r in mine)
        images.append(
            {
                "rank": row.rank,
                "image_id": row.image_id,
                "score": row.label_quality,
                "flagged": flagged,
                "fraction": row.flagged_fraction,
                "valid": row.valid_pixels,
                "top_given": row.top_given,
                "top_predicted": row.top_predicted,
                "region_count": len(mine) if has_regions else None,
                "largest_area": max((r.area for r in mine), default=0),
                "classes": classes,
                "skipped": row.skipped,
                "regions": mine,
            }
        )

    suspects = [i for i in images if not i["skipped"] and i["flagged"] > 0]
    gallery = suspects[: max(0, request.top)]
    for image in gallery:
        image["overlay"] = run.overlays.get(image["image_id"])
        boxed = [r for r in image["regions"] if _boxed(r)][:GALLERY_REGIONS]
        image["more_regions"] = len(image["regions"]) - len(boxed)
        image["regions"] = boxed
    return ReportData(
        run_dir=request.run_dir,
        summary=run.summary,
        images=images,
        gallery=gallery,
        class_name=wanted,
        has_regions=has_regions,
        regions=kept,
    )


def build_report(request: ReportRequest) -> ReportOutcome:
    """Write the HTML report for a run folder (``RUNDIR/report.html`` by default)."""
    data = collect(request)
    path = write_report_file(request.run_dir, render_report(data), request.out)
    return ReportOutcome(
        path=path,
        size_bytes=path.stat().st_size,
        images=len(data.images),
        gallery=len(data.gallery),
        flagged_pixels=data.flagged_pixels,
        class_name=data.class_name,
        top_issues=data.issue_sentences(3),
    )
