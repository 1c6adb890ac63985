"""The run folder: its format, and the only code that writes or reads its files.

A run folder holds ``summary.json`` (:class:`RunSummary`), ``ranking.csv`` (one
:class:`RankingRow` per image), ``regions.csv`` (:class:`RegionRow`), ``masks.json`` (the
SHA-256 of every mask file, for baselines and for noticing masks that changed since),
``overlays/`` (pictures and ``index.json``), with ``score --save-masks`` ``flagged/`` and
``suggested/`` (per image with flagged pixels: its region ids and the suggested mask, each
with an ``index.json``) and, once reported, ``report.html``.

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

from segaudit.rundir.format import (
    FLAGGED_DIR,
    MASKS_FILE,
    NO_REGION,
    OVERLAY_DIR,
    RANKING_COLUMNS,
    RANKING_FILE,
    REGION_COLUMNS,
    REGIONS_FILE,
    REPORT_FILE,
    SUGGESTED_DIR,
    SUMMARY_FILE,
    ClassRow,
    IssueRow,
    RankingRow,
    RegionRow,
    RunSummary,
    SkippedRow,
    csv_cell,
    file_sha256,
    from_csv_cell,
    overlay_name,
    run_id,
    saved_mask_name,
)
from segaudit.rundir.reader import Run, read_regions, read_run
from segaudit.rundir.writer import RegionSpill, RunWriter, check_run_target, write_report_file

__all__ = [
    "FLAGGED_DIR",
    "MASKS_FILE",
    "NO_REGION",
    "OVERLAY_DIR",
    "RANKING_COLUMNS",
    "RANKING_FILE",
    "REGIONS_FILE",
    "REGION_COLUMNS",
    "REPORT_FILE",
    "SUGGESTED_DIR",
    "SUMMARY_FILE",
    "ClassRow",
    "IssueRow",
    "RankingRow",
    "RegionRow",
    "RegionSpill",
    "Run",
    "RunSummary",
    "RunWriter",
    "SkippedRow",
    "check_run_target",
    "csv_cell",
    "file_sha256",
    "from_csv_cell",
    "overlay_name",
    "read_regions",
    "read_run",
    "run_id",
    "saved_mask_name",
    "write_report_file",
]
