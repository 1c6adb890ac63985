"""Predicted probabilities stacked in one array (N, K, H, W) or (N, H, W, K):
a zarr array or group (v2 or v3, local or an fsspec URL), or a memory-mapped .npy file."""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from segaudit.core.compact import CompactImage
from segaudit.errors import DatasetError

FLOAT_DTYPES = (np.float16, np.float32, np.float64)
#: What reading stored probabilities raises for damaged data (a corrupt zarr chunk: codec
#: errors are ValueError or RuntimeError, zlib's own error, a truncated file EOFError).
STORAGE_ERRORS: tuple[type[Exception], ...] = (
    OSError,
    ValueError,
    RuntimeError,
    EOFError,
    zlib.error,
)

#: About how many bytes of probabilities one block (one task) reads: enough images that
#: per-block costs (task hand-off, accumulator merge) vanish, few enough that the blocks in
#: flight stay far below memory limits. A block never splits a storage chunk.
BLOCK_BYTES = 16 * 2**20


def images_per_block(shape: tuple[int, ...], dtype: np.dtype[Any], chunk: int = 1) -> int:
    """Whole chunks of images adding up to about BLOCK_BYTES (at least one chunk)."""
    image_bytes = int(np.prod(shape[1:])) * dtype.itemsize
    chunks = max(1, BLOCK_BYTES // max(1, image_bytes * chunk))
    return chunk * chunks


class ProbsReader(Protocol):
    """Reads runs of consecutive images' probabilities; never the whole array at once."""

    path: str
    shape: tuple[int, int, int, int]
    dtype: np.dtype[Any]
    block_size: int
    image_ids: list[str] | None

    def read(
        self, start: int, stop: int
    ) -> NDArray[np.floating] | Sequence[NDArray[np.floating] | CompactImage]:
        """An (n, K, H, W) array, or one entry per image (a segaudit store's per-image
        or compact images, see :mod:`segaudit.io.store`)."""
        ...

    def read_rows(self, row: int, axis: int, top: int, bottom: int) -> NDArray[np.floating]:
        """Rows ``top``..``bottom`` (along ``axis`` of one image) of image ``row``."""
        ...

    def chunk_rows(self, axis: int) -> int:
        """How many rows along ``axis`` of an image one storage chunk holds."""
        ...


def _check_array(path: str, shape: tuple[int, ...], dtype: np.dtype[Any]) -> None:
    if len(shape) != 4:
        raise DatasetError(
            f"{path}: probabilities have shape {shape}; expected 4 dimensions (N, K, H, W) "
            "or (N, H, W, K); for images of different sizes use a folder of per-image files"
        )
    if dtype not in FLOAT_DTYPES:
        raise DatasetError(f"{path}: probabilities have dtype {dtype}; expected float16/32/64")


@dataclass
class _ArrayProbs:
    """One (N, K, H, W) array read by slices along N. It pickles by path (for Dask
    workers): the data is never shipped, the worker reopens the array."""

    path: str
    shape: tuple[int, int, int, int]
    dtype: np.dtype[Any]
    block_size: int
    image_ids: list[str] | None
    _array: Any

    def read(self, start: int, stop: int) -> NDArray[np.floating]:
        return np.asarray(self._array[start:stop])

    def read_rows(self, row: int, axis: int, top: int, bottom: int) -> NDArray[np.floating]:
        index = [slice(None)] * 3
        index[axis] = slice(top, bottom)
        return np.asarray(self._array[(row, *index)])

    def chunk_rows(self, axis: int) -> int:
        chunks = getattr(self._array, "chunks", None)
        return int(chunks[axis + 1]) if chunks else 1

    def _reopen(self) -> Any:
        raise NotImplementedError

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        del state["_array"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._array = self._reopen()


@dataclass
class NpyProbs(_ArrayProbs):
    """A .npy file opened memory-mapped: pages are read as images are used."""

    @classmethod
    def open(cls, path: Path) -> NpyProbs:
        try:
            array = np.load(path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError, EOFError) as error:  # EOFError: an empty file
            raise DatasetError(f"{path}: cannot read .npy file ({error})") from None
        _check_array(str(path), array.shape, array.dtype)
        block = images_per_block(array.shape, array.dtype)
        return cls(str(path), array.shape, array.dtype, block, None, array)

    def _reopen(self) -> Any:
        return np.load(self.path, mmap_mode="r")


@dataclass
class ZarrProbs(_ArrayProbs):
    """A zarr (v2 or v3) array; blocks are whole chunks along N (so each chunk is read once),
    several small chunks at a time: zarr decodes the chunks of one read concurrently."""

    @classmethod
    def open(cls, path: Path | str) -> ZarrProbs:
        """Open a zarr array, or the probabilities array of a zarr group (local path or URL)."""
        array = open_zarr_array(str(path))
        _check_array(str(path), array.shape, np.dtype(array.dtype))
        n, k, h, w = (int(size) for size in array.shape)
        ids = array.attrs.get("image_ids")
        image_ids = [str(i) for i in ids] if isinstance(ids, list) else None
        dtype = np.dtype(array.dtype)
        block = images_per_block((n, k, h, w), dtype, int(array.chunks[0]))
        return cls(str(path), (n, k, h, w), dtype, block, image_ids, array)

    def _reopen(self) -> Any:
        return open_zarr_array(self.path)


#: What opening a damaged or foreign store raises (zarr's own errors are ValueErrors;
#: metadata that does not parse surfaces as KeyError or TypeError from its parsers).
OPEN_ERRORS: tuple[type[Exception], ...] = (
    OSError,
    ValueError,
    LookupError,
    TypeError,
    RuntimeError,
)
#: Array names tried, in order, when a zarr group holds several arrays.
GROUP_ARRAY_NAMES = ("pred_probs", "probs", "probabilities", "logits")


def is_url(path: Path | str) -> bool:
    """True for fsspec URLs such as ``s3://bucket/probs.zarr`` or ``memory://probs.zarr``."""
    return isinstance(path, str) and "://" in path


def open_zarr_array(path: str) -> Any:
    """A zarr array at ``path``: the array itself, or the one array (or the one named
    like ``pred_probs``) of a group. Local paths and fsspec URLs; zarr v2 and v3."""
    import zarr

    try:
        node = zarr.open(store=path, mode="r")
    except ImportError as error:  # e.g. s3:// without s3fs
        raise DatasetError(
            f"{path}: {error}; install the remote extra: pip install 'segaudit[remote]'"
        ) from None
    except OPEN_ERRORS as error:  # zarr raises many kinds for a bad store
        raise DatasetError(
            f"{path}: cannot open zarr store ({type(error).__name__}: {error}); "
            "pass a zarr array or group, a .npy file or a folder of per-image .npy/.npz files"
        ) from None
    if isinstance(node, zarr.Array):
        return node
    names = sorted(node.array_keys())
    for name in GROUP_ARRAY_NAMES:
        if name in names:
            return node[name]
    if len(names) == 1:
        return node[names[0]]
    listed = ", ".join(names) or "none"
    raise DatasetError(
        f"{path}: zarr group holds arrays {listed}; expected one array or one named "
        f"{' / '.join(GROUP_ARRAY_NAMES)}; pass the array's path (e.g. {path}/<name>)"
    )
