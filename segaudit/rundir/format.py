"""The run folder's format: file names, columns and the typed rows of each file."""

from __future__ import annotations

import hashlib
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

SUMMARY_FILE = "summary.json"
RANKING_FILE = "ranking.csv"
REGIONS_FILE = "regions.csv"
MASKS_FILE = "masks.json"
OVERLAY_DIR = "overlays"
OVERLAY_INDEX = "index.json"
REPORT_FILE = "report.html"
#: ``score --save-masks``: per image with flagged pixels, its region-id mask and suggested mask.
FLAGGED_DIR = "flagged"
SUGGESTED_DIR = "suggested"
#: Each of those folders' map of image id -> file name.
MASK_INDEX = "index.json"
#: In a flagged mask: a flagged pixel in no region (smaller than --min-region-area) is this.
NO_REGION = {"L": 255, "I;16": 65535}
#: Written first into every run folder: what marks a folder as segaudit's.
MARKER_FILE = ".segaudit-run"
RUN_FORMAT = 1
#: Files a run folder may hold at its top level (all written by segaudit).
RUN_FILES = frozenset(
    {
        MARKER_FILE,
        SUMMARY_FILE,
        RANKING_FILE,
        REGIONS_FILE,
        MASKS_FILE,
        REPORT_FILE,
        OVERLAY_DIR,
        FLAGGED_DIR,
        SUGGESTED_DIR,
    }
)
#: Folders of a run folder holding only .png files and an index (segaudit's pictures).
PICTURE_DIRS = {OVERLAY_DIR: OVERLAY_INDEX, FLAGGED_DIR: MASK_INDEX, SUGGESTED_DIR: MASK_INDEX}
#: Longest part of an image id kept in an overlay file name (the rest is a hash).
OVERLAY_STEM_CHARS = 80
#: RFC 4180 line ends: with them the csv module quotes every cell holding \r or \n (with a
#: bare \n it leaves \r unquoted, and a file name with \r would break the row).
CSV_LINE_END = "\r\n"

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
    "agreement",
    "skipped",
)
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
    "region_score",
    "region_rank",
)


# ------------------------------------------------------------------------------ the format


@dataclass(frozen=True)
class ClassRow:
    """One class in the summary: its threshold and pixel counts."""

    name: str
    threshold: float
    labelled_pixels: int
    flagged_pixels: int


@dataclass(frozen=True)
class IssueRow:
    """Flagged pixels labelled ``given`` that the model calls ``predicted``."""

    given: str
    predicted: str
    pixels: int


@dataclass(frozen=True)
class SkippedRow:
    image_id: str
    reason: str


@dataclass(frozen=True)
class RunSummary:
    """Everything about a run that is not per image (``summary.json``)."""

    run_id: str
    segaudit_version: str
    inputs: dict[str, str]
    parameters: dict[str, Any]  # scalars (and lists of ints): shown as they are
    num_images: int
    class_names: tuple[str, ...]
    class_colors: tuple[tuple[int, int, int], ...]
    valid_pixels: int
    flagged_pixels: int
    confident_count: int
    cutoff: float | None
    classes: tuple[ClassRow, ...]
    common_label_issues: tuple[IssueRow, ...]
    skipped: tuple[SkippedRow, ...]
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["format"] = RUN_FORMAT
        data["num_classes"] = self.num_classes
        data["class_names"] = list(self.class_names)
        data["class_colors"] = [list(c) for c in self.class_colors]
        data["classes"] = [
            {
                "class": c.name,
                "threshold": c.threshold,
                "labelled_pixels": c.labelled_pixels,
                "flagged_pixels": c.flagged_pixels,
            }
            for c in self.classes
        ]
        return data


