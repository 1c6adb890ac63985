"""Which reader opens a probabilities location: a store segaudit wrote (its attributes say
how to read it), a ``.npy`` file, or another zarr store (local or an fsspec URL)."""

from __future__ import annotations

from pathlib import Path

from segaudit.errors import DatasetError
from segaudit.io.probs import NpyProbs, ProbsReader, ZarrProbs, is_url
from segaudit.io.store import StoreProbs


def open_probs(path: Path | str) -> ProbsReader:
    """Open probabilities by what the path is: a ``.npy`` file, a store written by segaudit
    (its ``encoding`` attribute says how to read it), or another zarr store or URL."""
    if is_url(path):
        return StoreProbs.open(str(path)) or ZarrProbs.open(str(path))
    path = Path(path)
    if path.suffix == ".npy":
        if not path.is_file():
            raise DatasetError(f"{path}: probabilities file not found")
        return NpyProbs.open(path)
    if not path.exists():
        raise DatasetError(f"{path}: probabilities not found (expected a .npy file or zarr store)")
    return StoreProbs.open(str(path)) or ZarrProbs.open(path)
