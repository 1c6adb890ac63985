"""A synthetic Cityscapes-size logits dataset: PNG masks at full resolution (default
1024×2048) and float16 logits at a quarter of it (256×512), K=19, as npy.

The logits are smooth random fields (a coarse grid, repeated and blurred, like a model's
stride-4 output) with a margin for each pixel's true class; masks are the true classes at
full resolution with a few mislabelled rectangles, so the audit flags something.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image
from synth import _smooth  # the same box blur as the main benchmark's data


@dataclass(frozen=True)
class LogitsData:
    """Where the generated dataset is, and its size."""

    masks: Path
    logits: Path
    images: int
    classes: int
    height: int  # masks; logits are height // stride
    width: int
    stride: int
    seconds: float

    @property
    def pixels(self) -> int:
        return self.images * self.height * self.width


def _one(
    rng: np.random.Generator, k: int, h: int, w: int, stride: int
) -> tuple[NDArray[np.uint8], NDArray[np.float16]]:
    lh, lw = h // stride, w // stride
    coarse = rng.choice(k, size=(-(-lh // 16), -(-lw // 16)))
    truth = np.repeat(np.repeat(coarse, 16, axis=0), 16, axis=1)[:lh, :lw]
    noise = rng.standard_normal((k, -(-lh // 8), -(-lw // 8)), dtype=np.float32)
    logits = _smooth(np.repeat(np.repeat(noise, 8, axis=1), 8, axis=2)[:, :lh, :lw], 8) * 1.5
    margin = 2.5 + 3.0 * rng.random((lh, lw), dtype=np.float32)
    np.put_along_axis(
        logits, truth[None], np.take_along_axis(logits, truth[None], 0) + margin[None], 0
    )
    given = np.repeat(np.repeat(truth, stride, axis=0), stride, axis=1).astype(np.uint8)
    for _ in range(4):  # mislabelled rectangles
        y, x = rng.integers(0, h - h // 8), rng.integers(0, w - w // 8)
        given[y : y + h // 10, x : x + w // 12] = rng.integers(k)
    given[: h // 20] = 255  # an ignored band (the ego car's hood, say)
    return given, logits.astype(np.float16)


def generate(
    root: Path,
    images: int,
    classes: int = 19,
    height: int = 1024,
    width: int = 2048,
    stride: int = 4,
    seed: int = 0,
) -> LogitsData:
    """Write masks/ and logits.npy (N, K, H/stride, W/stride) float16 under root."""
    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    masks = root / "masks"
    masks.mkdir(parents=True, exist_ok=True)
    shape = (images, classes, height // stride, width // stride)
    npy = np.lib.format.open_memmap(root / "logits.npy", mode="w+", dtype=np.float16, shape=shape)

    def write_mask(item: tuple[str, NDArray[np.uint8]]) -> None:
        Image.fromarray(item[1], mode="L").save(masks / f"{item[0]}.png", compress_level=1)

    with ThreadPoolExecutor(2) as pool:
        futures = []
        for i in range(images):
            given, logits = _one(rng, classes, height, width, stride)
            npy[i] = logits
            futures.append(pool.submit(write_mask, (f"city_{i:05d}", given)))
        for future in futures:
            future.result()
    npy.flush()
    del npy
    return LogitsData(
        masks,
        root / "logits.npy",
        images,
        classes,
        height,
        width,
        stride,
        time.perf_counter() - started,
    )
