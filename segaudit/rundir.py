"""The run folder: its format, and the only code that writes or reads its files.

A run folder holds ``summary.json`` (:class:`RunSummary`), ``ranking.csv`` (one
:class:`RankingRow` per image), ``regions.csv`` (:class:`RegionRow`), ``masks.json`` (the
SHA-256 of every mask file, for baselines and for noticing masks that changed since),
``overlays/`` (pictures and ``index.json``) and, once reported, ``report.html``.

Writing (:class:`RunWriter`): a run is written whole into a fresh hidden sibling folder and
swapped in only when complete; the previous run is moved aside and then removed, file by
file, by the names segaudit writes. A reader therefore sees a complete run, the previous
one, or nothing. A lock beside the folder refuses a second run into it. A non-empty folder
that is not a segaudit run folder, or that holds files segaudit did not write, is refused:
segaudit never deletes what it did not write.

Reading (:func:`read_run`): every field of every file is checked (types, ranges, row counts
against the summary, ids against the mask hashes); a damaged or forged folder is a
:class:`RunFolderError` naming the file and the field.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import math
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

from segaudit.config.files import DATA_BYTES, read_json_object, read_text
from segaudit.config.schema import Schema, is_plain_text
from segaudit.errors import OutputError, RunFolderError
from segaudit.output.atomic import atomic_write, output_folder

SUMMARY_FILE = "summary.json"
RANKING_FILE = "ranking.csv"
REGIONS_FILE = "regions.csv"
MASKS_FILE = "masks.json"
OVERLAY_DIR = "overlays"
OVERLAY_INDEX = "index.json"
REPORT_FILE = "report.html"
#: Written first into every run folder: what marks a folder as segaudit's.
MARKER_FILE = ".segaudit-run"
RUN_FORMAT = 1
#: Files a run folder may hold at its top level (all written by segaudit).
RUN_FILES = frozenset(
    {MARKER_FILE, SUMMARY_FILE, RANKING_FILE, REGIONS_FILE, MASKS_FILE, REPORT_FILE, OVERLAY_DIR}
)
#: Longest part of an image id kept in an overlay file name (the rest is a hash).
OVERLAY_STEM_CHARS = 80
_HEX64 = re.compile(r"[0-9a-f]{64}")
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

    def cells(self) -> list[str]:
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


def _optional(value: int | None) -> str:
    return "" if value is None else str(value)


def overlay_name(index: int, image_id: str) -> str:
    """A file name for an image's overlay: its rank, a readable part of the id (never a path
    separator or control character), and a hash of the whole id so long or clashing ids
    still get their own short name."""
    stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in image_id).lstrip(".")
    digest = hashlib.sha256(image_id.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{index:05d}_{stem[:OVERLAY_STEM_CHARS] or '_'}_{digest}.png"


def csv_cell(text: str) -> str:
    """A cell that spreadsheet programs show as text, never evaluate: a leading = + - @,
    tab or carriage return gets a ' in front (the OWASP CSV-injection advice). segaudit's
    own readers take the quote off again (see :func:`from_csv_cell`)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r", "'") else text


def from_csv_cell(text: str) -> str:
    return (
        text[1:] if text[:1] == "'" and text[1:2] in ("=", "+", "-", "@", "\t", "\r", "'") else text
    )


# ----------------------------------------------------------------------------------- writing


def _sibling(folder: Path, tag: str) -> Path:
    return folder.parent / f".{folder.name}.segaudit-{tag}"


def _is_run_folder(folder: Path) -> bool:
    return (folder / MARKER_FILE).is_file()


def _foreign_files(folder: Path) -> list[str]:
    """Entries of a run folder that segaudit does not write."""
    foreign = [p.name for p in folder.iterdir() if p.name not in RUN_FILES]
    overlays = folder / OVERLAY_DIR
    if overlays.is_dir():
        foreign += [
            f"{OVERLAY_DIR}/{p.name}"
            for p in overlays.iterdir()
            if not (p.is_file() and (p.suffix == ".png" or p.name == OVERLAY_INDEX))
        ]
    elif overlays.exists():
        foreign.append(OVERLAY_DIR)
    return sorted(foreign)


