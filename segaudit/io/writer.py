"""``ProbsWriter``: save a model's probabilities from the inference loop, in a store segaudit
reads directly (format: :mod:`segaudit.io.store`; guide: docs/guide/probabilities.md).

    with ProbsWriter("probs.zarr", logits=True, top_k=4, dtype="uint8") as writer:
        for images, ids in loader:
            writer.append(model(images).cpu(), ids=ids)

Batches are numpy arrays or anything with ``__array__`` (a torch tensor after
``.detach().cpu()``), (N, K, H, W) or with ``layout="nhwc"`` (N, H, W, K); or a list of
per-image (K, H, W) arrays when sizes vary. Each batch is checked whole before anything of
it is written, so a bad batch raises and leaves the store as it was. The store says
``complete: false`` until :meth:`close` succeeds; ``segaudit score`` refuses incomplete
stores, so an interrupted loop never passes for a finished one.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
from numpy.typing import NDArray

from segaudit.core.compact import (
    CODE_MAX,
    MAX_TAIL_STRIDE,
    class_id_dtype,
    coarse_tail,
    default_tail_stride,
    encode_top_k,
    quantize,
)
from segaudit.errors import OptionError, OutputError
from segaudit.io.store import (
    FORMAT_KEY,
    FORMAT_VERSION,
    PER_IMAGE,
    STACKED,
    image_group,
)
from segaudit.io.transforms import Layout, softmax, summarize_values

#: Elements of one image encoded at a time (top-k and uint8 work on row strips of this size).
STRIP_ELEMENTS = 1 << 22
DTYPES = ("float16", "float32", "uint8")
STORAGES = ("auto", STACKED, PER_IMAGE)


class ProbsWriter:
    """Appends batches of probabilities (or logits) to a new zarr store; a context manager.

    ``dtype``: ``float16`` (default), ``float32`` or ``uint8`` (1/255 steps). ``top_k``: keep
    only each pixel's k most likely classes (probabilities as ``dtype``: float16 or uint8) and
    the tail: every class's mean over ``tail_stride``-pixel blocks, which shares out the rest
    of each pixel's mass (0: share it evenly; None: 8 up to 64 classes, else 0; see
    :mod:`segaudit.core.compact`).
    ``logits``: the batches are logits; a softmax over classes is applied before storing,
    so the store always holds probabilities. ``storage``: ``stacked`` (one (N, ...) array,
    every image the same size), ``per-image`` (images of any size), or ``auto``: stacked
    when the first batch is one array, per-image when it is a list of images.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        dtype: str = "float16",
        top_k: int | None = None,
        tail_stride: int | None = None,
        layout: Layout | str = Layout.NCHW,
        logits: bool = False,
        storage: str = "auto",
        num_classes: int | None = None,
        overwrite: bool = False,
        on_progress: Callable[[int], None] | None = None,
    ) -> None:
        import zarr

        if isinstance(path, str) and "://" in path:
            raise OptionError(f"{path}: ProbsWriter writes local paths only; copy the store after")
        if dtype not in DTYPES:
            raise OptionError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
        if storage not in STORAGES:
            raise OptionError(f"storage must be one of {', '.join(STORAGES)}, got {storage!r}")
        if top_k is None and tail_stride:
            raise OptionError("tail_stride applies to top-k stores only; give top_k too")
        if top_k is not None:
            if top_k < 1:
                raise OptionError(f"top_k must be at least 1, got {top_k}")
            if dtype == "float32":
                raise OptionError("top_k stores probabilities as float16 or uint8, not float32")
            if num_classes is not None and top_k > num_classes:
                raise OptionError(f"top_k={top_k} is more than the {num_classes} classes")
            if tail_stride is not None and not 0 <= tail_stride <= MAX_TAIL_STRIDE:
                raise OptionError(f"tail_stride must be 0..{MAX_TAIL_STRIDE}, got {tail_stride}")
        self.path = Path(path)
        self.dtype = dtype
        self.top_k = top_k
        self.tail_stride = tail_stride if top_k is not None else 0  # None: set by K
        self.layout = Layout(layout)
        self.logits = logits
        self.storage = storage
        self.num_classes = num_classes
        self.on_progress = on_progress
        self.size: tuple[int, int] | None = None
        self.images = 0
        self.ids: list[str] | None = None
        self._seen: set[str] = set()
        self._closed = False
        self._batches = 0
        _make_room(self.path, overwrite)
        self.encoding = "top-k" if top_k is not None else dtype
        attrs: dict[str, Any] = {
            FORMAT_KEY: FORMAT_VERSION,
            "encoding": self.encoding,
            "complete": False,
            "images": 0,
            "softmax_applied": logits,
        }
        if top_k is not None:
            attrs |= {"top_k": top_k, "probs_dtype": dtype}
        if dtype == "uint8":
            attrs["scale"] = 1 / CODE_MAX
        try:
            self._group: Any = zarr.open_group(str(self.path), mode="w", attributes=attrs)
        except OSError as error:
            raise OutputError(f"{self.path}: cannot create the store ({error})") from None

    # ------------------------------------------------------------------ public

    def append(self, batch: Any, ids: Sequence[Any] | None = None) -> None:
        """Add a batch: one (N, K, H, W) / (N, H, W, K) array, or a list of per-image arrays.
        ``ids``: one per image, unique across the store (give them always or never)."""
        if self._closed:
            raise OptionError(f"{self.path}: the writer is closed; open a new one")
        images = self._split(batch)
        names = self._check_ids(ids, len(images))
        if self.storage == "auto":
            self.storage = PER_IMAGE if isinstance(batch, list | tuple) else STACKED
        encoded = [self._encode(image, self._label(names, i)) for i, image in enumerate(images)]
        if not encoded:
            return
        if self.storage == STACKED:
            self._write_stacked(encoded)
        else:
            for offset, arrays in enumerate(encoded):
                group = self._group.require_group(image_group(self.images + offset))
                for name, array in arrays.items():
                    _create(group, name, array.shape, array.dtype)[...] = array
        self.images += len(encoded)
        self._batches += 1
        if names is not None:
            self.ids = [*(self.ids or []), *names]
            self._seen.update(names)
        self._group.attrs.update({"images": self.images})
        if self.on_progress is not None:
            self.on_progress(self.images)

    def close(self) -> Path:
        """Write the final attributes and mark the store complete. Returns its path."""
        if self._closed:
            return self.path
        if self.images == 0:
            raise OptionError(f"{self.path}: no images were appended; the store stays incomplete")
        attrs: dict[str, Any] = {
            "images": self.images,
            "num_classes": self.num_classes,
            "layout": self.storage,
            "complete": True,
        }
        if self.top_k is not None:
            attrs["tail_stride"] = self.tail_stride
        if self.ids is not None:
            attrs["image_ids"] = self.ids
        self._group.attrs.update(attrs)
        self._closed = True
        return self.path

    def __enter__(self) -> ProbsWriter:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if kind is None:
            self.close()
        else:  # interrupted: leave the store marked incomplete
            self._closed = True

    # ------------------------------------------------------------------ checks

    def _split(self, batch: Any) -> list[NDArray[np.floating]]:
        """The batch's images, class axis first (views, not copies)."""
        if isinstance(batch, list | tuple):
            arrays = [np.asarray(item) for item in batch]
            bad = [a.shape for a in arrays if a.ndim != 3]
            if bad:
                raise OptionError(
                    f"{self.path}: a list batch holds one (K, H, W) array per image; got "
                    f"shape {bad[0]}"
                )
        else:
            array = np.asarray(batch)
            if array.ndim != 4:
                raise OptionError(
                    f"{self.path}: a batch is (N, K, H, W) (or (N, H, W, K) with "
                    f"layout='nhwc'), got shape {array.shape}; for one image pass "
                    "batch[None], for images of different sizes a list of (K, H, W) arrays"
                )
            arrays = list(array)
        for a in arrays:
            if a.dtype.kind != "f":
                raise OptionError(
                    f"{self.path}: probabilities have dtype {a.dtype}; expected float16/32/64 "
                    "(a bfloat16 tensor: call .float() first)"
                )
        if self.layout is Layout.NHWC:
            arrays = [np.moveaxis(a, -1, 0) for a in arrays]
        return arrays

    def _check_ids(self, ids: Sequence[Any] | None, count: int) -> list[str] | None:
        if ids is None:
            if self.ids is not None:
                raise OptionError(f"{self.path}: ids were given before; give them every batch")
            return None
        if self.images and self.ids is None:
            raise OptionError(f"{self.path}: earlier batches had no ids; give them always or never")
        names = [str(i) for i in ids]
        if len(names) != count:
            raise OptionError(f"{self.path}: {len(names)} ids for a batch of {count} images")
        repeated = sorted({n for n in names if n in self._seen or names.count(n) > 1})
        if repeated:
            raise OptionError(
                f"{self.path}: image id(s) {', '.join(repeated[:10])} appear more than once; "
                "ids must be unique across the store"
            )
        return names

    def _label(self, names: list[str] | None, offset: int) -> str:
        return names[offset] if names is not None else f"#{self.images + offset}"

    def _encode(self, image: NDArray[np.floating], label: str) -> dict[str, NDArray[Any]]:
        """Check one image and encode it for storing."""
        k, h, w = image.shape
        if self.num_classes is None and self._batches == 0 and self.images == 0:
            self.num_classes = k
        if k != self.num_classes:
            raise OptionError(
                f"{self.path}: image {label} has {k} classes but the store has "
                f"{self.num_classes}; every image needs the same classes (is the class axis "
                f"{'last' if self.layout is Layout.NCHW else 'first'}? see layout)"
            )
        if self.top_k is not None and self.top_k > k:
            raise OptionError(f"{self.path}: top_k={self.top_k} is more than the {k} classes")
        if self.storage == STACKED:
            if self.size is None:
                self.size = (h, w)
            elif self.size != (h, w):
                raise OptionError(
                    f"{self.path}: image {label} is {h}x{w} but the stacked store holds "
                    f"{self.size[0]}x{self.size[1]} images; for images of different sizes "
                    "open the writer with storage='per-image' (or pass a list of images)"
                )
        if not np.isfinite(image).all():
            raise OptionError(f"{self.path}: image {label} has NaN or infinite values")
        probs = softmax(image) if self.logits else image
        if not self.logits:
            seen = summarize_values(image)
            if not seen.looks_like_probs:
                raise OptionError(
                    f"{self.path}: image {label} is not probabilities (values "
                    f"{seen.low:.3g}..{seen.high:.3g}, summing to {seen.worst_sum:.3g}); "
                    "if these are logits, open the writer with logits=True"
                )
        if self.top_k is None and self.dtype != "uint8":
            return {"probs": np.asarray(probs, dtype=self.dtype)}
        rows = max(1, STRIP_ELEMENTS // max(1, k * w))
        if self.top_k is None:
            codes = np.empty((k, h, w), np.uint8)
            for top in range(0, h, rows):
                codes[:, top : top + rows] = quantize(probs[:, top : top + rows])
            return {"probs": codes}
        classes = np.empty((self.top_k, h, w), class_id_dtype(k))
        stored = np.empty((self.top_k, h, w), self.dtype)
        as_codes = self.dtype == "uint8"
        for top in range(0, h, rows):
            ids, values = encode_top_k(probs[:, top : top + rows], self.top_k, as_codes)
            classes[:, top : top + rows], stored[:, top : top + rows] = ids, values
        encoded = {"classes": classes, "probs": stored}
        if self.tail_stride is None:  # the first image: the class count is known now
            self.tail_stride = default_tail_stride(k)
        if self.tail_stride:
            encoded["tail"] = coarse_tail(probs, self.tail_stride)
        return encoded

    # ------------------------------------------------------------------ writing

    def _write_stacked(self, encoded: list[dict[str, NDArray[Any]]]) -> None:
        start, stop = self.images, self.images + len(encoded)
        for name in encoded[0]:
            stacked = np.stack([arrays[name] for arrays in encoded])
            array: Any
            if name in self._group:
                array = self._group[name]
                array.resize((stop, *array.shape[1:]))
            else:
                array = _create(self._group, name, (stop, *stacked.shape[1:]), stacked.dtype)
            array[start:stop] = stacked


def _create(group: Any, name: str, shape: tuple[int, ...], dtype: np.dtype[Any]) -> Any:
    """An array chunked one image per chunk. Missing chunks read as values the readers
    refuse (NaN probabilities, code 0 sums, id 255/65535), never as plausible data."""
    if name == "classes":
        fill: Any = np.iinfo(dtype).max
    elif dtype.kind == "f":
        fill = np.nan
    else:
        fill = 0
    chunks = (1, *shape[1:]) if len(shape) == 4 else shape
    return group.create_array(name, shape=shape, chunks=chunks, dtype=dtype, fill_value=fill)


def _make_room(path: Path, overwrite: bool) -> None:
    """Refuse an existing path unless ``overwrite`` and it is a zarr store (never delete a
    folder of something else); an empty folder is fine."""
    if not path.exists() or (path.is_dir() and not any(path.iterdir())):
        return
    if not overwrite:
        raise OutputError(f"{path}: exists; pass overwrite=True (or --overwrite) to replace it")
    if not (path / "zarr.json").exists() and not (path / ".zgroup").exists():
        raise OutputError(f"{path}: exists and is not a zarr store; will not replace it")
    shutil.rmtree(path)
