"""``segaudit export RUNDIR --to cvat|label-studio|coco --out DIR [--top N | --flagged]``.

The suspect images of a run (all images with flagged pixels, or the N most suspect of
them) with their current masks and suspect regions, in a form an annotation tool imports
(:mod:`segaudit.export`). The masks are read again from the inputs the run records, each
checked against ``masks.json`` first (a mask changed since scoring is refused); the region
pixels come from ``score --save-masks``. Written into a hidden sibling and renamed into
place: a refused or failed export leaves nothing.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from segaudit.commands.apply import run_masks
from segaudit.config.classes import load_classes
from segaudit.core.pixel import valid_mask
from segaudit.errors import DatasetError, OptionError, OutputError, RunFolderError
from segaudit.export import ExportFormat, coco, cvat, label_studio
from segaudit.export.items import ClassInfo, ExportItem
from segaudit.io.encoding import read_raw
from segaudit.io.masks import MaskDecoder, read_mask
from segaudit.output.overlay import find_image
from segaudit.rundir import NO_REGION, RegionRow, Run, read_run

Writer = Callable[[Iterable[ExportItem], ClassInfo, Path], list[Path]]
#: Every format's writer (tests check each ExportFormat has one).
WRITERS: dict[ExportFormat, Writer] = {
    ExportFormat.CVAT: cvat.write,
    ExportFormat.LABEL_STUDIO: label_studio.write,
    ExportFormat.COCO: coco.write,
}


@dataclass(frozen=True)
class ExportRequest:
    run_dir: Path
    to: ExportFormat
    out: Path
    top: int | None = None  # None: every image with flagged pixels
    image_root: str = ""


@dataclass
class ExportOutcome:
    out: Path
    images: int
    regions: int
    files: list[Path]


def _decoder(run: Run) -> MaskDecoder:
    """Masks read as the run read them: its classes config and ignore values."""
    config_path = run.summary.inputs.get("classes")
    config = load_classes(Path(config_path)) if config_path else None
    return MaskDecoder.from_config(config, decoder_ignore(run))


def _image_path(run: Run, image_id: str, root: str) -> str:
    """Where the tool finds the picture: relative to --images (or the id), under root."""
    folder = run.summary.inputs.get("images")
    found = find_image(Path(folder), image_id) if folder else None
    rel = found.relative_to(folder).as_posix() if found is not None and folder else image_id
    return f"{root.rstrip('/')}/{rel}" if root else rel


def _checked_mask(image_id: str, path: Path, expected: str) -> None:
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != expected:
        raise DatasetError(
            f"{path}: the mask of {image_id!r} changed since scoring (its SHA-256 differs "
            "from masks.json); score again and export the new run"
        )


def selected(run: Run, top: int | None) -> list[str]:
    """Suspect images, most suspect first: flagged and not skipped (the first ``top``)."""
    ids = [r.image_id for r in run.ranking if r.flagged_pixels > 0 and not r.skipped]
    return ids if top is None else ids[:top]


def export_items(run: Run, ids: list[str], image_root: str) -> Iterator[ExportItem]:
    """One item per image, read as it is written (one mask in memory at a time)."""
    masks = run_masks(run)
    decoder = _decoder(run)
    ignore = decoder_ignore(run)
    saved = run.saved_masks or {}
    by_image: dict[str, list[RegionRow]] = {}
    for region in run.regions():
        by_image.setdefault(region.image_id, []).append(region)
    scores = {r.image_id: r.label_quality for r in run.ranking}
    for image_id in ids:
        path, _ = masks[image_id]
        _checked_mask(image_id, path, run.mask_hash(image_id))
        labels = read_mask(image_id, path, decoder)
        flagged = read_raw(image_id, saved[image_id][0])
        region_ids = flagged.pixels.astype(np.int64)
        region_ids[region_ids == NO_REGION.get(flagged.mode, -1)] = 0
        if region_ids.shape != labels.shape:
            raise RunFolderError(str(saved[image_id][0]), "not the size of the mask; score again")
        yield ExportItem(
            image_id,
            _image_path(run, image_id, image_root),
            labels,
            valid_mask(labels, ignore),
            region_ids,
            by_image.get(image_id, []),
            scores[image_id],
        )


def decoder_ignore(run: Run) -> frozenset[int]:
    return frozenset(int(v) for v in run.summary.parameters.get("ignore", [255]))


def export_run(request: ExportRequest) -> ExportOutcome:
    """Write the export (see the module doc); nothing on any refusal."""
    if request.top is not None and request.top < 1:
        raise OptionError(f"--top must be at least 1, got {request.top}")
    run = read_run(request.run_dir)
    out = request.out
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise OutputError(f"{out}: exists and is not empty; choose a new --out")
    ids = selected(run, request.top)
    if ids and run.saved_masks is None:
        raise RunFolderError(
            str(run.folder),
            "has no saved masks (flagged/, suggested/): score again with --save-masks",
        )
    classes = ClassInfo(run.summary.class_names, run.summary.class_colors)
    items = export_items(run, ids, request.image_root)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.segaudit-export-", dir=out.parent))
    try:
        files = WRITERS[request.to](items, classes, staging)
        if out.exists():
            out.rmdir()
        os.replace(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    chosen = set(ids)
    regions = sum(1 for r in run.regions() if r.image_id in chosen)
    return ExportOutcome(out, len(ids), regions, [out / f.name for f in files])