def check_run_target(folder: Path) -> None:
    """Refuse an --out that segaudit may not replace: a file, or a non-empty folder that is
    not a segaudit run folder or that holds files segaudit did not write."""
    if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
        raise OutputError(f"{folder}: exists and is not a folder; choose another --out")
    if not folder.is_dir() or not any(folder.iterdir()):
        return
    if not _is_run_folder(folder):
        raise OutputError(
            f"{folder}: is not empty and is not a segaudit run folder; segaudit replaces only "
            "run folders it wrote: choose a new or empty --out"
        )
    foreign = _foreign_files(folder)
    if foreign:
        raise OutputError(
            f"{folder}: holds files segaudit did not write ({', '.join(foreign[:5])}); move "
            "them out or choose another --out (segaudit never deletes what it did not write)"
        )


def _remove_run(folder: Path) -> None:
    """Remove a run folder segaudit wrote, by the names it writes; anything else stays."""
    overlays = folder / OVERLAY_DIR
    if overlays.is_dir() and not overlays.is_symlink():
        for path in overlays.iterdir():
            if path.is_file() and (path.suffix == ".png" or path.name == OVERLAY_INDEX):
                path.unlink()
        with contextlib.suppress(OSError):
            overlays.rmdir()
    for name in sorted(RUN_FILES - {OVERLAY_DIR, MARKER_FILE}):
        path = folder / name
        if path.is_file() and not path.is_symlink():
            path.unlink()
    if not any(p.name != MARKER_FILE for p in folder.iterdir()):
        (folder / MARKER_FILE).unlink(missing_ok=True)
        folder.rmdir()


