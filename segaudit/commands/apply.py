"""``segaudit apply RUNDIR --review review.json --out DIR``: a corrected copy of the masks.

Every mask of the run is written under ``--out`` at the same relative path, name and
encoding as the input (relative to ``--labels``, or with a manifest to the masks' common
folder). Masks with no region marked *fix* are copied byte for byte; in the others, the
pixels of the fixed regions (``flagged/`` of ``score --save-masks``) take the suggested
mask's raw value there (``suggested/``: the model's class in the input's encoding), and
every other pixel is kept as it was.

Nothing is written unless everything is right: the review is this run's and names only
its images and regions, every mask is unchanged since scoring (its SHA-256 against
``masks.json``, checked while copying), ``--out`` is new or empty and apart from the
masks. The copy is made in a hidden sibling folder and renamed into place at the end.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from segaudit.config.review import Decision, check_review, load_review
from segaudit.errors import DatasetError, OptionError, OutputError, RunFolderError
from segaudit.io.encoding import RawMask, read_raw, write_raw
from segaudit.io.manifest import read_manifest
from segaudit.io.masks import mask_ids
from segaudit.rundir import NO_REGION, Run, read_run


@dataclass(frozen=True)
class ApplyRequest:
    run_dir: Path
    review: Path
    out: Path


@dataclass
class ImageChange:
    image_id: str
    path: str  # relative, as written under --out
    regions: list[int]
    pixels: int


@dataclass
class ApplyOutcome:
    out: Path
    copied: int
    changed: list[ImageChange] = field(default_factory=list)
    kept: int = 0  # regions marked keep (left as labelled)


def run_masks(run: Run) -> dict[str, tuple[Path, str]]:
    """Per image id of the run: its mask file and its path relative to the masks' root,
    found again from the inputs summary.json records (--labels or --manifest)."""
    inputs = run.summary.inputs
    ids = [row.image_id for row in run.ranking]
    found: dict[str, Path]
    if inputs.get("manifest"):
        found = {row.image_id: row.mask for row in read_manifest(Path(inputs["manifest"]))}
        folders = [found[i].parent.resolve() for i in ids if i in found]
        root = Path(os.path.commonpath(folders)) if folders else Path(".")
        rel = {i: p.resolve().relative_to(root).as_posix() for i, p in found.items()}
    elif inputs.get("labels"):
        root = Path(inputs["labels"])
        found = mask_ids(root)
        rel = {i: p.relative_to(root).as_posix() for i, p in found.items()}
    else:
        raise RunFolderError(str(run.folder), "summary.json records no --labels or --manifest")
    missing = [i for i in ids if i not in found]
    if missing:
        raise DatasetError(
            f"{run.folder}: the mask of {missing[0]!r} (and {len(missing) - 1} more) is gone "
            "since scoring; score again"
        )
    return {i: (found[i], rel[i]) for i in ids}


def _overlap(a: Path, b: Path) -> bool:
    return a == b or a in b.parents or b in a.parents


def check_out(out: Path, masks: dict[str, tuple[Path, str]], run_dir: Path) -> None:
    """--out must be new or empty, and apart from the masks' folder and the run folder."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise OutputError(f"{out}: exists and is not empty; choose a new --out")
    target = out.resolve()
    path, rel = next(iter(masks.values()))  # every mask's path is relative to one root
    root = path.resolve().parents[rel.count("/")]
    if _overlap(target, root):
        raise OptionError(
            f"--out {out} overlaps the input masks in {root}: apply writes a corrected "
            "copy and never into the input folder; choose a folder apart from it"
        )
    if _overlap(target, run_dir.resolve()):
        raise OptionError(f"--out {out} overlaps the run folder {run_dir}; choose another")


def _copy_checked(image_id: str, source: Path, target: Path, expected: str) -> None:
    """Copy a mask byte for byte, refusing it if it changed since scoring."""
    digest = hashlib.sha256()
    target.parent.mkdir(parents=True, exist_ok=True)
    with source.open("rb") as reader, target.open("wb") as writer:
        for piece in iter(lambda: reader.read(1 << 20), b""):
            digest.update(piece)
            writer.write(piece)
    if digest.hexdigest() != expected:
        raise DatasetError(
            f"{source}: the mask of {image_id!r} changed since scoring (its SHA-256 differs "
            "from masks.json); score again and review the new run"
        )


def corrected(
    image_id: str, raw: RawMask, flagged: RawMask, suggested: RawMask, fix: set[int]
) -> tuple[RawMask, int]:
    """The mask with the fixed regions' pixels taken from the suggestion."""
    if flagged.shape != raw.shape or suggested.shape != raw.shape:
        raise RunFolderError(image_id, "the saved masks do not have the mask's size; score again")
    ids = flagged.pixels.astype(np.int64)
    ids[ids == NO_REGION.get(flagged.mode, -1)] = 0
    where = np.isin(ids, np.fromiter(fix, dtype=np.int64))
    pixels = raw.pixels.copy()
    pixels[where] = suggested.pixels[where]
    changed = int(
        np.count_nonzero(
            np.any(pixels != raw.pixels, axis=-1) if pixels.ndim == 3 else pixels != raw.pixels
        )
    )
    return RawMask(pixels, raw.mode, raw.palette, dict(raw.info)), changed


def apply_review(request: ApplyRequest) -> ApplyOutcome:
    """Write the corrected copy (see the module doc); nothing on any refusal."""
    run = read_run(request.run_dir)
    review = load_review(request.review)
    check_review(review, run, run.regions())
    masks = run_masks(run)
    check_out(request.out, masks, run.folder)
    fixes = review.regions(Decision.FIX)
    if fixes and run.saved_masks is None:
        raise RunFolderError(
            str(run.folder),
            "has no saved masks (flagged/, suggested/): score again with --save-masks",
        )
    saved = run.saved_masks or {}
    out = request.out
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.segaudit-apply-", dir=out.parent))
    outcome = ApplyOutcome(out, 0, kept=sum(len(v) for v in review.regions(Decision.KEEP).values()))
    try:
        for row in run.ranking:
            image_id = row.image_id
            source, rel = masks[image_id]
            target = staging / rel
            _copy_checked(image_id, source, target, run.mask_hash(image_id))
            outcome.copied += 1
            fix = fixes.get(image_id)
            if not fix:
                continue
            if image_id not in saved:
                raise RunFolderError(str(run.folder), f"no saved masks for {image_id!r}")
            flagged_path, suggested_path = saved[image_id]
            raw = read_raw(image_id, target)
            mask, pixels = corrected(
                image_id,
                raw,
                read_raw(image_id, flagged_path),
                read_raw(image_id, suggested_path),
                fix,
            )
            write_raw(mask, target)
            outcome.changed.append(ImageChange(image_id, rel, sorted(fix), pixels))
        if out.exists():
            out.rmdir()  # empty: checked above
        os.replace(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return outcome
