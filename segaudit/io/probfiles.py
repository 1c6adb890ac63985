"""Predicted probabilities (or logits) stored one file per image: ``<id>.npy`` or ``<id>.npz``.

Research code often saves each image's (K, H, W) or (H, W, K) output on its own, at the
model's resolution; images may differ in size. A broken file is a problem of that image
only, so reading raises :class:`ImageError` and the image becomes a skipped row.
"""

from __future__ import annotations

import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from segaudit.errors import DatasetError, ImageError, ReadError
from segaudit.io.masks import utf8_id
from segaudit.io.probs import FLOAT_DTYPES

PROBS_SUFFIXES = (".npy", ".npz")
#: Keys tried, in order, inside an .npz that holds several arrays.
NPZ_KEYS = ("pred_probs", "probs", "probabilities", "logits")


def probs_file_ids(folder: Path) -> dict[str, Path]:
    """Map image id (relative path without suffix) to its .npy/.npz file."""
    found: dict[str, Path] = {}
    for path in sorted(folder.rglob("*")):
        if path.suffix in PROBS_SUFFIXES and path.is_file():
            image_id = utf8_id(path.relative_to(folder).with_suffix("").as_posix(), folder, path)
            if image_id in found:
                raise DatasetError(
                    f"{folder}: both {found[image_id].name} and {path.name} hold image "
                    f"{image_id}; keep one"
                )
            found[image_id] = path
    return found


def is_probs_folder(path: Path) -> bool:
    """A folder of per-image files rather than a zarr store."""
    if not path.is_dir():
        return False
    if any((path / name).exists() for name in ("zarr.json", ".zarray", ".zgroup")):
        return False
    return any(p.suffix in PROBS_SUFFIXES for p in path.rglob("*"))


def load_probs_file(image_id: str, path: Path, key: str = "") -> NDArray[np.floating]:
    """One image's array from a .npy (memory-mapped) or .npz file, checked to be float.
    ``key`` names the array of an .npz (default: its only array, or one of NPZ_KEYS)."""
    try:
        if path.suffix == ".npz":
            array = _npz_array(image_id, path, key)
        else:
            array = np.load(path, mmap_mode="r", allow_pickle=False)
    except ImageError:
        raise
    except FileNotFoundError:
        raise ReadError(image_id, str(path), "probabilities file not found") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise ReadError(image_id, str(path), f"cannot read probabilities ({error})") from None
    if array.dtype not in FLOAT_DTYPES:
        raise ImageError(
            image_id, f"{path}: probabilities have dtype {array.dtype}; expected float16/32/64"
        )
    return array


def _npz_array(image_id: str, path: Path, key: str = "") -> NDArray[Any]:
    with np.load(path, allow_pickle=False) as archive:
        names = list(archive.files)
        tried = (key,) if key else (*NPZ_KEYS, *(names if len(names) == 1 else ()))
        for name in tried:
            if name in names:
                return np.asarray(archive[name])
    expected = f"no array {key!r}" if key else f"none named {' / '.join(NPZ_KEYS)}"
    raise ImageError(
        image_id,
        f"{path}: .npz holds {', '.join(names) or 'no arrays'} ({expected}); "
        "name the array with --probs-key",
    )


@dataclass
class FileProbs:
    """Per-image probability files, addressed by image id."""

    path: str
    files: Mapping[str, Path]

    @classmethod
    def open(cls, folder: Path) -> FileProbs:
        files = probs_file_ids(folder)
        if not files:
            raise DatasetError(f"{folder}: no per-image .npy/.npz probability files found")
        return cls(str(folder), files)

    def read(self, image_id: str, path: Path | None = None) -> NDArray[np.floating]:
        """One image's stored array (layout as on disk)."""
        target = path if path is not None else self.files[image_id]
        return np.asarray(load_probs_file(image_id, target))