class RunWriter:
    """Writes one run: into a hidden staging folder beside ``folder``, swapped in on
    :meth:`commit`. Use as a context manager: leaving without committing (an error, Ctrl-C,
    SIGTERM) removes the staging folder and leaves the previous run as it was."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.staging = _sibling(folder, "staging")
        self._lock_path = _sibling(folder, "lock")
        self._lock: IO[bytes] | None = None
        self._committed = False

    def __enter__(self) -> RunWriter:
        import fcntl

        output_folder(self.folder.parent)
        check_run_target(self.folder)
        try:
            handle = open(self._lock_path, "ab")
        except OSError as error:
            raise OutputError(f"{self.folder}: cannot lock ({error.strerror or error})") from None
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            raise OutputError(
                f"{self.folder}: another segaudit run is writing this folder; wait for it "
                "or choose another --out"
            ) from None
        self._lock = handle
        # Left by a run that was killed (SIGKILL, power loss): ours by name and marker.
        for leftover in (self.staging, _sibling(self.folder, "previous")):
            if leftover.is_dir() and _is_run_folder(leftover):
                shutil.rmtree(leftover)
        try:
            self.staging.mkdir()
        except OSError as error:
            raise OutputError(f"{self.staging}: cannot create ({error.strerror})") from None
        (self.staging / MARKER_FILE).write_text(f"segaudit run folder, format {RUN_FORMAT}\n")
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if not self._committed and self.staging.is_dir():
                shutil.rmtree(self.staging, ignore_errors=True)
        finally:
            if self._lock is not None:
                self._lock.close()
                with contextlib.suppress(OSError):
                    self._lock_path.unlink()

    def path(self, name: str) -> Path:
        """Where a run file is written during the run (inside the staging folder)."""
        return self.staging / name

    def write_summary(self, summary: RunSummary) -> None:
        with atomic_write(self.path(SUMMARY_FILE)) as handle:
            json.dump(summary.as_json(), handle, indent=2, allow_nan=False, ensure_ascii=False)
            handle.write("\n")

    def write_ranking(self, rows: Iterable[RankingRow]) -> None:
        with atomic_write(self.path(RANKING_FILE)) as handle:
            writer = csv.writer(handle, lineterminator=CSV_LINE_END)
            writer.writerow(RANKING_COLUMNS)
            for row in rows:
                writer.writerow([csv_cell(c) for c in row.cells()])

    def write_mask_hashes(self, hashes: Mapping[str, str]) -> None:
        with atomic_write(self.path(MASKS_FILE)) as handle:
            json.dump(
                {"algorithm": "sha256", "masks": dict(hashes)},
                handle,
                indent=1,
                sort_keys=True,
                ensure_ascii=False,
            )
            handle.write("\n")

    def overlay_path(self, index: int, image_id: str) -> Path:
        return output_folder(self.path(OVERLAY_DIR)) / overlay_name(index, image_id)

    def write_overlay_index(self, names: Mapping[str, str]) -> None:
        if not names:
            return
        with atomic_write(self.path(OVERLAY_DIR) / OVERLAY_INDEX) as handle:
            json.dump(dict(names), handle, indent=1, ensure_ascii=False)
            handle.write("\n")

    def commit(self) -> None:
        """Put the complete run in place of the previous one (if any), then remove that."""
        previous = _sibling(self.folder, "previous")
        moved = False
        if self.folder.is_dir():
            check_run_target(self.folder)  # again: it may have changed during the run
            if any(self.folder.iterdir()):
                os.replace(self.folder, previous)
                moved = True
            else:
                self.folder.rmdir()
        os.replace(self.staging, self.folder)
        self._committed = True
        if moved:
            _remove_run(previous)


def write_report_file(folder: Path, html: str, out: Path | None = None) -> Path:
    """Write ``report.html`` into a finished run folder (or to ``out``), atomically."""
    path = out or folder / REPORT_FILE
    with atomic_write(path) as handle:
        handle.write(html)
    return path


def region_lines(rows: Iterable[RegionRow]) -> str:
    """regions.csv lines (no header) for some rows: what a spill file holds."""
    import io

    text = io.StringIO()
    writer = csv.writer(text, lineterminator=CSV_LINE_END)
    for row in rows:
        writer.writerow([csv_cell(c) for c in row.cells()])
    return text.getvalue()


class RegionSpill:
    """regions.csv rows, spilled to a temporary file as images finish (in any order), then
    written in image order: memory does not grow with the number of regions."""

    def __init__(self) -> None:
        self._spill: IO[bytes] = tempfile.TemporaryFile(prefix="segaudit-regions-")  # noqa: SIM115 (closed in close())
        self._places: dict[int, tuple[int, int]] = {}

    def add(self, index: int, rows: Iterable[RegionRow]) -> None:
        """Not thread-safe: callers serialise (the collector holds a lock)."""
        data = region_lines(rows).encode("utf-8", "surrogateescape")
        if data:
            offset = self._spill.seek(0, os.SEEK_END)
            self._spill.write(data)
            self._places[index] = (offset, len(data))

    def write(self, writer: RunWriter) -> None:
        with atomic_write(writer.path(REGIONS_FILE)) as handle:
            csv.writer(handle, lineterminator=CSV_LINE_END).writerow(REGION_COLUMNS)
            for index in sorted(self._places):
                offset, length = self._places[index]
                self._spill.seek(offset)
                handle.write(self._spill.read(length).decode("utf-8", "surrogateescape"))

    def close(self) -> None:
        self._spill.close()


# ----------------------------------------------------------------------------------- reading


def _fault(path: Path, key: str, problem: str) -> RunFolderError:
    return RunFolderError(str(path), problem + _AGAIN, field=key)


def _file_fault(path: Path, problem: str) -> RunFolderError:
    return RunFolderError(str(path), problem + _AGAIN)


_AGAIN = "; re-run `segaudit score` to write the run folder again"


def read_summary(folder: Path) -> RunSummary:
    path = folder / SUMMARY_FILE
    data = read_json_object(path, if_missing="is this a run folder?", fault=_file_fault)
    s = Schema(path, _fault)
    if data.get("format") != RUN_FORMAT:
        raise s.fail("format", f"expected {RUN_FORMAT}: written by another segaudit version")
    for key in _SUMMARY_KEYS:
        s.require("", data, key, "missing")
    names = tuple(
        s.text(f"class_names[{i}]", n, limit=200)
        for i, n in enumerate(s.sequence("class_names", data["class_names"], min_length=1))
    )
    k = len(names)
    if s.integer("num_classes", data["num_classes"]) != k:
        raise s.fail("num_classes", f"expected {k}, the number of class_names")
    colors = s.sequence("class_colors", data["class_colors"])
    if len(colors) != k:
        raise s.fail("class_colors", f"expected {k} colours")
    class_colors = []
    for i, c in enumerate(colors):
        channels = s.numbers(f"class_colors[{i}]", c, 3, integers=True)
        if max(channels) > 255:
            raise s.fail(f"class_colors[{i}]", "channels are 0..255")
        class_colors.append((channels[0], channels[1], channels[2]))
    classes = []
    rows = s.sequence("classes", data["classes"])
    if len(rows) != k:
        raise s.fail("classes", f"expected {k} rows, one per class")
    for i, row in enumerate(rows):
        key = f"classes[{i}]"
        row = s.mapping(key, row, {"class", "threshold", "labelled_pixels", "flagged_pixels"})
        name = s.text(f"{key}.class", s.require(key, row, "class"), limit=200)
        if name != names[i]:
            raise s.fail(f"{key}.class", f"expected {names[i]!r}")
        labelled = s.count(f"{key}.labelled_pixels", s.require(key, row, "labelled_pixels"))
        flagged = s.count(f"{key}.flagged_pixels", s.require(key, row, "flagged_pixels"))
        if flagged > labelled:
            raise s.fail(f"{key}.flagged_pixels", "more than the labelled pixels")
        threshold = s.number(f"{key}.threshold", s.require(key, row, "threshold"), low=0, high=1)
        classes.append(ClassRow(name, threshold, labelled, flagged))
    issues = []
    for i, row in enumerate(s.sequence("common_label_issues", data["common_label_issues"])):
        key = f"common_label_issues[{i}]"
        row = s.mapping(key, row, {"given", "predicted", "pixels"})
        given = s.text(f"{key}.given", s.require(key, row, "given"))
        predicted = s.text(f"{key}.predicted", s.require(key, row, "predicted"))
        if given not in names or predicted not in names:
            raise s.fail(key, "names a class the run does not have")
        issues.append(IssueRow(given, predicted, s.count(f"{key}.pixels", row.get("pixels"))))
    skipped = []
    for i, row in enumerate(s.sequence("skipped", data["skipped"])):
        key = f"skipped[{i}]"
        row = s.mapping(key, row, {"image_id", "reason"})
        skipped.append(
            SkippedRow(
                _id(s, f"{key}.image_id", s.require(key, row, "image_id")),
                s.string(f"{key}.reason", s.require(key, row, "reason"), limit=100_000),
            )
        )
    valid = s.count("valid_pixels", data["valid_pixels"])
    flagged = s.count("flagged_pixels", data["flagged_pixels"])
    if valid != sum(c.labelled_pixels for c in classes):
        raise s.fail("valid_pixels", "is not the sum of the classes' labelled pixels")
    if flagged != sum(c.flagged_pixels for c in classes) or flagged > valid:
        raise s.fail("flagged_pixels", "is not the sum of the classes' flagged pixels")
    cutoff = data["cutoff"]
    inputs = s.mapping("inputs", data["inputs"], _INPUT_KEYS)
    parameters = s.mapping("parameters", data["parameters"], _PARAMETER_KEYS)
    timings = s.mapping("timings", data.get("timings", {}), _TIMING_KEYS)
    return RunSummary(
        run_id=s.text("run_id", data["run_id"], limit=64),
        segaudit_version=s.text("segaudit_version", data["segaudit_version"], limit=64),
        inputs={k: s.string(f"inputs.{k}", v) for k, v in inputs.items()},
        parameters={k: _parameter(s, f"parameters.{k}", v) for k, v in parameters.items()},
        num_images=s.count("num_images", data["num_images"]),
        class_names=names,
        class_colors=tuple(class_colors),
        valid_pixels=valid,
        flagged_pixels=flagged,
        confident_count=s.count("confident_count", data["confident_count"]),
        cutoff=None if cutoff is None else s.number("cutoff", cutoff, low=0, high=2),
        classes=tuple(classes),
        common_label_issues=tuple(issues),
        skipped=tuple(skipped),
        timings={k: s.number(f"timings.{k}", v, low=0) for k, v in timings.items()},
    )


_SUMMARY_KEYS = (
    "run_id",
    "segaudit_version",
    "inputs",
    "parameters",
    "num_images",
    "num_classes",
    "class_names",
    "class_colors",
    "valid_pixels",
    "flagged_pixels",
    "confident_count",
    "cutoff",
    "classes",
    "common_label_issues",
    "skipped",
)
#: What summary.json's inputs and parameters may hold (score writes these).
_INPUT_KEYS = frozenset({"labels", "probs", "manifest", "images", "classes", "calibration", "ids"})
_PARAMETER_KEYS = frozenset(
    {
        "temperature",
        "ignore",
        "strict",
        "connectivity",
        "min_region_area",
        "layout",
        "logits",
        "resize",
        "downsample",
        "method",
        "top",
    }
)
_TIMING_KEYS = frozenset(
    {"pass1_seconds", "refine_seconds", "pass2_seconds", "single_pass_seconds", "total_seconds"}
)


def _parameter(s: Schema, key: str, value: Any) -> Any:
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float):
        return s.number(key, value)
    if isinstance(value, str):
        return s.text(key, value, empty=True, limit=200)
    if isinstance(value, list):
        return [s.integer(f"{key}[{i}]", v) for i, v in enumerate(value)]
    raise s.fail(key, f"unexpected value {value!r}")


def _id(s: Schema, key: str, value: Any) -> str:
    """An image id: any string but an empty one (ids come from file names and manifests;
    writers quote or escape them)."""
    return s.string(key, value, empty=False, limit=4096)


@dataclass
class Run:
    """A finished run folder, read and validated."""

    folder: Path
    summary: RunSummary
    ranking: list[RankingRow]
    mask_hashes: dict[str, str]
    overlays: dict[str, Path]

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.summary.class_names

    def mask_hash(self, image_id: str) -> str:
        return self.mask_hashes.get(image_id, "")

    def has_regions(self) -> bool:
        return (self.folder / REGIONS_FILE).is_file()

    def regions(self) -> list[RegionRow]:
        """Every row of regions.csv, validated against the ranking."""
        return read_regions(self)


def _csv_rows(path: Path, columns: tuple[str, ...]) -> Iterator[tuple[int, dict[str, str]]]:
    import io

    text = read_text(path, DATA_BYTES * 16, _file_fault, if_missing="is this a run folder?")
    reader = csv.DictReader(io.StringIO(text, newline=""), strict=True)
    try:
        header = reader.fieldnames or []
        if tuple(header) != columns:
            missing = [c for c in columns if c not in header]
            problem = f"lacks column(s) {', '.join(missing)}" if missing else "unexpected columns"
            raise _fault(path, "header", problem)
        for line, row in enumerate(reader, start=2):
            if None in row or any(v is None for v in row.values()):
                raise _fault(path, f"line {line}", "wrong number of cells")
            yield line, row
    except csv.Error as error:
        raise _fault(path, "csv", str(error)) from None


class _Cells:
    """Typed cells of one CSV row; a bad cell names the line and the column."""

    def __init__(self, path: Path, line: int, row: dict[str, str]) -> None:
        self.schema = Schema(path, _fault)
        self.line = line
        self.row = row

    def key(self, column: str) -> str:
        return f"line {self.line}, {column}"

    def text(self, column: str, *, empty: bool = True) -> str:
        """Any text (ids, reasons): given back exactly as it was written."""
        value = from_csv_cell(self.row[column])
        return self.schema.string(self.key(column), value, empty=empty, limit=100_000)

    def count(self, column: str) -> int:
        value = self.row[column]
        if not value.isascii() or not value.isdigit():
            raise self.schema.fail(self.key(column), f"expected a whole number, got {value!r}")
        return int(value)

    def optional_count(self, column: str) -> int | None:
        return None if self.row[column] == "" else self.count(column)

    def number(self, column: str, *, low: float, high: float, empty: bool = False) -> float:
        value = self.row[column]
        if value == "" and empty:
            return math.nan
        try:
            number = float(value)
        except ValueError:
            raise self.schema.fail(self.key(column), f"expected a number, got {value!r}") from None
        return self.schema.number(self.key(column), number, low=low, high=high)


def read_ranking(folder: Path, summary: RunSummary) -> list[RankingRow]:
    path = folder / RANKING_FILE
    names = set(summary.class_names) | {""}
    rows: list[RankingRow] = []
    seen: set[str] = set()
    for line, raw in _csv_rows(path, RANKING_COLUMNS):
        c = _Cells(path, line, raw)
        row = RankingRow(
            rank=c.count("rank"),
            image_id=c.text("image_id", empty=False),
            label_quality=c.number("label_quality", low=0, high=1, empty=True),
            flagged_pixels=c.count("flagged_pixels"),
            flagged_fraction=c.number("flagged_fraction", low=0, high=1),
            top_given=c.text("top_given"),
            top_predicted=c.text("top_predicted"),
            top_pair_pixels=c.count("top_pair_pixels"),
            region_count=c.optional_count("region_count"),
            largest_region_area=c.optional_count("largest_region_area"),
            largest_region_given=c.text("largest_region_given"),
            largest_region_predicted=c.text("largest_region_predicted"),
            valid_pixels=c.count("valid_pixels"),
            skipped=c.text("skipped"),
        )
        if row.rank != len(rows) + 1:
            raise _fault(path, c.key("rank"), f"expected {len(rows) + 1}: ranks run 1, 2, 3, ...")
        if row.image_id in seen:
            raise _fault(path, c.key("image_id"), f"image {row.image_id!r} appears twice")
        seen.add(row.image_id)
        if row.flagged_pixels > row.valid_pixels or row.top_pair_pixels > row.flagged_pixels:
            raise _fault(path, c.key("flagged_pixels"), "more than the image's valid pixels")
        for column in (
            "top_given",
            "top_predicted",
            "largest_region_given",
            "largest_region_predicted",
        ):
            if getattr(row, column) not in names:
                raise _fault(path, c.key(column), "not a class of the run")
        if row.skipped and not math.isnan(row.label_quality):
            raise _fault(path, c.key("label_quality"), "a skipped image has no score")
        if rows and _order(row) < _order(rows[-1]):
            raise _fault(path, c.key("rank"), "rows are not in rank order (lowest score first)")
        rows.append(row)
    if len(rows) != summary.num_images:
        raise _fault(
            path, "rows", f"{len(rows)} rows but the summary says {summary.num_images} images"
        )
    if sum(r.flagged_pixels for r in rows) != summary.flagged_pixels:
        raise _fault(path, "flagged_pixels", "do not add up to the summary's flagged_pixels")
    if sum(r.valid_pixels for r in rows) != summary.valid_pixels:
        raise _fault(path, "valid_pixels", "do not add up to the summary's valid_pixels")
    if {r.image_id for r in rows if r.skipped} != {s.image_id for s in summary.skipped}:
        raise _fault(path, "skipped", "the skipped images differ from the summary's")
    return rows


def _order(row: RankingRow) -> tuple[bool, float, int]:
    unscored = math.isnan(row.label_quality)
    return (unscored, 0.0 if unscored else row.label_quality, -row.flagged_pixels)


def read_mask_hashes(folder: Path, ids: Iterable[str]) -> dict[str, str]:
    path = folder / MASKS_FILE
    data = read_json_object(path, if_missing="is this a run folder?", fault=_file_fault)
    s = Schema(path, _fault)
    s.mapping("", data, {"algorithm", "masks"})
    if data.get("algorithm") != "sha256":
        raise s.fail("algorithm", "expected sha256")
    masks = data.get("masks")
    if not isinstance(masks, dict):
        raise s.fail("masks", "expected a mapping of image id: sha256")
    hashes = {}
    for image_id, digest in masks.items():
        if not isinstance(digest, str) or not _HEX64.fullmatch(digest):
            raise s.fail(f"masks.{image_id}", "expected a SHA-256 hex digest")
        hashes[_id(s, "masks", image_id)] = digest
    if set(hashes) != set(ids):
        raise s.fail("masks", "the images differ from the ranking's")
    return hashes


def _overlays(folder: Path, ids: set[str]) -> dict[str, Path]:
    """Overlay file per image id, from overlays/index.json (names checked to be plain file
    names of existing overlays inside the folder)."""
    index = folder / OVERLAY_DIR / OVERLAY_INDEX
    if not index.is_file():
        return {}
    data = read_json_object(index, if_missing="", fault=_file_fault)
    s = Schema(index, _fault)
    found = {}
    for image_id, name in data.items():
        if image_id not in ids:
            raise s.fail(image_id, "not an image of the ranking")
        if not isinstance(name, str) or "/" in name or "\\" in name or not name.endswith(".png"):
            raise s.fail(image_id, "expected the file name of an overlay")
        path = folder / OVERLAY_DIR / name
        if path.is_file():
            found[image_id] = path
    return found


def read_run(folder: Path) -> Run:
    """Read and validate a run folder (everything but regions.csv, read on demand)."""
    if not folder.is_dir():
        raise RunFolderError(
            str(folder), "run folder not found; pass the folder that `segaudit score --out` wrote"
        )
    if not _is_run_folder(folder):
        raise RunFolderError(
            str(folder), "not a segaudit run folder (no " + MARKER_FILE + ")" + _AGAIN
        )
    summary = read_summary(folder)
    ranking = read_ranking(folder, summary)
    ids = {row.image_id for row in ranking}
    hashes = read_mask_hashes(folder, ids)
    return Run(folder, summary, ranking, hashes, _overlays(folder, ids))


def read_regions(run: Run) -> list[RegionRow]:
    path = run.folder / REGIONS_FILE
    if not path.is_file():
        raise RunFolderError(str(path), "not found" + _AGAIN)
    names = set(run.summary.class_names)
    flagged = {r.image_id: r.flagged_pixels for r in run.ranking}
    area: dict[str, int] = {}
    rows = []
    for line, raw in _csv_rows(path, REGION_COLUMNS):
        c = _Cells(path, line, raw)
        row = RegionRow(
            image_id=c.text("image_id", empty=False),
            region_id=c.count("region_id"),
            given=c.text("given", empty=False),
            predicted=c.text("predicted", empty=False),
            area=c.count("area"),
            x=c.count("x"),
            y=c.count("y"),
            width=c.count("width"),
            height=c.count("height"),
            mean_self_confidence=c.number("mean_self_confidence", low=0, high=1),
            mean_predicted_probability=c.number("mean_predicted_probability", low=0, high=1),
        )
        if row.image_id not in flagged:
            raise _fault(path, c.key("image_id"), "not an image of the ranking")
        if row.given not in names or row.predicted not in names:
            raise _fault(path, c.key("given"), "not a class of the run")
        if row.area < 1 or row.area > row.width * row.height:
            raise _fault(path, c.key("area"), "does not fit its box")
        area[row.image_id] = area.get(row.image_id, 0) + row.area
        if area[row.image_id] > flagged[row.image_id]:
            raise _fault(path, c.key("area"), "regions cover more than the image's flagged pixels")
        rows.append(row)
    return rows


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


__all__ = [
    "ClassRow",
    "IssueRow",
    "RankingRow",
    "RegionRow",
    "RegionSpill",
    "Run",
    "RunSummary",
    "RunWriter",
    "SkippedRow",
    "is_plain_text",
    "read_run",
]
