"""The HTML report: one self-contained, offline page rendered with Jinja2 (autoescaped).

Everything is inside the file: overlay pictures as data: URIs, the score histogram as
inline SVG, a little vanilla JavaScript for sorting, filtering and enlarging. A Content
Security Policy forbids the page any network request. Text from users' files (image ids,
class names, paths) only reaches the page through the template, which escapes it.
"""

from __future__ import annotations

import base64
import io
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image

from segaudit.output.overlay import IMAGE_ERRORS
from segaudit.rundir import IssueRow, RegionRow, RunSummary

if TYPE_CHECKING:  # jinja2 is imported when a report is made: `score` starts faster
    import jinja2
HISTOGRAM_BINS = 20
#: Gallery pictures are re-encoded with this many colours (fast octree, no dithering): a
#: quarter of the size, nothing visible lost; the exact PNGs stay in overlays/.
EMBED_COLORS = 256
#: Regions embedded for the "most suspect regions" view (the page stays small at 100,000
#: images; regions.csv has every one).
REGION_VIEW_LIMIT = 5000


def issue_sentence(given: str, predicted: str, pixels: int) -> str:
    """One common label issue in words, as the reference (cleanlab) words it; the one place
    this sentence is built (the report page and `segaudit report` use it)."""
    return f"class {given} is potentially mislabeled as {predicted} on {pixels:,} pixels"


def region_priority(row: RegionRow) -> tuple[float, str, int]:
    """Sort key of the "most suspect regions" view, most suspect first: the one place the
    order is defined. regions.csv's ``region_rank`` wins where a run has it; otherwise large
    regions the model disputes strongly come first (area x (1 - mean self-confidence))."""
    rank = getattr(row, "region_rank", None)
    if isinstance(rank, int | float):
        return (float(rank), row.image_id, row.region_id)
    return (-row.area * (1.0 - row.mean_self_confidence), row.image_id, row.region_id)


@dataclass
class ReportData:
    """What the page shows: the run summary, the images (ranked, maybe narrowed to a class).

    ``images`` are the template's rows (dicts built from the run's typed rows)."""

    run_dir: Path
    summary: RunSummary
    images: list[dict[str, Any]]
    gallery: list[dict[str, Any]]
    class_name: str | None
    has_regions: bool
    regions: list[RegionRow] | None = None  # every region (narrowed to the class)

    @property
    def class_names(self) -> list[str]:
        return list(self.summary.class_names)

    def class_colors(self) -> dict[str, str]:
        """CSS colour per class name (the run's palette)."""
        return {
            n: "#{:02x}{:02x}{:02x}".format(*c)
            for n, c in zip(self.summary.class_names, self.summary.class_colors, strict=True)
        }

    def issues(self) -> list[IssueRow]:
        """(given, predicted, pixels) pairs, most pixels first, narrowed to the class."""
        wanted = self.class_name
        return [
            p
            for p in self.summary.common_label_issues
            if wanted is None or wanted in (p.given, p.predicted)
        ]

    @property
    def flagged_pixels(self) -> int:
        return sum(p.pixels for p in self.issues())

    def issue_sentences(self, top: int) -> list[str]:
        """The ``top`` most common issues in words."""
        return [issue_sentence(p.given, p.predicted, p.pixels) for p in self.issues()[:top]]

    def class_rows(self) -> list[dict[str, Any]]:
        """Per class: labelled pixels, flagged pixels (given / predicted), threshold."""
        predicted: dict[str, int] = {}
        for pair in self.summary.common_label_issues:
            predicted[pair.predicted] = predicted.get(pair.predicted, 0) + pair.pixels
        rows = []
        for row in self.summary.classes:
            if self.class_name is not None and row.name != self.class_name:
                continue
            rows.append(
                {
                    "name": row.name,
                    "labelled": row.labelled_pixels,
                    "flagged": row.flagged_pixels,
                    "share": row.flagged_pixels / row.labelled_pixels
                    if row.labelled_pixels
                    else 0.0,
                    "predicted": predicted.get(row.name, 0),
                    "threshold": row.threshold,
                }
            )
        return rows

    def matrix(self) -> dict[str, Any]:
        """The given × predicted table over the classes that take part in any issue."""
        issues = self.issues()
        given = [n for n in self.class_names if any(p.given == n for p in issues)]
        predicted = [n for n in self.class_names if any(p.predicted == n for p in issues)]
        cells = {(p.given, p.predicted): p.pixels for p in issues}
        top = max(cells.values(), default=0)
        return {"given": given, "predicted": predicted, "cells": cells, "max": top}

    def histogram(self) -> dict[str, Any]:
        """Counts of image scores in equal bins over [0, 1], and the SVG geometry for them."""
        scores = [i["score"] for i in self.images if not math.isnan(i["score"])]
        counts = [0] * HISTOGRAM_BINS
        for s in scores:
            counts[min(HISTOGRAM_BINS - 1, max(0, int(s * HISTOGRAM_BINS)))] += 1
        width, height, left, bottom = 640, 200, 40, 30
        bar_w = (width - left - 10) / HISTOGRAM_BINS
        top = max(counts, default=0) or 1
        bars = []
        for k, count in enumerate(counts):
            h = (height - bottom - 10) * count / top
            bars.append(
                {
                    "x": left + k * bar_w,
                    "y": height - bottom - h,
                    "w": bar_w - 1,
                    "h": h,
                    "count": count,
                    "low": k / HISTOGRAM_BINS,
                    "high": (k + 1) / HISTOGRAM_BINS,
                }
            )
        return {
            "bars": bars,
            "width": width,
            "height": height,
            "left": left,
            "base": height - bottom,
            "max": top,
            "scored": len(scores),
            "unscored": len(self.images) - len(scores),
            "ticks": [
                (left + t * (width - left - 10), f"{t:.1f}") for t in (0, 0.25, 0.5, 0.75, 1)
            ],
        }


