"""Peak memory of scoring ONE large image (default 8192×8192, 19 float16 classes: 2.4 GiB
of probabilities), from .npy and from zarr, against the 1 GiB target (issue 10).

segaudit reads such an image in bands of rows (segaudit.io.tiles), so its peak is a band's
working set plus the image's mask. Peak memory is the process tree's peak anonymous memory
(see measure.py: pages of the memory-mapped .npy are the page cache, not the program's).
The zarr store is chunked by rows, (1, K, 64, W), as docs/guide/large-images.md advises.

Usage: python benchmarks/large_image.py [--size 8192] [--classes 19] [--root build/bench-large]
The data (about 2.6 GB on disk per format) is generated once and kept under --root.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

sys.path.insert(0, str(Path(__file__).resolve().parent))
from measure import run

TARGET_BYTES = 2**30
BAND = 256  # rows generated at a time
ZARR_CHUNK_ROWS = 64


def _band(
    rng: np.random.Generator, k: int, rows: int, width: int, top: int
) -> tuple[NDArray[np.float16], NDArray[np.uint8]]:
    """Probabilities (K, rows, W) float16 of blocky true classes, and labels with label
    errors as 64×64 squares of another class (one block in 50): objects, not salt noise."""
    y = (top + np.arange(rows))[:, None]
    x = np.arange(width)[None, :]
    true = ((y // 512 * 7 + x // 512 * 3) % k).astype(np.intp)
    logits = rng.normal(size=(k, rows, width)).astype(np.float32)
    np.put_along_axis(logits, true[None], np.take_along_axis(logits, true[None], 0) + 4, 0)
    logits -= logits.max(axis=0, keepdims=True)
    np.exp(logits, out=logits)
    logits /= logits.sum(axis=0, keepdims=True)
    block = (y // 64) * (width // 64 + 1) + x // 64
    wrong = (block * 2654435761 % 50) == 0  # a fixed pseudo-random choice of blocks
    labels = np.where(wrong, (true + 1 + block % (k - 1)) % k, true).astype(np.uint8)
    return logits.astype(np.float16), labels


def make_data(root: Path, size: int, k: int) -> tuple[Path, Path, Path]:
    """masks/big.png, probs.npy (1, K, H, W) and probs.zarr, generated band by band."""
    import zarr
    from PIL import Image

    masks, npy, store = root / "masks", root / "probs.npy", root / "probs.zarr"
    done = root / f"done-{size}-{k}-v2"
    if done.exists():
        return masks, npy, store
    shutil.rmtree(root, ignore_errors=True)
    masks.mkdir(parents=True)
    rng = np.random.default_rng(0)
    shape = (1, k, size, size)
    array = np.lib.format.open_memmap(npy, mode="w+", dtype=np.float16, shape=shape)
    chunks = (1, k, ZARR_CHUNK_ROWS, size)
    stored = zarr.create_array(store=str(store), shape=shape, chunks=chunks, dtype=np.float16)
    stored.attrs["image_ids"] = ["big"]
    labels = np.empty((size, size), np.uint8)
    for top in range(0, size, BAND):
        rows = min(BAND, size - top)
        probs, band_labels = _band(rng, k, rows, size, top)
        array[0, :, top : top + rows] = probs
        stored[0, :, top : top + rows] = probs
        labels[top : top + rows] = band_labels
    array.flush()
    del array
    Image.fromarray(labels).save(masks / "big.png")
    done.touch()
    return masks, npy, store


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=8192)
    parser.add_argument("--classes", type=int, default=19)
    parser.add_argument("--root", type=Path, default=Path("build/bench-large"))
    args = parser.parse_args(argv)
    masks, npy, store = make_data(args.root, args.size, args.classes)
    segaudit = Path(sys.executable).parent / "segaudit"
    command = [str(segaudit)] if segaudit.exists() else [sys.executable, "-m", "segaudit"]
    print(f"one {args.size}x{args.size} image, {args.classes} float16 classes")
    print(f"{'source':<8} {'seconds':>8} {'peak MiB':>9}  target < {TARGET_BYTES / 2**20:.0f} MiB")
    failed = False
    for name, probs in (("npy", npy), ("zarr", store)):
        out = args.root / f"run-{name}"
        measured = run(
            [*command, "score", "--labels", str(masks), "--probs", str(probs), "--out", str(out)]
        )
        ok = measured.peak_bytes < TARGET_BYTES
        failed |= not ok
        print(
            f"{name:<8} {measured.seconds:>8.1f} {measured.peak_bytes / 2**20:>9.0f}  "
            f"{'ok' if ok else 'OVER TARGET'}"
        )
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
