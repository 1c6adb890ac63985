"""Shared fixtures: synthetic datasets on disk and in memory, the bundled example, and a
brute-force implementation of method.md §3 that the engine is checked against.

Everything is written under pytest's tmp_path; nothing touches the repository.
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import struct
import sys
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr
from hypothesis import settings
from numpy.typing import NDArray
from PIL import Image

REPO = Path(__file__).resolve().parents[1]

# Profiles: "dev" explores new random examples every run; "ci" is derandomized, so a CI run
# is repeatable (the same examples every time). CI=true selects "ci"; HYPOTHESIS_PROFILE
# overrides. No example database: it would write .hypothesis/ into the working tree.
settings.register_profile("dev", database=None, deadline=None, print_blob=True)
settings.register_profile("ci", database=None, deadline=None, print_blob=True, derandomize=True)
settings.load_profile(
    os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") == "true" else "dev")
)


# ------------------------------------------------------------------------- synthetic arrays


@dataclass(frozen=True)
class Arrays:
    """Labels (N, H, W) uint8, probabilities (N, K, H, W), and where labels were flipped."""

    labels: NDArray[np.uint8]
    probs: NDArray[np.floating]
    flipped: NDArray[np.bool_]


def synthetic_arrays(
    seed: int,
    n: int = 4,
    k: int = 5,
    h: int = 12,
    w: int = 16,
    dtype: Any = np.float32,
    *,
    error_rate: float = 0.1,
    absent: int = 0,
    quantum: int | None = None,
    sharpness: float = 2.0,
    ignore_rate: float = 0.0,
) -> Arrays:
    """A model's probabilities for true labels, and given labels with injected flips.

    ``absent`` classes never appear in any label (the model may still predict them).
    ``quantum`` q makes every probability a multiple of 1/q (q=1: one-hot), so ties are
    everywhere. ``ignore_rate`` of pixels get label 255.
    """
    rng = np.random.default_rng(seed)
    present = np.sort(rng.permutation(k)[: max(1, k - absent)])
    true = present[rng.integers(0, present.size, (n, h, w))]
    index = (np.arange(n)[:, None, None], true, np.arange(h)[:, None], np.arange(w))
    if quantum is None:
        logits = rng.normal(size=(n, k, h, w)) * sharpness
        logits[index] += sharpness * 1.5
        probs = np.exp(logits - logits.max(axis=1, keepdims=True))
        probs /= probs.sum(axis=1, keepdims=True)
    else:
        probs = np.zeros((n, k, h, w))
        for _ in range(quantum):  # each unit of 1/q goes to the true class or a random one
            pick = np.where(rng.random((n, h, w)) < 0.6, true, rng.integers(0, k, (n, h, w)))
            np.add.at(
                probs,
                (np.arange(n)[:, None, None], pick, np.arange(h)[:, None], np.arange(w)),
                1.0 / quantum,
            )
    flipped = rng.random((n, h, w)) < error_rate
    other = present[rng.integers(0, present.size, (n, h, w))]
    labels = np.where(flipped, other, true)
    flipped &= labels != true
    if ignore_rate:
        labels = np.where(rng.random((n, h, w)) < ignore_rate, 255, labels)
    return Arrays(labels.astype(np.uint8), probs.astype(dtype), flipped)


@pytest.fixture(scope="session")
def synthetic() -> Callable[..., Arrays]:
    """:func:`synthetic_arrays` (session-scoped so hypothesis tests may use it)."""
    return synthetic_arrays


# ------------------------------------------------------------------ brute force of method.md


@dataclass(frozen=True)
class BruteForce:
    """method.md §2-§3 computed the obvious way, holding every pixel."""

    thresholds: NDArray[np.float64]
    confident_count: int
    cutoff: float | None
    flagged: NDArray[np.bool_]
    self_confidence: NDArray[np.float64]
    valid: NDArray[np.bool_]


def brute_force_issues(
    labels: NDArray[np.integer], probs: NDArray[np.floating], ignore: int | None = 255
) -> BruteForce:
    """Thresholds, T, the cutoff (T-th lowest self-confidence as float32) and the flags,
    with segaudit's tie rule: every pixel whose float32 self-confidence <= the cutoff."""
    k = probs.shape[1]
    valid = np.ones(labels.shape, bool) if ignore is None else labels != ignore
    given = np.where(valid, labels, 0).astype(np.intp)
    wide = probs.astype(np.float64)
    s = np.take_along_axis(wide, given[:, None], axis=1)[:, 0]
    predicted = probs.argmax(axis=1)
    sums = np.array([s[valid & (given == c)].sum() for c in range(k)])
    counts = np.array([np.count_nonzero(valid & (given == c)) for c in range(k)])
    thresholds = np.maximum(sums / np.maximum(counts, 1), 2e-6)
    disagree = valid & (predicted != given)
    max_prob = wide.max(axis=1)
    confident = int(np.count_nonzero(disagree & (max_prob >= thresholds[predicted] - 1e-6)))
    s32 = s.astype(np.float32)
    if confident == 0:
        return BruteForce(thresholds, 0, None, np.zeros(labels.shape, bool), s, valid)
    cutoff = np.sort(s32[valid])[confident - 1]
    flagged = disagree & (s32 <= cutoff)
    return BruteForce(thresholds, confident, float(cutoff), flagged, s, valid)


