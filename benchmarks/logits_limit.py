"""The low-resolution logits limit: for every image, read its mask (PNG) and its logits,
repeat them up to the mask's size (the cheapest upsampling) and take numpy's argmax over
classes at full resolution (what issue 12 names as the yardstick; note that numpy's argmax
over the leading axis costs several times a max over it). Twice (the audit reads its data
at least twice), on two threads.

Usage: python logits_limit.py MASKS LOGITS.npy; prints the seconds taken.
"""

from __future__ import annotations

import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

THREADS = 2


def main(masks: str, path: str) -> None:
    started = time.perf_counter()
    logits = np.load(path, mmap_mode="r")
    files = sorted(Path(masks).glob("*.png"))

    def one(index: int) -> int:
        with Image.open(files[index]) as image:
            mask = np.asarray(image)
        low = np.asarray(logits[index], dtype=np.float32)
        fy, fx = mask.shape[0] // low.shape[1], mask.shape[1] // low.shape[2]
        full = np.repeat(np.repeat(low, fy, axis=1), fx, axis=2)
        return int(full.argmax(axis=0)[0, 0]) + int(mask[0, 0])

    with ThreadPoolExecutor(THREADS) as pool:
        for _ in range(2):
            for _ in pool.map(one, range(len(files))):
                pass
    print(f"{time.perf_counter() - started:.6f}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
