"""Reading a run folder: every field of every file validated, or a RunFolderError."""

from __future__ import annotations

import csv
import math
import os
import re
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from segaudit.config.files import read_json_object
from segaudit.config.schema import Schema
from segaudit.errors import RunFolderError
from segaudit.rundir.format import (
    FLAGGED_DIR,
    MARKER_FILE,
    MASK_INDEX,
    MASKS_FILE,
    OVERLAY_DIR,
    OVERLAY_INDEX,
    RANKING_COLUMNS,
    RANKING_FILE,
    REGION_COLUMNS,
    REGIONS_FILE,
    RUN_FORMAT,
    SUGGESTED_DIR,
    SUMMARY_FILE,
    ClassRow,
    IssueRow,
    RankingRow,
    RegionRow,
    RunSummary,
    SkippedRow,
    from_csv_cell,
    is_run_folder,
    saved_mask_name,
)

#: A SHA-256 digest as masks.json writes it.
_HEX64 = re.compile(r"[0-9a-f]{64}")


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
_INPUT_KEYS = frozenset(
    {
        "labels",
        "probs",
        "manifest",
        "images",
        "classes",
        "calibration",
        "ids",
        "mask_pattern",
        "image_pattern",
        "probs_key",
    }
)
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
        "pairing_check",
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
    #: image id -> (flagged mask, suggested mask); None when scored without --save-masks.
    saved_masks: dict[str, tuple[Path, Path]] | None = None

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
    """The rows of a run-folder CSV, streamed (a regions table may be large): a regular
    file, UTF-8, exactly ``columns``, every row complete; cells are at most the csv
    module's field limit (128 KiB)."""
    try:
        handle = path.open(encoding="utf-8", newline="")
    except FileNotFoundError:
        raise _file_fault(path, "not found; is this a run folder?") from None
    except OSError as error:
        raise _file_fault(path, f"cannot read ({error.strerror or error})") from None
    with handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            raise _file_fault(path, "not a regular file")
        reader = csv.DictReader(handle, strict=True)
        try:
            header = reader.fieldnames or []
            if tuple(header) != columns:
                missing = [c for c in columns if c not in header]
                problem = (
                    f"lacks column(s) {', '.join(missing)}" if missing else "unexpected columns"
                )
                raise _fault(path, "header", problem)
            for line, row in enumerate(reader, start=2):
                if None in row or any(v is None for v in row.values()):
                    raise _fault(path, f"line {line}", "wrong number of cells")
                yield line, row
        except csv.Error as error:
            raise _fault(path, "csv", str(error)) from None
        except UnicodeDecodeError as error:
            raise _fault(path, "encoding", f"not UTF-8 text (byte {error.start})") from None


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
            agreement=c.number("agreement", low=0, high=1, empty=True),
        )
        if row.rank != len(rows) + 1:
            raise _fault(path, c.key("rank"), f"expected {len(rows) + 1}: ranks run 1, 2, 3, ...")
        if row.image_id in seen:
            raise _fault(path, c.key("image_id"), f"image {row.image_id!r} appears twice")
        seen.add(row.image_id)
        if row.flagged_pixels > row.valid_pixels or row.top_pair_pixels > row.flagged_pixels:
            raise _fault(path, c.key("flagged_pixels"), "more than the image's valid pixels")
        expected = row.flagged_pixels / row.valid_pixels if row.valid_pixels else 0.0
        if not math.isclose(row.flagged_fraction, expected, rel_tol=1e-5, abs_tol=1e-9):
            # written with 6 significant digits: anything further off was not written so
            raise _fault(path, c.key("flagged_fraction"), "is not flagged_pixels / valid_pixels")
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
        if row.skipped and not math.isnan(row.agreement):
            raise _fault(path, c.key("agreement"), "a skipped image has no agreement")
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


def _saved_masks(folder: Path, ids: set[str]) -> dict[str, tuple[Path, Path]] | None:
    """The saved masks per image id, from flagged/index.json (None when not saved). Both
    folders must hold the file the index names."""
    index = folder / FLAGGED_DIR / MASK_INDEX
    if not index.is_file():
        return None
    data = read_json_object(index, if_missing="", fault=_file_fault)
    s = Schema(index, _fault)
    found = {}
    for image_id, name in data.items():
        if image_id not in ids:
            raise s.fail(image_id, "not an image of the ranking")
        if name != saved_mask_name(image_id):
            raise s.fail(image_id, "expected the file name segaudit gives this image")
        flagged, suggested = folder / FLAGGED_DIR / name, folder / SUGGESTED_DIR / name
        if not flagged.is_file() or not suggested.is_file():
            raise s.fail(image_id, f"{name} is missing in {FLAGGED_DIR}/ or {SUGGESTED_DIR}/")
        found[image_id] = (flagged, suggested)
    return found


def read_run(folder: Path) -> Run:
    """Read and validate a run folder (everything but regions.csv, read on demand)."""
    if not folder.is_dir():
        raise RunFolderError(
            str(folder), "run folder not found; pass the folder that `segaudit score --out` wrote"
        )
    if not is_run_folder(folder):
        raise RunFolderError(
            str(folder), "not a segaudit run folder (no " + MARKER_FILE + ")" + _AGAIN
        )
    summary = read_summary(folder)
    ranking = read_ranking(folder, summary)
    ids = {row.image_id for row in ranking}
    hashes = read_mask_hashes(folder, ids)
    return Run(folder, summary, ranking, hashes, _overlays(folder, ids), _saved_masks(folder, ids))


def read_regions(run: Run) -> list[RegionRow]:
    path = run.folder / REGIONS_FILE
    if not path.is_file():
        raise RunFolderError(str(path), "not found" + _AGAIN)
    names = set(run.summary.class_names)
    flagged = {r.image_id: r.flagged_pixels for r in run.ranking}
    area: dict[str, int] = {}
    ranks: set[int] = set()
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
            region_score=c.number("region_score", low=0, high=1),
            region_rank=c.count("region_rank"),
        )
        if row.image_id not in flagged:
            raise _fault(path, c.key("image_id"), "not an image of the ranking")
        if row.given not in names or row.predicted not in names:
            raise _fault(path, c.key("given"), "not a class of the run")
        if row.region_rank < 1 or row.region_rank in ranks:
            raise _fault(path, c.key("region_rank"), "ranks are 1, 2, 3, ... each once")
        ranks.add(row.region_rank)
        if row.area < 1 or row.area > row.width * row.height:
            raise _fault(path, c.key("area"), "does not fit its box")
        area[row.image_id] = area.get(row.image_id, 0) + row.area
        if area[row.image_id] > flagged[row.image_id]:
            raise _fault(path, c.key("area"), "regions cover more than the image's flagged pixels")
        rows.append(row)
    if ranks and max(ranks) != len(rows):
        raise _fault(path, "region_rank", f"ranks run 1..{len(rows)}, one per region")
    return rows
