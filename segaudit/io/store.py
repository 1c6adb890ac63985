"""Probability stores written by segaudit (:class:`segaudit.ProbsWriter`, ``segaudit convert``).

A store is a zarr v3 group whose attributes say what it holds:

- ``segaudit_store``: format version (1);
- ``encoding``: ``float16`` | ``float32`` | ``uint8`` | ``top-k``; ``top_k`` (k),
  ``probs_dtype`` (``uint8`` | ``float16``) and ``tail_stride`` (s; 0 or absent: no tail)
  for top-k; ``scale`` (1/255) for uint8 codes;
- ``layout``: ``stacked`` (arrays (N, ...), one image per chunk) or ``per-image`` (arrays
  ``images/<row>/probs`` and ``images/<row>/classes``, images of any size);
- ``num_classes``, ``image_ids`` (optional), ``images`` (how many);
- ``complete``: false until the writer closed successfully. Incomplete stores are refused.

Arrays always hold probabilities (logits are softmaxed when written), class axis first:
``probs`` (N, K, H, W) for float16/float32/uint8, and for top-k ``classes`` (N, k, H, W)
ids with ``probs`` (N, k, H, W) their probabilities (codes or float16) and, when
``tail_stride`` is s > 0, ``tail`` (N, K, ceil(H/s), ceil(W/s)) float16 block means.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from segaudit.core.compact import (
    MAX_TAIL_STRIDE,
    CompactImage,
    QuantizedImage,
    TopKImage,
    tail_shape,
)
from segaudit.errors import DatasetError
from segaudit.io.probs import OPEN_ERRORS, images_per_block
from segaudit.io.transforms import ImageTransform, Layout

FORMAT_KEY = "segaudit_store"
FORMAT_VERSION = 1
ENCODINGS = ("float16", "float32", "uint8", "top-k")
DENSE_FLOATS = ("float16", "float32")
STACKED, PER_IMAGE = "stacked", "per-image"
#: Images per block in a per-image store (each image is its own chunk).
PER_IMAGE_BLOCK = 4


def image_group(row: int) -> str:
    """The group of one image in a per-image store."""
    return f"images/{row}"


#: Opening errors after which a path is simply not a segaudit store (ImportError: a URL
#: scheme whose filesystem is not installed).
_NOT_A_STORE: tuple[type[Exception], ...] = (*OPEN_ERRORS, ImportError)


def open_store_group(path: str) -> Any | None:
    """The zarr group at ``path`` if it is a segaudit store, else None (not one, or not
    openable: the generic reader then says why)."""
    import zarr

    try:
        node = zarr.open(store=path, mode="r")
    except _NOT_A_STORE:  # not a store here: the generic reader says why
        return None
    if isinstance(node, zarr.Group) and FORMAT_KEY in node.attrs:
        return node
    return None


def _attribute(path: str, attrs: Any, name: str, kind: type) -> Any:
    value = attrs.get(name)
    if not isinstance(value, kind) or isinstance(value, bool) is not (kind is bool):
        raise DatasetError(
            f"{path}: store attribute {name!r} is {value!r}; the store is damaged: write it again"
        )
    return value


def _check_tail(path: str, group: Any, expected: tuple[int, ...]) -> None:
    """A stacked top-k store's tail array has the shape its attributes imply."""
    try:
        shape = tuple(group["tail"].shape)
    except KeyError:
        shape = ()
    if shape != expected:
        raise DatasetError(
            f"{path}: tail array is {shape or 'missing'} but the attributes imply {expected}; "
            "the store is damaged: write it again"
        )


