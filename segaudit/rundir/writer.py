"""Writing a run folder: staged beside it, swapped in whole, under a lock."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import pickle
import shutil
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import IO

from segaudit.errors import OutputError
from segaudit.output.atomic import atomic_write, output_folder
from segaudit.rundir.format import (
    CSV_LINE_END,
    MARKER_FILE,
    MASKS_FILE,
    OVERLAY_DIR,
    OVERLAY_INDEX,
    RANKING_COLUMNS,
    RANKING_FILE,
    REGION_COLUMNS,
    REGIONS_FILE,
    REPORT_FILE,
    RUN_FILES,
    RUN_FORMAT,
    SUMMARY_FILE,
    RankingRow,
    RegionRow,
    RunSummary,
    csv_cell,
    is_run_folder,
    overlay_name,
)


def _sibling(folder: Path, tag: str) -> Path:
    return folder.parent / f".{folder.name}.segaudit-{tag}"


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
    if not is_run_folder(folder):
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
        try:
            self._start()
        except BaseException:  # SIGTERM or Ctrl-C here too: __exit__ would not run
            self.__exit__()
            raise
        return self

    def _start(self) -> None:
        # Left by a run that was killed (SIGKILL, power loss): ours by name and marker.
        previous = _sibling(self.folder, "previous")
        if not self.folder.exists() and previous.is_dir() and is_run_folder(previous):
            os.replace(previous, self.folder)  # killed mid-swap: the previous run comes back
        for leftover in (self.staging, previous):
            if leftover.is_dir() and is_run_folder(leftover):
                shutil.rmtree(leftover)
        try:
            self.staging.mkdir()
        except OSError as error:
            raise OutputError(f"{self.staging}: cannot create ({error.strerror})") from None
        (self.staging / MARKER_FILE).write_text(f"segaudit run folder, format {RUN_FORMAT}\n")

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
        try:
            os.replace(self.staging, self.folder)
        except BaseException:  # the previous run goes back: never no run at all
            if moved:
                os.replace(previous, self.folder)
            raise
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
    text = io.StringIO()
    writer = csv.writer(text, lineterminator=CSV_LINE_END)
    for row in rows:
        writer.writerow([csv_cell(c) for c in row.cells()])
    return text.getvalue()


class RegionSpill:
    """regions.csv rows, spilled to a private temporary file as images finish (in any
    order), then written in image order: memory does not grow with the number of regions.
    ``finish`` completes an image's rows at write time (their dataset-wide score and rank
    are known only once every image is in)."""

    def __init__(self) -> None:
        self._spill: IO[bytes] = tempfile.TemporaryFile(prefix="segaudit-regions-")  # noqa: SIM115 (closed in close())
        self._places: dict[int, tuple[int, int]] = {}

    def add(self, index: int, rows: list[RegionRow]) -> None:
        """Not thread-safe: callers serialise (the collector holds a lock)."""
        if rows:
            data = pickle.dumps(rows, protocol=pickle.HIGHEST_PROTOCOL)
            offset = self._spill.seek(0, os.SEEK_END)
            self._spill.write(data)
            self._places[index] = (offset, len(data))

    def rows(self, index: int) -> list[RegionRow]:
        if index not in self._places:
            return []
        offset, length = self._places[index]
        self._spill.seek(offset)
        rows: list[RegionRow] = pickle.loads(self._spill.read(length))  # our own file
        return rows

    def write(
        self,
        writer: RunWriter,
        finish: Callable[[int, list[RegionRow]], list[RegionRow]] | None = None,
    ) -> None:
        with atomic_write(writer.path(REGIONS_FILE)) as handle:
            csv.writer(handle, lineterminator=CSV_LINE_END).writerow(REGION_COLUMNS)
            for index in sorted(self._places):
                rows = self.rows(index)
                handle.write(region_lines(finish(index, rows) if finish else rows))

    def close(self) -> None:
        self._spill.close()
