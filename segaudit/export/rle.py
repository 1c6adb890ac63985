"""Run-length encoders for the two mask formats annotation tools read, written from the
formats' descriptions (docs/guide/fixing.md): COCO's compressed RLE and Label Studio's
brush RLE. Tests decode both with the tools' own libraries (pycocotools, label-studio-sdk).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray


def _runs(flat: NDArray[np.uint8]) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """Start and length of each run of equal values."""
    if flat.size == 0:
        return np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.intp)
    starts = np.concatenate([[0], np.flatnonzero(flat[1:] != flat[:-1]) + 1]).astype(np.intp)
    lengths = np.diff(np.concatenate([starts, [flat.size]])).astype(np.intp)
    return starts, lengths


def coco_counts(mask: NDArray[np.bool_]) -> list[int]:
    """COCO's uncompressed counts: run lengths over the mask flattened column-major,
    alternating 0s and 1s, starting with 0s (the first count may be 0)."""
    flat = np.asarray(mask, dtype=np.uint8).ravel(order="F")
    _, lengths = _runs(flat)
    counts = lengths.tolist()
    if flat.size and flat[0] == 1:
        counts.insert(0, 0)
    return [int(c) for c in counts]


def coco_string(counts: list[int]) -> str:
    """COCO's compressed counts string: each count (from the third on, minus the count two
    before) in 5-bit groups, low first, 0x20 marking "more", offset by 48."""
    out = []
    for i, count in enumerate(counts):
        x = count - counts[i - 2] if i > 2 else count
        more = True
        while more:
            c = x & 0x1F
            x >>= 5  # arithmetic shift: negative differences end at -1
            more = x != -1 if c & 0x10 else x != 0
            if more:
                c |= 0x20
            out.append(chr(c + 48))
    return "".join(out)


def coco_rle(mask: NDArray[np.bool_]) -> dict[str, object]:
    """A COCO RLE segmentation: ``{"size": [h, w], "counts": "..."}``."""
    height, width = mask.shape
    return {"size": [int(height), int(width)], "counts": coco_string(coco_counts(mask))}


def coco_bbox(mask: NDArray[np.bool_]) -> list[float]:
    """[x, y, width, height] of the mask's pixels (what pycocotools' toBbox gives)."""
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return [0.0, 0.0, 0.0, 0.0]
    return [
        float(cols[0]),
        float(rows[0]),
        float(cols[-1] - cols[0] + 1),
        float(rows[-1] - rows[0] + 1),
    ]


#: Label Studio brush RLE: bits per value, and the four widths a run length may take.
_WORD = 8
_WIDTHS = (3, 4, 8, 16)


def brush_rle(mask: NDArray[np.bool_]) -> list[int]:
    """Label Studio's brush RLE of a (H, W) mask: the pixels row-major, each repeated four
    times (RGBA, alpha = 255 where set), as bits MSB first: a header (value count in 32
    bits, word size - 1 in 5, each run-length width - 1 in 4), then runs (1 = repeat, a
    2-bit width index, length - 1, one 8-bit value), zero-padded to whole bytes."""
    values = np.repeat(np.asarray(mask, dtype=bool).ravel(order="C"), 4).astype(np.uint8) * 255
    bits = [f"{values.size:032b}", f"{_WORD - 1:05b}"]
    bits += [f"{w - 1:04b}" for w in _WIDTHS]
    starts, lengths = _runs(values)
    limit = 1 << _WIDTHS[-1]
    for start, length in zip(starts.tolist(), lengths.tolist(), strict=True):
        value = int(values[start])
        while length > 0:
            piece = min(length, limit)
            index = next(i for i, w in enumerate(_WIDTHS) if piece - 1 < (1 << w))
            width = _WIDTHS[index]
            bits.append(f"1{index:02b}{piece - 1:0{width}b}{value:08b}")
            length -= piece
    text = "".join(bits)
    text += "0" * (-len(text) % 8)
    return list(int(text, 2).to_bytes(len(text) // 8, "big"))
