"""A synthetic benchmark dataset, written fast: PNG masks, float16 probabilities as npy and zarr.

Realistic enough for timing (a model that is right on most pixels, some mislabeled regions,
float16 noise that compresses like real probabilities), cheap to make at 10 GB: a small pool
of "base" images is computed once, and every image is a mosaic of tiles taken from the pool
at random (tile positions kept), so generation is a copy per image, not a softmax.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import zarr
from numpy.typing import NDArray
from PIL import Image

POOL = 6
TILE = 64
#: Images written to the npy and zarr arrays per step (a few MB each).
WRITE_BATCH = 16


@dataclass(frozen=True)
class Synthetic:
    """Where the generated dataset is, and its size."""

    masks: Path
    npy: Path
    zarr: Path
    images: int
    classes: int
    height: int
    width: int
    seconds: float

    @property
    def pixels(self) -> int:
        return self.images * self.height * self.width


def _smooth(planes: NDArray[np.float32], width: int = 8) -> NDArray[np.float32]:
    """A box blur of ``width`` along both image axes (on 8x8 blocks: about bilinear)."""
    for axis in (1, 2):
        padded = np.concatenate(
            [
                np.take(planes, [0] * (width // 2), axis=axis),
                planes,
                np.take(planes, [-1] * (width - width // 2), axis=axis),
            ],
            axis=axis,
        )
        total = np.cumsum(padded, axis=axis, dtype=np.float32)
        n = planes.shape[axis]
        planes = (
            np.take(total, np.arange(width, width + n), axis=axis)
            - np.take(total, np.arange(n), axis=axis)
        ) / width
    return planes


def _pool(
    rng: np.random.Generator, k: int, h: int, w: int
) -> tuple[NDArray[np.uint8], NDArray[np.float16]]:
    """POOL base images: labels (P, H, W) and float16 softmax probabilities (P, K, H, W)."""
    labels = np.empty((POOL, h, w), np.uint8)
    probs = np.empty((POOL, k, h, w), np.float16)
    gh, gw = max(1, h // 32), max(1, w // 32)
    frequency = rng.dirichlet(np.full(k, 0.7))
    for p in range(POOL):
        coarse = rng.choice(k, size=(gh, gw), p=frequency)
        truth = np.kron(coarse, np.ones((32, 32), np.int64))[:h, :w]
        truth = np.pad(truth, ((0, h - truth.shape[0]), (0, w - truth.shape[1])), mode="edge")
        # Like a real model's output, upsampled from stride 16: smooth noise (a coarse grid,
        # blurred), so errors come in blobs, plus a little pixel noise.
        coarse_noise = rng.standard_normal((k, -(-h // 16), -(-w // 16)), dtype=np.float32)
        logits = _smooth(np.repeat(np.repeat(coarse_noise, 16, axis=1), 16, axis=2)[:, :h, :w], 16)
        logits *= 2.0
        logits += rng.standard_normal((k, h, w), dtype=np.float32) * 0.05
        margin = 2.5 + 3.0 * rng.random((gh, gw), dtype=np.float32)
        margin_map = np.kron(margin, np.ones((32, 32), np.float32))[:h, :w]
        margin_map = np.pad(
            margin_map, ((0, h - margin_map.shape[0]), (0, w - margin_map.shape[1])), mode="edge"
        )
        np.put_along_axis(
            logits,
            truth[None],
            np.take_along_axis(logits, truth[None], 0) + margin_map[None],
            0,
        )
        logits -= logits.max(axis=0, keepdims=True)
        np.exp(logits, out=logits)
        logits /= logits.sum(axis=0, keepdims=True)
        probs[p] = logits.astype(np.float16)
        given = truth.copy()
        for _ in range(3):  # mislabeled rectangles: a region given another class
            y, x = rng.integers(0, h - 24), rng.integers(0, w - 48)
            given[y : y + 24, x : x + 48] = rng.integers(k)
        labels[p] = given.astype(np.uint8)
    return labels, probs


def _mosaic(
    rng: np.random.Generator, labels: NDArray[np.uint8], probs: NDArray[np.float16]
) -> tuple[NDArray[np.uint8], NDArray[np.float16]]:
    """One image made of pool tiles, each tile from a random pool image at its own place."""
    _, k, h, w = probs.shape
    out_labels = np.empty((h, w), np.uint8)
    out_probs = np.empty((k, h, w), np.float16)
    for y in range(0, h, TILE):
        for x in range(0, w, TILE):
            p = int(rng.integers(POOL))
            out_labels[y : y + TILE, x : x + TILE] = labels[p, y : y + TILE, x : x + TILE]
            out_probs[:, y : y + TILE, x : x + TILE] = probs[p, :, y : y + TILE, x : x + TILE]
    return out_labels, out_probs


def generate(
    root: Path, images: int, classes: int, height: int, width: int, seed: int = 0
) -> Synthetic:
    """Write masks/, probs.npy and probs.zarr (float16, one image per chunk) under root."""
    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    masks = root / "masks"
    masks.mkdir(parents=True, exist_ok=True)
    pool_labels, pool_probs = _pool(rng, classes, height, width)
    shape = (images, classes, height, width)
    npy = np.lib.format.open_memmap(root / "probs.npy", mode="w+", dtype=np.float16, shape=shape)
    store = zarr.create_array(
        store=str(root / "probs.zarr"),
        shape=shape,
        chunks=(1, classes, height, width),
        dtype="float16",
        overwrite=True,
    )
    ids = [f"img_{i:06d}" for i in range(images)]
    store.attrs["image_ids"] = ids

    def write_mask(item: tuple[str, NDArray[np.uint8]]) -> None:
        Image.fromarray(item[1], mode="L").save(masks / f"{item[0]}.png", compress_level=1)

    with ThreadPoolExecutor(2) as pool:
        for start in range(0, images, WRITE_BATCH):
            stop = min(start + WRITE_BATCH, images)
            batch_labels = np.empty((stop - start, height, width), np.uint8)
            batch = np.empty((stop - start, classes, height, width), np.float16)
            for offset in range(stop - start):
                batch_labels[offset], batch[offset] = _mosaic(rng, pool_labels, pool_probs)
            npy[start:stop] = batch
            store[start:stop] = batch
            list(pool.map(write_mask, zip(ids[start:stop], batch_labels, strict=True)))
    npy.flush()
    del npy
    return Synthetic(
        masks,
        root / "probs.npy",
        root / "probs.zarr",
        images,
        classes,
        height,
        width,
        time.perf_counter() - started,
    )
