"""The HTML report: one self-contained, offline page rendered with Jinja2 (autoescaped).

Everything is inside the file: overlay pictures as data: URIs, the score histogram as
inline SVG, a little vanilla JavaScript for sorting, filtering and enlarging. A Content
Security Policy forbids the page any network request. Text from users' files (image ids,
class names, paths) only reaches the page through the template, which escapes it.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image

from segaudit.config import generated_palette
from segaudit.output.atomic import atomic_write
from segaudit.output.overlay import IMAGE_ERRORS
from segaudit.output.table import issue_sentence

if TYPE_CHECKING:  # jinja2 is imported when a report is made: `score` starts faster
    import jinja2

REPORT_FILE = "report.html"
HISTOGRAM_BINS = 20
#: Gallery pictures are re-encoded with this many colours (fast octree, no dithering): a
#: quarter of the size, nothing visible lost; the exact PNGs stay in overlays/.
EMBED_COLORS = 256


@dataclass
class ReportData:
    """What the page shows: the run summary, the images (ranked, maybe narrowed to a class)."""

    run_dir: Path
    summary: dict[str, Any]
    images: list[dict[str, Any]]
    gallery: list[dict[str, Any]]
    class_name: str | None
    has_regions: bool

    @property
    def class_names(self) -> list[str]:
        return [str(n) for n in self.summary.get("class_names", [])]

    def class_colors(self) -> dict[str, str]:
        """CSS colour per class name (the run's palette, else the generated one)."""
        names = self.class_names
        raw = self.summary.get("class_colors") or generated_palette(len(names))
        return {n: "#{:02x}{:02x}{:02x}".format(*c) for n, c in zip(names, raw, strict=False)}

    def issues(self) -> list[dict[str, Any]]:
        """(given, predicted, pixels) pairs, most pixels first, narrowed to the class."""
        pairs = self.summary.get("common_label_issues", [])
        wanted = self.class_name
        return [p for p in pairs if wanted is None or wanted in (p["given"], p["predicted"])]

    @property
    def flagged_pixels(self) -> int:
        return sum(int(p["pixels"]) for p in self.issues())

    def issue_sentences(self, top: int) -> list[str]:
        """The ``top`` most common issues in words."""
        return [
            issue_sentence(p["given"], p["predicted"], int(p["pixels"]))
            for p in self.issues()[:top]
        ]

    def class_rows(self) -> list[dict[str, Any]]:
        """Per class: labelled pixels, flagged pixels (given / predicted), threshold."""
        predicted: dict[str, int] = {}
        for pair in self.summary.get("common_label_issues", []):
            predicted[pair["predicted"]] = predicted.get(pair["predicted"], 0) + pair["pixels"]
        rows = []
        for row in self.summary.get("classes", []):
            name = row["class"]
            if self.class_name is not None and name != self.class_name:
                continue
            labelled = int(row["labelled_pixels"])
            flagged = int(row["flagged_pixels"])
            rows.append(
                {
                    "name": name,
                    "labelled": labelled,
                    "flagged": flagged,
                    "share": flagged / labelled if labelled else 0.0,
                    "predicted": predicted.get(name, 0),
                    "threshold": float(row["threshold"]),
                }
            )
        return rows

    def matrix(self) -> dict[str, Any]:
        """The given × predicted table over the classes that take part in any issue."""
        issues = self.issues()
        given = [n for n in self.class_names if any(p["given"] == n for p in issues)]
        predicted = [n for n in self.class_names if any(p["predicted"] == n for p in issues)]
        cells = {(p["given"], p["predicted"]): int(p["pixels"]) for p in issues}
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
    valid = int(summary.get("valid_pixels", 0))
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
    )


def _parameters(summary: dict[str, Any]) -> Sequence[tuple[str, str]]:
    params = summary.get("parameters", {})
    rows = [(str(k), str(v)) for k, v in params.items()]
    rows.append(("confident count T", f"{int(summary.get('confident_count', 0)):,}"))
    cutoff = summary.get("cutoff")
    rows.append(("self-confidence cutoff", "none" if cutoff is None else f"{cutoff:.6g}"))
    return rows


def write_report(data: ReportData, path: Path) -> None:
    """Render and write the page atomically."""
    html = render_report(data)
    with atomic_write(path) as handle:
        handle.write(html)
