"""The read limit: read every image's probabilities twice (the audit's two passes), one max
over classes each time, on two threads. No program that reads the data twice beats this.

Usage: python read_limit.py PROBS (a .npy file or a zarr store); prints the seconds taken.
"""

from __future__ import annotations

import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

THREADS = 2


def main(path: str) -> None:
    started = time.perf_counter()
    array: Any
    if path.endswith(".npy"):
        array = np.load(path, mmap_mode="r")
    else:
        import zarr

        array = zarr.open_array(store=path, mode="r")

    def one(index: int) -> float:
        return float(np.asarray(array[index]).max(axis=0)[0, 0])

    with ThreadPoolExecutor(THREADS) as pool:
        for _ in range(2):
            for _ in pool.map(one, range(array.shape[0])):
                pass
    print(f"{time.perf_counter() - started:.6f}")


if __name__ == "__main__":
    main(sys.argv[1])
