"""Predicted probabilities, shape (N, K, H, W): a zarr array or a memory-mapped .npy file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from segaudit.errors import DatasetError

FLOAT_DTYPES = (np.float16, np.float32, np.float64)


class ProbsReader(Protocol):
    """Reads runs of consecutive images' probabilities; never the whole array at once."""

    path: str
    shape: tuple[int, int, int, int]
    dtype: np.dtype[Any]
    block_size: int
    image_ids: list[str] | None

    def read(self, start: int, stop: int) -> NDArray[np.floating]: ...


def _check_array(path: str, shape: tuple[int, ...], dtype: np.dtype[Any]) -> None:
    if len(shape) != 4:
        raise DatasetError(
            f"{path}: probabilities have shape {shape}; expected 4 dimensions (N, K, H, W)"
        )
    if dtype not in FLOAT_DTYPES:
        raise DatasetError(f"{path}: probabilities have dtype {dtype}; expected float16/32/64")


@dataclass
class NpyProbs:
    """A .npy file opened memory-mapped: pages are read as images are used."""

    path: str
    shape: tuple[int, int, int, int]
    dtype: np.dtype[Any]
    block_size: int
    image_ids: list[str] | None
    _array: np.memmap[Any, Any]

    @classmethod
    def open(cls, path: Path) -> NpyProbs:
        try:
            array = np.load(path, mmap_mode="r")
        except (OSError, ValueError) as error:
            raise DatasetError(f"{path}: cannot read .npy file ({error})") from None
        _check_array(str(path), array.shape, array.dtype)
        return cls(str(path), array.shape, array.dtype, 1, None, array)

    def read(self, start: int, stop: int) -> NDArray[np.floating]:
        return np.asarray(self._array[start:stop])


@dataclass
class ZarrProbs:
    """A zarr (v2 or v3) array; blocks follow its chunks along N so each chunk is read once."""

    path: str
    shape: tuple[int, int, int, int]
    dtype: np.dtype[Any]
    block_size: int
    image_ids: list[str] | None
    _array: Any

    @classmethod
    def open(cls, path: Path | str) -> ZarrProbs:
        import zarr

        try:
            array = zarr.open_array(store=str(path), mode="r")
        except Exception as error:  # zarr raises many kinds for a bad store
            raise DatasetError(f"{path}: cannot open zarr array ({error})") from None
        _check_array(str(path), array.shape, np.dtype(array.dtype))
        n, k, h, w = (int(size) for size in array.shape)
        ids = array.attrs.get("image_ids")
        image_ids = [str(i) for i in ids] if isinstance(ids, list) else None
        return cls(
            str(path), (n, k, h, w), np.dtype(array.dtype), int(array.chunks[0]), image_ids, array
        )

    def read(self, start: int, stop: int) -> NDArray[np.floating]:
        return np.asarray(self._array[start:stop])


def open_probs(path: Path) -> ProbsReader:
    """Open probabilities by what the path is: a ``.npy`` file or a zarr store."""
    if path.suffix == ".npy":
        if not path.is_file():
            raise DatasetError(f"{path}: probabilities file not found")
        return NpyProbs.open(path)
    if not path.exists():
        raise DatasetError(f"{path}: probabilities not found (expected a .npy file or zarr store)")
    return ZarrProbs.open(path)