@pytest.fixture(scope="session")
def brute_force() -> Callable[..., BruteForce]:
    """:func:`brute_force_issues`."""
    return brute_force_issues


# ------------------------------------------------------------------------ datasets on disk


@dataclass(frozen=True)
class MadeDataset:
    """A dataset written to disk, with the arrays it was written from."""

    root: Path
    masks: Path
    probs_path: Path
    ids: list[str]
    labels: NDArray[np.uint8]
    probs: NDArray[np.floating]
    flipped: NDArray[np.bool_]


def write_masks(folder: Path, ids: list[str], labels: NDArray[np.uint8]) -> None:
    """One mode-L PNG per image."""
    folder.mkdir(parents=True, exist_ok=True)
    for image_id, mask in zip(ids, labels, strict=True):
        Image.fromarray(np.ascontiguousarray(mask)).save(folder / f"{image_id}.png")


def write_zarr(path: Path, probs: NDArray[np.floating], chunk: int, ids: list[str] | None) -> None:
    """A zarr v3 array chunked ``chunk`` images at a time, ids in an attribute."""
    array = zarr.create_array(
        store=str(path), shape=probs.shape, chunks=(chunk, *probs.shape[1:]), dtype=probs.dtype
    )
    array[...] = probs
    if ids is not None:
        array.attrs["image_ids"] = ids


def make_dataset_files(
    root: Path,
    *,
    n: int = 6,
    k: int = 5,
    h: int = 12,
    w: int = 16,
    dtype: Any = np.float16,
    fmt: str = "zarr",
    seed: int = 0,
    chunk: int = 1,
    ids_attribute: bool = True,
    **options: Any,
) -> MadeDataset:
    """Write ``masks/`` (PNG, mode L) and ``probs.zarr`` or ``probs.npy`` under ``root``."""
    arrays = synthetic_arrays(seed, n, k, h, w, dtype, **options)
    ids = [f"img_{i:03d}" for i in range(n)]
    root.mkdir(parents=True, exist_ok=True)
    write_masks(root / "masks", ids, arrays.labels)
    if fmt == "zarr":
        probs_path = root / "probs.zarr"
        write_zarr(probs_path, arrays.probs, chunk, ids if ids_attribute else None)
    elif fmt == "npy":
        probs_path = root / "probs.npy"
        np.save(probs_path, arrays.probs)
    else:
        raise ValueError(f"unknown format {fmt!r}")
    return MadeDataset(
        root, root / "masks", probs_path, ids, arrays.labels, arrays.probs, arrays.flipped
    )


@pytest.fixture
def make_dataset() -> Callable[..., MadeDataset]:
    """Factory: ``make_dataset(tmp_path, n=, k=, h=, w=, dtype=, fmt="zarr"|"npy", seed=)``."""
    return make_dataset_files


# --------------------------------------------------------------------- the bundled example


def _load_make_example() -> Callable[..., dict[str, object]]:
    spec = importlib.util.spec_from_file_location(
        "segaudit_make_example", REPO / "examples" / "make_example.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while executing it
    spec.loader.exec_module(module)
    make: Callable[..., dict[str, object]] = module.make_example
    return make


@dataclass(frozen=True)
class Example:
    """The generated example: its folder and truth (which images were corrupted, how)."""

    root: Path
    truth: dict[str, Any]

    @property
    def corrupted(self) -> dict[str, str]:
        corrupted: dict[str, str] = self.truth["corrupted"]
        return corrupted


EXAMPLE_IMAGES = 12


@pytest.fixture(scope="session")
def example_dir(tmp_path_factory: pytest.TempPathFactory) -> Example:
    """The bundled example (12 images), generated once per session; do not modify it."""
    root = tmp_path_factory.mktemp("example")
    truth = _load_make_example()(root, num_images=EXAMPLE_IMAGES, seed=0)
    assert json.loads((root / "truth.json").read_text()) == truth
    return Example(root, truth)


@pytest.fixture
def example(example_dir: Example, tmp_path: Path) -> Example:
    """A private copy of the bundled example that a test may change."""
    import shutil

    root = tmp_path / "example"
    shutil.copytree(example_dir.root, root)
    return Example(root, example_dir.truth)


# ------------------------------------------------------------------------- unreadable pictures


@pytest.fixture(scope="session")
def bomb_png() -> bytes:
    """A small PNG whose header claims 50000 x 50000 pixels: Pillow refuses to open it
    (DecompressionBombError, which is not an OSError)."""
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buffer, format="PNG")
    png = buffer.getvalue()
    start = 8 + 8  # the signature, then the IHDR chunk's length and type
    ihdr = bytearray(png[start : start + 13])
    ihdr[0:8] = struct.pack(">II", 50_000, 50_000)
    crc = struct.pack(">I", zlib.crc32(b"IHDR" + bytes(ihdr)))
    bomb = png[:start] + bytes(ihdr) + crc + png[start + 13 + 4 :]
    with pytest.raises(Image.DecompressionBombError), Image.open(io.BytesIO(bomb)):
        pass
    return bomb
