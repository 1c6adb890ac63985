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
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import IO

from segaudit.errors import OutputError
from segaudit.output.atomic import atomic_write, output_folder
from segaudit.rundir.format import (
    CSV_LINE_END,
    FLAGGED_DIR,
    MARKER_FILE,
    MASK_INDEX,
    MASKS_FILE,
    OVERLAY_DIR,
    OVERLAY_INDEX,
    PICTURE_DIRS,
    RANKING_COLUMNS,
    RANKING_FILE,
    REGION_COLUMNS,
    REGIONS_FILE,
    REPORT_FILE,
    RUN_FILES,
    RUN_FORMAT,
    SUGGESTED_DIR,
    SUMMARY_FILE,
    RankingRow,
    RegionRow,
    RunSummary,
    csv_cell,
    is_run_folder,
    overlay_name,
    region_rank_cells,
    saved_mask_name,
)


def _sibling(folder: Path, tag: str) -> Path:
    return folder.parent / f".{folder.name}.segaudit-{tag}"


def _foreign_files(folder: Path) -> list[str]:
    """Entries of a run folder that segaudit does not write."""
    foreign = [p.name for p in folder.iterdir() if p.name not in RUN_FILES]
    for name, index in PICTURE_DIRS.items():
        pictures = folder / name
        if pictures.is_dir():
            foreign += [
                f"{name}/{p.name}"
                for p in pictures.iterdir()
                if not (p.is_file() and (p.suffix == ".png" or p.name == index))
            ]
        elif pictures.exists():
            foreign.append(name)
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
    for folder_name, index in PICTURE_DIRS.items():
        pictures = folder / folder_name
        if pictures.is_dir() and not pictures.is_symlink():
            for path in pictures.iterdir():
                if path.is_file() and (path.suffix == ".png" or path.name == index):
                    path.unlink()
            with contextlib.suppress(OSError):
                pictures.rmdir()
    for name in sorted(RUN_FILES - set(PICTURE_DIRS) - {MARKER_FILE}):
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

    def saved_mask_paths(self, image_id: str) -> tuple[Path, Path]:
        """Where an image's flagged and suggested masks go (``score --save-masks``)."""
        name = saved_mask_name(image_id)
        return (
            output_folder(self.path(FLAGGED_DIR)) / name,
            output_folder(self.path(SUGGESTED_DIR)) / name,
        )

    def write_saved_mask_index(self, ids: Iterable[str]) -> None:
        """The id -> file name map of the saved masks, in both folders."""
        names = {i: saved_mask_name(i) for i in sorted(ids)}
        for folder in (FLAGGED_DIR, SUGGESTED_DIR):
            with atomic_write(output_folder(self.path(folder)) / MASK_INDEX) as handle:
                json.dump(names, handle, indent=1, ensure_ascii=False)
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


def _csv_lines(rows: Iterable[list[str]]) -> list[str]:
    """Each row as one CSV line (line end included), its cells made safe by csv_cell."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator=CSV_LINE_END)
    lines = []
    for cells in rows:
        writer.writerow([csv_cell(c) for c in cells])
        lines.append(text.getvalue())
        text.seek(0)
        text.truncate()
    return lines


#: What a spill keeps of one image's regions.csv rows: each row's CSV text without its
#: last two cells and line end, and those two cells' values.
_SpilledRows = tuple[list[str], list[float], list[int]]


class RegionSpill:
    """regions.csv rows, spilled to a private temporary file as images finish (in any
    order), then written in image order: memory does not grow with the number of regions.
    Rows are formatted when spilled (on the worker threads); ``finish`` gives an image's
    region scores and ranks at write time (they are known only once every image is in)."""

    def __init__(self) -> None:
        self._spill: IO[bytes] = tempfile.TemporaryFile(prefix="segaudit-regions-")  # noqa: SIM115 (closed in close())
        self._places: dict[int, tuple[int, int]] = {}

    def add(self, index: int, rows: list[RegionRow]) -> None:
        """Not thread-safe for the spill file: callers serialise :meth:`store` (the
        collector holds a lock); :meth:`format` may run anywhere."""
        self.store(index, self.format(rows))

    @staticmethod
    def format(rows: list[RegionRow]) -> _SpilledRows:
        """One image's rows as the spill keeps them (thread-safe: no shared state)."""
        cut = len(CSV_LINE_END)
        heads = [line[:-cut] for line in _csv_lines(row.head_cells() for row in rows)]
        return heads, [row.region_score for row in rows], [row.region_rank for row in rows]

    def store(self, index: int, spilled: _SpilledRows) -> None:
        """Keep one image's formatted rows (callers serialise: one spill file)."""
        if spilled[0]:
            data = pickle.dumps(spilled, protocol=pickle.HIGHEST_PROTOCOL)
            offset = self._spill.seek(0, os.SEEK_END)
            self._spill.write(data)
            self._places[index] = (offset, len(data))

    def _read(self, index: int) -> _SpilledRows:
        offset, length = self._places[index]
        self._spill.seek(offset)
        spilled: _SpilledRows = pickle.loads(self._spill.read(length))  # our own file
        return spilled

    def write(
        self,
        writer: RunWriter,
        finish: Callable[[int], tuple[Sequence[float], Sequence[int]]] | None = None,
    ) -> None:
        """regions.csv, rows in image order; ``finish(index)``: that image's region scores
        and ranks, in row order (else the rows' own)."""
        with atomic_write(writer.path(REGIONS_FILE)) as handle:
            csv.writer(handle, lineterminator=CSV_LINE_END).writerow(REGION_COLUMNS)
            for index in sorted(self._places):
                heads, stored_scores, stored_ranks = self._read(index)
                scores: Sequence[float] = stored_scores
                ranks: Sequence[int] = stored_ranks
                if finish is not None:
                    scores, ranks = finish(index)
                handle.write(
                    "".join(
                        f"{head},{','.join(map(csv_cell, region_rank_cells(s, r)))}{CSV_LINE_END}"
                        for head, s, r in zip(heads, scores, ranks, strict=True)
                    )
                )

    def close(self) -> None:
        self._spill.close()
