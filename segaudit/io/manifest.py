"""Pairing by a manifest CSV instead of by file names.

Columns: ``image_id``, ``mask`` (path), ``probs`` (an integer row of the stacked
probabilities array, or a path to the image's own .npy/.npz file), and optionally ``image``
(the RGB image). Relative paths resolve against the CSV's folder.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from segaudit.errors import DatasetError

REQUIRED_COLUMNS = ("image_id", "mask", "probs")
OPTIONAL_COLUMNS = ("image",)


@dataclass(frozen=True)
class ManifestRow:
    """One image of the manifest: exactly one of ``probs_index`` and ``probs_path`` is set."""

    image_id: str
    mask: Path
    probs_index: int | None
    probs_path: Path | None
    image: Path | None


def _resolve(base: Path, value: str) -> Path:
    path = Path(value)
    return path if path.is_absolute() else base / path


def read_manifest(path: Path) -> list[ManifestRow]:
    """The manifest's rows, checked for columns, empty cells, duplicate ids and mixed probs."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            columns = reader.fieldnames or []
            missing = [c for c in REQUIRED_COLUMNS if c not in columns]
            if missing:
                raise DatasetError(
                    f"{path}: manifest lacks column(s) {', '.join(missing)}; expected a header "
                    f"row with {', '.join(REQUIRED_COLUMNS)} (and optionally image)"
                )
            records = list(reader)
    except OSError as error:
        raise DatasetError(f"{path}: cannot read manifest ({error.strerror})") from None
    except (csv.Error, UnicodeDecodeError) as error:
        raise DatasetError(f"{path}: not a readable CSV manifest ({error})") from None
    base = path.parent
    rows: list[ManifestRow] = []
    seen: set[str] = set()
    for line, record in enumerate(records, start=2):
        cells = {k: (record.get(k) or "").strip() for k in (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS)}
        empty = [k for k in REQUIRED_COLUMNS if not cells[k]]
        if empty:
            raise DatasetError(f"{path}: line {line}: empty {', '.join(empty)}")
        image_id = cells["image_id"]
        if image_id in seen:
            raise DatasetError(f"{path}: line {line}: duplicate image id {image_id}")
        seen.add(image_id)
        probs = cells["probs"]
        # ASCII digits only: str.isdigit() is also true of "²", which int() refuses, and
        # of other scripts' digits; such a cell is a file name (that must then exist)
        index = int(probs) if probs.isascii() and probs.isdigit() else None
        rows.append(
            ManifestRow(
                image_id,
                _resolve(base, cells["mask"]),
                index,
                None if index is not None else _resolve(base, probs),
                _resolve(base, cells["image"]) if cells["image"] else None,
            )
        )
    if not rows:
        raise DatasetError(f"{path}: manifest has no rows")
    kinds = {row.probs_index is None for row in rows}
    if len(kinds) > 1:
        raise DatasetError(
            f"{path}: the probs column mixes array indices and file paths; use one kind"
        )
    return rows
