"""The ranked CSV and the run summary JSON."""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from segaudit.config import ClassesConfig
from segaudit.core.audit import AuditResult
from segaudit.output.atomic import atomic_write
from segaudit.output.regions import RegionSummary

RANKING_FILE = "ranking.csv"
SUMMARY_FILE = "summary.json"
RANKING_COLUMNS = (
    "rank",
    "image_id",
    "label_quality",
    "flagged_pixels",
    "flagged_fraction",
    "top_given",
    "top_predicted",
    "top_pair_pixels",
    "region_count",
    "largest_region_area",
    "largest_region_given",
    "largest_region_predicted",
    "valid_pixels",
    "skipped",
)


def _class_name(classes: ClassesConfig, k: int | None) -> str:
    return "" if k is None else classes.names[k]


def write_ranking(
    result: AuditResult,
    classes: ClassesConfig,
    path: Path,
    regions: Mapping[int, RegionSummary] | None = None,
) -> None:
    """One row per image, most suspect first (region columns empty without ``regions``)."""
    with atomic_write(path) as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(RANKING_COLUMNS)
        for rank, image in enumerate(result.ranking(), start=1):
            score = "" if math.isnan(image.label_quality) else f"{image.label_quality:.10g}"
            region = (regions or {}).get(image.index)
            writer.writerow(
                [
                    rank,
                    image.image_id,
                    score,
                    image.flagged_pixels,
                    f"{image.flagged_fraction:.6g}",
                    _class_name(classes, image.top_given),
                    _class_name(classes, image.top_predicted),
                    image.top_pair_pixels,
                    "" if region is None else region.count,
                    "" if region is None else region.largest_area,
                    "" if region is None else _class_name(classes, region.largest_given),
                    "" if region is None else _class_name(classes, region.largest_predicted),
                    image.valid_pixels,
                    image.skipped or "",
                ]
            )


def summary_dict(
    result: AuditResult, classes: ClassesConfig, inputs: dict[str, str], version: str
) -> dict[str, Any]:
    """Everything about the run that is not per image."""
    names = classes.names
    skipped = [{"image_id": r.image_id, "reason": r.skipped} for r in result.images if r.skipped]
    return {
        "segaudit_version": version,
        "inputs": inputs,
        "parameters": {
            "temperature": result.options.temperature,
            "ignore": sorted(result.options.ignore),
            "strict": result.options.strict,
        },
        "num_images": len(result.images),
        "num_classes": result.num_classes,
        "class_names": list(names),
        "valid_pixels": result.valid_pixels,
        "flagged_pixels": result.flagged_pixels,
        "confident_count": result.confident_count,
        "cutoff": result.cutoff.value,
        "classes": [
            {
                "class": names[k],
                "threshold": float(result.thresholds[k]),
                "labelled_pixels": int(result.class_pixels[k]),
                "flagged_pixels": int(result.class_flagged[k]),
            }
            for k in range(result.num_classes)
        ],
        "common_label_issues": [
            {"given": names[p.given], "predicted": names[p.predicted], "pixels": p.pixels}
            for p in result.common_label_issues()
        ],
        "skipped": skipped,
        "timings": {k: round(v, 4) for k, v in result.timings.items()},
    }


def write_summary(summary: dict[str, Any], path: Path) -> None:
    with atomic_write(path) as handle:
        json.dump(summary, handle, indent=2, allow_nan=False)
        handle.write("\n")


def read_ranking(path: Path) -> list[dict[str, str]]:
    """The rows of a ranking CSV, for commands that work on a finished run."""
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def issue_sentence(given: str, predicted: str, pixels: int) -> str:
    """One common label issue in words, as the reference (cleanlab) words it; the one place
    this sentence is built (the report page and `segaudit report` use it)."""
    return f"class {given} is potentially mislabeled as {predicted} on {pixels:,} pixels"
