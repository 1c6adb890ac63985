"""``segaudit convert``: rewrite probabilities segaudit can read as a segaudit store, optionally
compact (uint8 codes, top-k classes), streamed a block at a time and written atomically.

Inputs: a stacked .npy / zarr array (or a segaudit store), or a folder of per-image files.
Stacked inputs give a stacked store, folders a per-image one (their images may differ in
size). The store is written to a temporary sibling and renamed into place only when complete,
so OUT is either the whole converted store or untouched.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from segaudit.errors import DatasetError, OutputError
from segaudit.io.inputs import read_ids_file
from segaudit.io.probfiles import FileProbs, is_probs_folder
from segaudit.io.probs import is_url
from segaudit.io.sources import open_probs
from segaudit.io.store import open_store_group
from segaudit.io.transforms import Layout
from segaudit.io.writer import ProbsWriter

ProgressCallback = Callable[[str, int, int], None]
"""on_progress(stage, images_done, images_total), as the audit's."""
#: Per-image files handed to the writer per batch.
FILES_PER_BATCH = 8


@dataclass(frozen=True)
class ConvertRequest:
    """What ``segaudit convert`` was asked to do."""

    probs: Path | str
    out: Path
    top_k: int | None = None
    dtype: str = "float16"
    layout: Layout = Layout.NCHW
    logits: bool = False
    ids: Path | None = None
    overwrite: bool = False
    tail_stride: int | None = None  # with top_k: the tail's block side (0: none; None: by K)


@dataclass(frozen=True)
class ConvertOutcome:
    """The store written, and how big it is next to its input."""

    path: Path
    images: int
    encoding: str
    num_classes: int
    bytes: int
    input_bytes: int | None


def tree_bytes(path: Path) -> int:
    """Bytes of the files under ``path`` (or of the file)."""
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _batches(request: ConvertRequest) -> tuple[int, list[str] | None, Iterator[Any]]:
    """(images, ids, batches for ProbsWriter.append): arrays for stacked inputs, lists of
    per-image arrays for folders."""
    source = request.probs
    if not is_url(source) and is_probs_folder(Path(source)):
        probs = FileProbs.open(Path(source))
        ids = read_ids_file(request.ids) if request.ids is not None else sorted(probs.files)
        missing = [i for i in ids if i not in probs.files]
        if missing:
            listed = ", ".join(missing[:10])
            raise DatasetError(f"{source}: no probabilities file for id(s) {listed}")

        def files() -> Iterator[list[NDArray[np.floating]]]:
            for start in range(0, len(ids), FILES_PER_BATCH):
                yield [probs.read(i) for i in ids[start : start + FILES_PER_BATCH]]

        return len(ids), ids, files()
    reader = open_probs(source)
    n = reader.shape[0]
    names = read_ids_file(request.ids) if request.ids is not None else reader.image_ids
    if names is not None and len(names) != n:
        raise DatasetError(
            f"{reader.path}: holds {n} images but {request.ids} lists {len(names)} ids"
        )

    def rows() -> Iterator[Any]:
        step = max(1, reader.block_size)
        for start in range(0, n, step):
            try:
                block = reader.read(start, min(n, start + step))
            except Exception as error:  # zarr raises many kinds for a corrupt chunk
                raise DatasetError(
                    f"{reader.path}: cannot read images {start}..{min(n, start + step) - 1} "
                    f"({type(error).__name__}: {error}); fix or re-create the input"
                ) from None
            if isinstance(block, np.ndarray):
                yield block
            else:  # a segaudit store's per-image or compact images
                dense = [b if isinstance(b, np.ndarray) else b.expand() for b in block]
                yield dense if len({d.shape for d in dense}) > 1 else np.stack(dense)

    return n, names, rows()


def convert(request: ConvertRequest, on_progress: ProgressCallback | None = None) -> ConvertOutcome:
    """Convert ``request.probs`` into a store at ``request.out`` (see the module doc)."""
    out = request.out
    if out.exists() and not request.overwrite:
        raise OutputError(f"{out}: exists; pass --overwrite to replace it")
    if out.exists() and open_store_group(str(out)) is None:
        raise OutputError(
            f"{out}: exists and is not a store segaudit wrote; segaudit replaces only its own "
            "stores: choose another --out"
        )
    if not is_url(request.probs):
        source, target = Path(request.probs).resolve(), out.resolve()
        if source == target or source in target.parents or target in source.parents:
            raise OutputError(f"{out}: overlaps the input {request.probs}; choose another --out")
    total, ids, batches = _batches(request)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        temp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
    except OSError as error:
        raise OutputError(f"{out}: cannot write there ({error.strerror or error})") from None
    try:
        writer = ProbsWriter(
            temp,
            dtype=request.dtype,
            top_k=request.top_k,
            tail_stride=request.tail_stride,
            layout=request.layout,
            logits=request.logits,
            storage="per-image" if _is_folder(request) else "auto",
            on_progress=(lambda done: on_progress("convert", done, total)) if on_progress else None,
        )
        with writer:
            done = 0
            for batch in batches:
                count = len(batch)
                writer.append(batch, ids=ids[done : done + count] if ids is not None else None)
                done += count
        if out.exists():
            shutil.rmtree(out)
        os.replace(temp, out)
    except BaseException:
        with contextlib.suppress(OSError):
            shutil.rmtree(temp)
        raise
    location = request.probs
    input_bytes = None if is_url(location) else tree_bytes(Path(location))
    assert writer.num_classes is not None
    return ConvertOutcome(
        out, writer.images, writer.encoding, writer.num_classes, tree_bytes(out), input_bytes
    )


def _is_folder(request: ConvertRequest) -> bool:
    return not is_url(request.probs) and is_probs_folder(Path(request.probs))