@dataclass(frozen=True)
class RankingRow:
    """One image's row of ``ranking.csv``. ``label_quality`` is NaN for an image without a
    score (skipped, or no valid pixel); region fields are None when regions were not found."""

    rank: int
    image_id: str
    label_quality: float
    flagged_pixels: int
    flagged_fraction: float
    top_given: str
    top_predicted: str
    top_pair_pixels: int
    region_count: int | None
    largest_region_area: int | None
    largest_region_given: str
    largest_region_predicted: str
    valid_pixels: int
    skipped: str
    #: Share of valid pixels whose predicted class is the given one (NaN: no valid pixel).
    agreement: float = math.nan

    def cells(self) -> list[str]:
        score = "" if math.isnan(self.label_quality) else f"{self.label_quality:.10g}"
        return [
            str(self.rank),
            self.image_id,
            score,
            str(self.flagged_pixels),
            f"{self.flagged_fraction:.6g}",
            self.top_given,
            self.top_predicted,
            str(self.top_pair_pixels),
            _optional(self.region_count),
            _optional(self.largest_region_area),
            self.largest_region_given,
            self.largest_region_predicted,
            str(self.valid_pixels),
            "" if math.isnan(self.agreement) else f"{self.agreement:.6g}",
            self.skipped,
        ]


@dataclass(frozen=True)
class RegionRow:
    """One suspect region of ``regions.csv``; the box is left x, top y, width, height."""

    image_id: str
    region_id: int
    given: str
    predicted: str
    area: int
    x: int
    y: int
    width: int
    height: int
    mean_self_confidence: float
    mean_predicted_probability: float
    region_score: float = 0.0  # higher: more likely a real label error (core.region_score)
    region_rank: int = 0  # dataset-wide, 1 = the most suspect region

    def cells(self) -> list[str]:
        return self.head_cells() + region_rank_cells(self.region_score, self.region_rank)

    def head_cells(self) -> list[str]:
        """Every cell but the last two, which are known only once the whole run is in."""
        return [
            self.image_id,
            str(self.region_id),
            self.given,
            self.predicted,
            str(self.area),
            str(self.x),
            str(self.y),
            str(self.width),
            str(self.height),
            f"{self.mean_self_confidence:.6g}",
            f"{self.mean_predicted_probability:.6g}",
        ]


def region_rank_cells(score: float, rank: int) -> list[str]:
    """The last two cells of a regions.csv row: region_score and region_rank (numbers:
    never a comma, quote or line break, so never quoted)."""
    return [f"{score:.6g}", str(rank)]


def is_run_folder(folder: Path) -> bool:
    """Whether segaudit wrote this folder as a run folder (its marker file is there)."""
    return (folder / MARKER_FILE).is_file()


def _optional(value: int | None) -> str:
    return "" if value is None else str(value)


def overlay_name(index: int, image_id: str) -> str:
    """A file name for an image's overlay: its rank, a readable part of the id (never a path
    separator or control character), and a hash of the whole id so long or clashing ids
    still get their own short name."""
    stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in image_id).lstrip(".")
    digest = hashlib.sha256(image_id.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{index:05d}_{stem[:OVERLAY_STEM_CHARS] or '_'}_{digest}.png"


def saved_mask_name(image_id: str) -> str:
    """The file name of an image's flagged and suggested masks: a readable part of the id
    and a hash of the whole id (ids may hold '/' and clash once shortened)."""
    return overlay_name(0, image_id)[6:]


def csv_cell(text: str) -> str:
    """A cell that spreadsheet programs show as text, never evaluate: a leading = + - @,
    tab or carriage return gets a ' in front (the OWASP CSV-injection advice). segaudit's
    own readers take the quote off again (see :func:`from_csv_cell`)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r", "'") else text


def from_csv_cell(text: str) -> str:
    return (
        text[1:] if text[:1] == "'" and text[1:2] in ("=", "+", "-", "@", "\t", "\r", "'") else text
    )


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB pieces."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for piece in iter(lambda: handle.read(1 << 20), b""):
            digest.update(piece)
    return digest.hexdigest()


def run_id(*parts: bytes) -> str:
    """An identifier of a run's results: the same inputs and options give the same id."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(hashlib.sha256(part).digest())
    return digest.hexdigest()[:16]