def _number(value: float, digits: int) -> float | None:
    return None if math.isnan(value) else float(f"{value:.{digits}g}")


def embedded_data(data: ReportData) -> str:
    """The tables' data as one compact JSON document (the page renders it in pages): per
    image [rank, id, score, flagged px, flagged share, regions, largest region px, top
    given, top predicted, classes involved, skipped], class names as indices; per region of
    the suspect-regions view [image index, region id, given, predicted, px, mean
    self-confidence]. '<' is escaped, so no text ends the script element."""
    index = {name: k for k, name in enumerate(data.summary.class_names)}
    rows = []
    position = {}
    for i, image in enumerate(data.images):
        position[image["image_id"]] = i
        rows.append(
            [
                image["rank"],
                image["image_id"],
                _number(image["score"], 6),
                image["flagged"],
                _number(image["fraction"], 4),
                image["region_count"],
                image["largest_area"],
                index.get(image["top_given"], -1),
                index.get(image["top_predicted"], -1),
                [index[c] for c in image["classes"]],
                image["skipped"],
            ]
        )
    suspects = sorted(
        (r for r in data.regions or [] if r.image_id in position), key=region_priority
    )
    regions = [
        [
            position[r.image_id],
            r.region_id,
            index[r.given],
            index[r.predicted],
            r.area,
            _number(r.mean_self_confidence, 4),
        ]
        for r in suspects[:REGION_VIEW_LIMIT]
    ]
    document = {
        "run": data.summary.run_id,
        "classes": list(data.summary.class_names),
        "images": rows,
        "regions": regions,
        "regions_total": len(suspects),
    }
    text = json.dumps(document, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def data_uri(path: Path) -> str | None:
    """The picture as a data: URI (a compact PNG), or None if it cannot be read (the page then
    shows that there is no overlay: a damaged overlay file must not stop the report)."""
    try:
        with Image.open(path) as picture:
            rgb = picture.convert("RGB")
    except IMAGE_ERRORS:
        return None
    small = rgb.quantize(EMBED_COLORS, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
    buffer = io.BytesIO()
    small.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _environment() -> jinja2.Environment:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("segaudit.output", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["score"] = lambda v: "—" if v is None or math.isnan(v) else f"{v:.4f}"
    env.filters["pixels"] = lambda v: f"{int(v):,}"
    env.filters["percent"] = lambda v: "—" if math.isnan(v) else f"{100 * v:.2f}%"
    env.filters["sortkey"] = lambda v: "" if v is None or math.isnan(v) else f"{v:.10g}"
    return env


def render_report(data: ReportData) -> str:
    """The page's HTML."""
    for image in data.gallery:
        overlay = image.get("overlay")
        image["overlay_uri"] = data_uri(overlay) if overlay is not None else None
    summary = data.summary
    valid = summary.valid_pixels
    flagged_images = sum(1 for i in data.images if i["flagged"] > 0)
    template = _environment().get_template("report.html.j2")
    return template.render(
        data=data,
        summary=summary,
        colors=data.class_colors(),
        class_rows=data.class_rows(),
        issues=data.issues(),
        sentences=data.issue_sentences(5),
        matrix=data.matrix(),
        histogram=data.histogram(),
        flagged=data.flagged_pixels,
        flagged_share=data.flagged_pixels / valid if valid else 0.0,
        flagged_images=flagged_images,
        skipped=[i for i in data.images if i["skipped"]],
        parameters=_parameters(summary),
        report_json=embedded_data(data),
        region_limit=REGION_VIEW_LIMIT,
    )


def _parameters(summary: RunSummary) -> Sequence[tuple[str, str]]:
    rows = [(str(k), str(v)) for k, v in summary.parameters.items()]
    rows.append(("confident count T", f"{summary.confident_count:,}"))
    cutoff = summary.cutoff
    rows.append(("self-confidence cutoff", "none" if cutoff is None else f"{cutoff:.6g}"))
    return rows