@dataclass
class StoreProbs:
    """Reads a segaudit store a block of rows at a time. Dense float stacked stores give an
    (n, K, H, W) array; the others a list of per-image arrays or compact images. Pickles by
    path (Dask workers reopen it)."""

    path: str
    shape: tuple[int, int, int, int]  # H, W are 0 in a per-image store (sizes vary)
    dtype: np.dtype[Any]
    block_size: int
    image_ids: list[str] | None
    encoding: str
    layout: str
    top_k: int | None
    tail_stride: int
    _group: Any

    @classmethod
    def open(cls, path: str) -> StoreProbs | None:
        """The store at ``path``, checked; None if ``path`` is not a segaudit store."""
        group = open_store_group(path)
        if group is None:
            return None
        return cls._from_group(path, group)

    @classmethod
    def _from_group(cls, path: str, group: Any) -> StoreProbs:
        attrs = group.attrs
        version = attrs.get(FORMAT_KEY)
        if version != FORMAT_VERSION:
            raise DatasetError(
                f"{path}: store format {version!r}; this segaudit reads format {FORMAT_VERSION}"
            )
        if attrs.get("complete") is not True:
            written = attrs.get("images", "an unknown number of")
            raise DatasetError(
                f"{path}: the store is incomplete (complete=false: its writer stopped before "
                f"close(); {written} images written); it cannot be scored: write it again "
                "(ProbsWriter or segaudit convert)"
            )
        encoding = _attribute(path, attrs, "encoding", str)
        layout = _attribute(path, attrs, "layout", str)
        k = _attribute(path, attrs, "num_classes", int)
        n = _attribute(path, attrs, "images", int)
        if encoding not in ENCODINGS or layout not in (STACKED, PER_IMAGE):
            raise DatasetError(
                f"{path}: unknown encoding {encoding!r} or layout {layout!r}; "
                f"expected one of {', '.join(ENCODINGS)} and stacked / per-image"
            )
        top, stride = None, 0
        if encoding == "top-k":
            top = _attribute(path, attrs, "top_k", int)
            if not 1 <= top <= k:
                raise DatasetError(
                    f"{path}: top_k is {top} but the store has {k} classes; k must be "
                    "1..num_classes: the store is damaged, write it again"
                )
            if attrs.get("tail_stride") is not None:
                stride = _attribute(path, attrs, "tail_stride", int)
                if not 0 <= stride <= MAX_TAIL_STRIDE:
                    raise DatasetError(
                        f"{path}: tail_stride is {stride}, not 0..{MAX_TAIL_STRIDE}; the "
                        "store is damaged: write it again"
                    )
        ids = attrs.get("image_ids")
        image_ids = [str(i) for i in ids] if isinstance(ids, list) else None
        if image_ids is not None and len(image_ids) != n:
            raise DatasetError(
                f"{path}: lists {len(image_ids)} image ids for {n} images; write it again"
            )
        dtype, h, w, block = np.dtype(np.uint8), 0, 0, PER_IMAGE_BLOCK
        if layout == STACKED:
            try:
                probs = group["probs"]
            except KeyError:
                raise DatasetError(f"{path}: stacked store without a probs array") from None
            planes = top if top is not None else k
            if tuple(probs.shape[:2]) != (n, planes):
                raise DatasetError(
                    f"{path}: probs array is {tuple(probs.shape)} but the attributes say "
                    f"{n} images of {planes} planes; the store is truncated: write it again"
                )
            h, w = int(probs.shape[2]), int(probs.shape[3])
            if stride:
                _check_tail(path, group, (n, *tail_shape(k, h, w, stride)))
            dtype = np.dtype(probs.dtype)
            stored = (n, planes * (2 if encoding == "top-k" else 1), h, w)
            block = images_per_block(stored, dtype, int(probs.chunks[0]))
        elif encoding in DENSE_FLOATS:
            dtype = np.dtype(encoding)
        return cls(
            path, (n, k, h, w), dtype, block, image_ids, encoding, layout, top, stride, group
        )

    @property
    def num_classes(self) -> int:
        return self.shape[1]

    @property
    def compact(self) -> bool:
        return self.encoding not in DENSE_FLOATS

    def read(
        self, start: int, stop: int
    ) -> NDArray[np.floating] | Sequence[NDArray[np.floating] | CompactImage]:
        """Rows start..stop-1."""
        if self.layout == STACKED:
            probs = np.asarray(self._group["probs"][start:stop])
            if self.encoding in DENSE_FLOATS:
                return probs
            if self.encoding == "uint8":
                return [QuantizedImage(codes) for codes in probs]
            classes = np.asarray(self._group["classes"][start:stop])
            tails = np.asarray(self._group["tail"][start:stop]) if self.tail_stride else None
            return [
                self._top_k(c, p, tails[i] if tails is not None else None)
                for i, (c, p) in enumerate(zip(classes, probs, strict=True))
            ]
        return [self._read_one(row) for row in range(start, stop)]

    def _top_k(
        self, classes: NDArray[Any], probs: NDArray[Any], tail: NDArray[Any] | None
    ) -> TopKImage:
        return TopKImage(classes, probs, self.num_classes, tail, self.tail_stride)

    def read_rows(self, row: int, axis: int, top: int, bottom: int) -> NDArray[np.floating]:
        """Rows ``top``..``bottom`` of one image of a dense stacked store (a large image read
        in bands); compact and per-image stores are read whole."""
        if self.layout != STACKED or self.encoding not in DENSE_FLOATS or axis != 1:
            raise DatasetError(
                f"{self.path}: images this large are read in bands only from a dense stacked "
                "store; convert without --top-k/--dtype uint8, or pass a plain zarr array"
            )
        return np.asarray(self._group["probs"][row, :, top:bottom, :])

    def chunk_rows(self, axis: int) -> int:
        """Rows one storage chunk of an image holds (a store chunks by image)."""
        return int(self.shape[2]) if axis == 1 else int(self.shape[1])

    def _read_one(self, row: int) -> NDArray[np.floating] | CompactImage:
        try:  # a missing array is damage (ValueError: a storage error, the image is skipped)
            group = self._group[image_group(row)]
            probs = np.asarray(group["probs"][...])
            if self.encoding in DENSE_FLOATS:
                return probs
            if self.encoding == "uint8":
                return QuantizedImage(probs)
            classes = np.asarray(group["classes"][...])
            tail = None
            if self.tail_stride:
                stored = group["tail"]
                _, h, w = classes.shape
                expected = tail_shape(self.num_classes, h, w, self.tail_stride)
                if tuple(stored.shape) != expected:  # checked before reading: it may be huge
                    raise ValueError(
                        f"{self.path}: image row {row}'s tail is {tuple(stored.shape)}, not "
                        f"{expected}; the store is damaged: write it again"
                    )
                tail = np.asarray(stored[...])
        except KeyError as missing:
            raise ValueError(
                f"{self.path}: image row {row} lacks its {missing} array; the store is "
                "damaged or truncated: write it again"
            ) from None
        return self._top_k(classes, probs, tail)

    def check_transform(self, transform: ImageTransform) -> None:
        """Refuse options that do not apply to a store: it holds probabilities, class axis
        first, and compact images are scored at their stored size."""
        if transform.logits:
            raise DatasetError(
                f"{self.path}: a segaudit store holds probabilities (logits were softmaxed "
                "when it was written); drop --logits"
            )
        if transform.layout is not Layout.NCHW:
            raise DatasetError(
                f"{self.path}: a segaudit store keeps the class axis first; drop --layout"
            )
        if self.compact and (transform.resize is not None or transform.downsample > 1):
            raise DatasetError(
                f"{self.path}: a {self.encoding} store is scored at its stored size; drop "
                "--resize/--downsample, or convert from the original probabilities at the "
                "masks' size"
            )

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        del state["_group"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        group = open_store_group(self.path)
        if group is None:
            raise DatasetError(f"{self.path}: cannot reopen the store")
        self._group = group
