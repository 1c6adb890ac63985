"""Generate a small synthetic street-scene dataset with known label errors.

The dataset is meant for a newcomer demo of ``segaudit``: it contains RGB
images, (partly corrupted) label masks, a model's per-pixel predicted
probabilities and a ``truth.json`` listing exactly which images were
corrupted and how.

Everything is deterministic for a given ``seed``; image ``i`` depends only on
``(seed, i)``, so changing ``--num-images`` does not change earlier images
(only which images are chosen for corruption).

Layout written into ``out_dir``::

    images/<id>.png    RGB image rendered from the TRUE labels
    masks/<id>.png     mode "L" label PNG (class id, 255 = ignore), possibly corrupted
    probs.zarr         zarr v3 float16 array (N, K, H, W), attr ``image_ids``
    probs.npy          the same array as .npy
    classes.yaml       class names / colours / ignore values
    truth.json         {"classes": [...], "corrupted": {id: kind}, "num_images": N}

Usage::

    python examples/make_example.py --out build/example --num-images 24 --seed 0
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import zarr
from numpy.typing import NDArray
from PIL import Image

ROAD, SIDEWALK, BUILDING, SKY, CAR, PERSON = range(6)
IGNORE = 255
CLASS_NAMES: tuple[str, ...] = ("road", "sidewalk", "building", "sky", "car", "person")
CLASS_COLORS: tuple[tuple[int, int, int], ...] = (
    (128, 64, 128),  # road
    (244, 35, 232),  # sidewalk
    (70, 70, 70),  # building
    (70, 130, 180),  # sky
    (0, 0, 142),  # car
    (220, 20, 60),  # person
)
NUM_CLASSES = len(CLASS_NAMES)
ERROR_KINDS: tuple[str, ...] = (
    "dropped_object",
    "dropped_class",
    "swapped_class",
    "shifted_boundary",
)
CORRUPT_FRACTION = 1.0 / 3.0

# Plausible confusions for genuine (non-label) model mistakes.
_CONFUSION: dict[int, int] = {
    ROAD: SIDEWALK,
    SIDEWALK: ROAD,
    BUILDING: SKY,
    SKY: BUILDING,
    CAR: ROAD,
    PERSON: SIDEWALK,
}

BoolMap = NDArray[np.bool_]
FloatMap = NDArray[np.float32]


@dataclass
class _Object:
    """One drawn thing (car or person) in a scene."""

    cls: int
    inst_id: int
    bottom: int


@dataclass
class _Scene:
    """A generated scene: true labels plus the bookkeeping needed to corrupt it."""

    labels: NDArray[np.uint8]  # true label map (H, W)
    stuff: NDArray[np.uint8]  # background (road/sidewalk/building/sky) without objects
    instances: NDArray[np.int32]  # 0 = no object, else _Object.inst_id
    objects: list[_Object]
    boundary_row: NDArray[np.int64]  # per column: first road row below the sidewalk
    sidewalk_top: int
    shade: FloatMap  # multiplicative shading used when rendering the RGB image


# --------------------------------------------------------------------------- #
# Scene drawing
# --------------------------------------------------------------------------- #


def _gaussian_blur(field: FloatMap, sigma: float) -> FloatMap:
    """Separable Gaussian blur over the last two axes (symmetric boundary).

    A small numpy-only stand-in for ``scipy.ndimage.gaussian_filter`` so the
    example needs nothing beyond segaudit's own dependencies.
    """
    radius = max(1, int(4.0 * sigma + 0.5))
    taps = np.arange(-radius, radius + 1, dtype=np.float32)
    kernel = np.exp(-0.5 * (taps / sigma) ** 2)
    kernel /= kernel.sum()
    out = field.astype(np.float32)
    for axis in (-2, -1):
        n = out.shape[axis]
        pad = [(0, 0)] * out.ndim
        pad[axis] = (radius, radius)
        padded = np.pad(out, pad, mode="symmetric")
        acc = np.zeros_like(out)
        for k, weight in enumerate(kernel):
            acc += weight * np.take(padded, np.arange(k, k + n), axis=axis)
        out = acc
    return out


def _outer_ring(mask: BoolMap) -> BoolMap:
    """Pixels 4-adjacent to ``mask`` but not in it (a 1-px outer border)."""
    grown = mask.copy()
    grown[1:, :] |= mask[:-1, :]
    grown[:-1, :] |= mask[1:, :]
    grown[:, 1:] |= mask[:, :-1]
    grown[:, :-1] |= mask[:, 1:]
    ring: BoolMap = grown & ~mask
    return ring


def _rounded_rect(h: int, w: int, y0: int, y1: int, x0: int, x1: int, radius: float) -> BoolMap:
    """Boolean mask of a rectangle [y0, y1) x [x0, x1) with rounded corners."""
    yy, xx = np.mgrid[0:h, 0:w]
    inside: BoolMap = (yy >= y0) & (yy < y1) & (xx >= x0) & (xx < x1)
    r = max(0.0, min(radius, (y1 - y0) / 2.0, (x1 - x0) / 2.0))
    if r < 1.0:
        return inside
    cy = np.clip(yy, y0 + r, y1 - 1 - r)
    cx = np.clip(xx, x0 + r, x1 - 1 - r)
    rounded: BoolMap = inside & ((yy - cy) ** 2 + (xx - cx) ** 2 <= r * r + 0.5)
    return rounded


def _ellipse(h: int, w: int, cy: float, cx: float, ry: float, rx: float) -> BoolMap:
    """Boolean mask of an axis-aligned ellipse."""
    yy, xx = np.mgrid[0:h, 0:w]
    inside: BoolMap = ((yy - cy) / max(ry, 0.5)) ** 2 + ((xx - cx) / max(rx, 0.5)) ** 2 <= 1.0
    return inside


def _roof_profile(rng: np.random.Generator, width: int, top: int, h: int) -> NDArray[np.int64]:
    """Row of the roof line for each column of one building."""
    kind = rng.integers(0, 4)
    xs = np.arange(width)
    roof = np.full(width, top, dtype=np.int64)
    if kind == 1:  # peaked / gabled
        drop = int(rng.integers(3, max(4, h // 10)))
        mid = (width - 1) / 2.0
        roof = top + np.round(drop * np.abs(xs - mid) / max(mid, 1.0)).astype(np.int64)
    elif kind == 2:  # stepped
        split = int(rng.integers(width // 3, max(width // 3 + 1, 2 * width // 3)))
        step = int(rng.integers(3, max(4, h // 8)))
        if rng.random() < 0.5:
            roof[:split] += step
        else:
            roof[split:] += step
    elif kind == 3:  # slanted
        drop = int(rng.integers(2, max(3, h // 12)))
        ramp = np.round(drop * xs / max(width - 1, 1)).astype(np.int64)
        roof = top + (ramp if rng.random() < 0.5 else ramp[::-1])
    return roof


def _draw_scene(rng: np.random.Generator, h: int, w: int) -> _Scene:
    """Draw a true label map: sky, buildings, sidewalk(s), road, cars, persons."""
    yy, xx = np.mgrid[0:h, 0:w]
    shade = np.ones((h, w), dtype=np.float32)

    # --- stuff: sky / buildings / sidewalk / road ------------------------------
    sidewalk_top = int(h * rng.uniform(0.42, 0.52))
    sw_height = h * rng.uniform(0.11, 0.17)
    slope = rng.uniform(-0.06, 0.06)
    boundary_row = np.round(sidewalk_top + sw_height + slope * (np.arange(w) - w / 2.0))
    boundary_row = np.clip(boundary_row, sidewalk_top + 6, h - 12).astype(np.int64)

    stuff = np.full((h, w), SKY, dtype=np.uint8)
    x = int(-rng.integers(0, max(2, w // 10)))
    while x < w:
        bw = int(rng.integers(max(8, w // 10), max(9, w // 4)))
        top = int(rng.integers(max(4, int(0.10 * h)), max(5, int(0.36 * h))))
        roof = _roof_profile(rng, bw, top, h)
        for j in range(bw):
            col = x + j
            if 0 <= col < w:
                stuff[roof[j] : sidewalk_top, col] = BUILDING
        # windows: a grid of darker rectangles, for texture only
        win_rows = range(top + 4, sidewalk_top - 4, 7)
        for r in win_rows:
            for c in range(x + 3, x + bw - 4, 6):
                if 0 <= c < w - 2:
                    shade[r : r + 3, c : c + 3] = 0.65
        x += bw
    shade[stuff != BUILDING] = 1.0  # windows only on buildings

    stuff[sidewalk_top:, :] = SIDEWALK
    road = yy >= boundary_row[None, :]
    stuff[road] = ROAD
    near_sidewalk_top = h
    if rng.random() < 0.4:  # a second sidewalk strip at the very bottom
        near_sidewalk_top = h - int(h * rng.uniform(0.05, 0.09))
        stuff[near_sidewalk_top:, :] = SIDEWALK

    # dashed lane marking (render only; still labelled road)
    lane_row = int((boundary_row.max() + near_sidewalk_top) / 2)
    dash = ((xx // 10) % 2 == 0) & (yy == lane_row)
    shade[dash & (stuff == ROAD)] = 1.6

    # --- things: persons on the sidewalk, cars on the road --------------------
    labels = stuff.copy()
    instances = np.zeros((h, w), dtype=np.int32)
    pending: list[tuple[int, int, BoolMap, BoolMap]] = []  # (bottom, cls, mask, dark)

    n_persons = int(rng.integers(0, 3))
    for _ in range(n_persons):
        ph = round(h * rng.uniform(0.15, 0.23))
        pw = int(rng.integers(3, 6))
        cx = int(rng.integers(4, w - 4))
        lo = sidewalk_top + 2
        hi = max(lo + 1, int(boundary_row[cx]) - 1)
        bottom = int(rng.integers(lo, hi))
        head_r = pw / 2.0 + 0.6
        body = _rounded_rect(
            h, w, bottom - ph + int(2 * head_r), bottom, cx - pw // 2, cx - pw // 2 + pw, 1.0
        )
        head = _ellipse(h, w, bottom - ph + head_r, cx, head_r, head_r)
        pending.append((bottom, PERSON, body | head, np.zeros((h, w), dtype=bool)))

    n_cars = int(rng.integers(1, 4))
    car_boxes: list[tuple[int, int, int, int]] = []
    road_top = int(boundary_row.max())
    for _ in range(n_cars):
        for _attempt in range(30):
            cw = round(w * rng.uniform(0.17, 0.28))
            ch = round(cw * rng.uniform(0.42, 0.55))
            lo = road_top + 4
            hi = max(lo + 1, near_sidewalk_top - 1)
            bottom = int(rng.integers(lo, hi))
            x0 = int(rng.integers(-cw // 4, w - (3 * cw) // 4))
            box = (bottom - ch, bottom, x0, x0 + cw)
            if all(_box_overlap(box, other) < 0.35 for other in car_boxes):
                break
        car_boxes.append(box)
        y0, y1, x0, x1 = box
        split = y1 - round(0.6 * ch)
        lower = _rounded_rect(h, w, split, y1 - 1, x0, x1, 2.0)
        inset = round(0.2 * cw)
        cabin = _rounded_rect(h, w, y0, split + 2, x0 + inset, x1 - inset, 3.0)
        wr = max(2.0, ch * 0.18)
        wheels = _ellipse(h, w, y1 - wr, x0 + 0.22 * cw, wr, wr) | _ellipse(
            h, w, y1 - wr, x1 - 0.22 * cw, wr, wr
        )
        window = _rounded_rect(h, w, y0 + 2, split, x0 + inset + 2, x1 - inset - 2, 1.0)
        dark = (cabin & window) | wheels
        pending.append((bottom, CAR, lower | cabin | wheels, dark))

    objects: list[_Object] = []
    for inst_id, (bottom, cls, mask, dark) in enumerate(
        sorted(pending, key=lambda p: p[0]), start=1
    ):  # far (small bottom row) first, near objects occlude them
        labels[mask] = cls
        instances[mask] = inst_id
        shade[mask] = 1.0
        shade[dark & mask] = 0.45
        objects.append(_Object(cls=cls, inst_id=inst_id, bottom=bottom))

    return _Scene(
        labels=labels,
        stuff=stuff,
        instances=instances,
        objects=objects,
        boundary_row=boundary_row,
        sidewalk_top=sidewalk_top,
        shade=shade,
    )


def _box_overlap(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    """Intersection area over the smaller box's area for (y0, y1, x0, x1) boxes."""
    iy = max(0, min(a[1], b[1]) - max(a[0], b[0]))
    ix = max(0, min(a[3], b[3]) - max(a[2], b[2]))
    area = min((a[1] - a[0]) * (a[3] - a[2]), (b[1] - b[0]) * (b[3] - b[2]))
    return (iy * ix) / max(area, 1)


# --------------------------------------------------------------------------- #
# Rendering and the simulated model
# --------------------------------------------------------------------------- #


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, ...], sigma: float) -> FloatMap:
    """Gaussian-smoothed standard-normal field, re-normalised to unit std."""
    field = _gaussian_blur(rng.standard_normal(shape).astype(np.float32), sigma)
    std = float(field.std())
    return field / np.float32(std) if std > 0 else field


def _render_rgb(rng: np.random.Generator, scene: _Scene) -> NDArray[np.uint8]:
    """Photo-like RGB image: class colour x shading + smooth lighting + pixel noise."""
    h, w = scene.labels.shape
    palette = np.asarray(CLASS_COLORS, dtype=np.float32)
    rgb = palette[scene.labels]
    # per-object colour tint so cars / persons are not all identical
    for obj in scene.objects:
        m = scene.instances == obj.inst_id
        rgb[m] += rng.normal(0.0, 18.0, size=3).astype(np.float32)
    shade = scene.shade.copy()
    rows = np.arange(h, dtype=np.float32)[:, None]
    sky = scene.labels == SKY
    shade[sky] *= np.broadcast_to(1.0 + 0.3 * rows / max(scene.sidewalk_top, 1), (h, w))[sky]
    road = scene.labels == ROAD
    shade[road] *= np.broadcast_to(1.05 - 0.2 * rows / h, (h, w))[road]
    light = 1.0 + 0.07 * _smooth_noise(rng, (h, w), 10.0)
    rgb = rgb * (shade * light)[..., None]
    rgb += rng.normal(0.0, 6.0, size=rgb.shape).astype(np.float32)
    return np.clip(np.round(rgb), 0, 255).astype(np.uint8)


def _simulate_probs(rng: np.random.Generator, labels: NDArray[np.uint8]) -> FloatMap:
    """Imperfect model probabilities (K, H, W) computed from the TRUE labels.

    One-hot logits are blurred near boundaries, perturbed with smooth and
    per-pixel noise, flattened in a few low-confidence blobs and, sometimes,
    pushed towards a wrong class in one small blob (a genuine model mistake),
    then softmax-normalised.
    """
    h, w = labels.shape
    k = NUM_CLASSES
    onehot = (labels[None, :, :] == np.arange(k)[:, None, None]).astype(np.float32)
    blurred = _gaussian_blur(onehot, 1.3)
    logits = 7.0 * blurred
    logits += 0.7 * _smooth_noise(rng, (k, h, w), 3.0)
    logits += 0.35 * rng.standard_normal((k, h, w)).astype(np.float32)

    yy, xx = np.mgrid[0:h, 0:w]
    # low-confidence blobs: flatten the logits (higher temperature)
    temp = np.ones((h, w), dtype=np.float32)
    for _ in range(int(rng.integers(1, 4))):
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        r = rng.uniform(0.06, 0.12) * min(h, w) * 1.5
        bump = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r)).astype(np.float32)
        temp *= 1.0 - 0.65 * bump
    logits *= temp[None]

    # occasional genuine model mistake in one small area
    if rng.random() < 0.5:
        cy, cx = int(rng.integers(0, h)), int(rng.integers(0, w))
        wrong = _CONFUSION[int(labels[cy, cx])]
        r = rng.uniform(2.5, 5.0)
        bump = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r)).astype(np.float32)
        logits[wrong] += 10.0 * bump

    logits -= logits.max(axis=0, keepdims=True)
    probs = np.exp(logits)
    probs /= probs.sum(axis=0, keepdims=True)
    out: FloatMap = probs.astype(np.float32)
    return out


# --------------------------------------------------------------------------- #
# Corruption and void borders
# --------------------------------------------------------------------------- #


def _largest(scene: _Scene, cls: int) -> _Object | None:
    """Object of class ``cls`` with the most visible pixels (None if absent)."""
    best: _Object | None = None
    best_area = 0
    for obj in scene.objects:
        if obj.cls != cls:
            continue
        area = int((scene.instances == obj.inst_id).sum())
        if area > best_area:
            best, best_area = obj, area
    return best


def _corrupt(
    rng: np.random.Generator, scene: _Scene, kind: str
) -> tuple[NDArray[np.uint8], int | None]:
    """Apply one annotation error of ``kind``; return (mask, dropped instance id)."""
    mask = scene.labels.copy()
    dropped: int | None = None
    if kind == "dropped_object":
        target = _largest(scene, CAR)
        person = _largest(scene, PERSON)
        if person is not None and (target is None or rng.random() < 0.3):
            target = person
        assert target is not None, "every scene has at least one car"
        m = scene.instances == target.inst_id
        mask[m] = scene.stuff[m]  # the surrounding background (road / sidewalk)
        dropped = target.inst_id
    elif kind == "dropped_class":
        mask[mask == SKY] = BUILDING
    elif kind == "swapped_class":
        target = _largest(scene, CAR)
        assert target is not None, "every scene has at least one car"
        mask[scene.instances == target.inst_id] = PERSON
    elif kind == "shifted_boundary":
        h = mask.shape[0]
        rows = np.arange(h)[:, None]
        b = scene.boundary_row[None, :]
        shift = int(rng.integers(max(4, h // 16), max(5, h // 10) + 1))
        if rng.random() < 0.5:  # sidewalk grows into the road
            band = (rows >= b) & (rows < b + shift) & (mask == ROAD)
            mask[band] = SIDEWALK
        else:  # road grows into the sidewalk
            shift = min(shift, int((scene.boundary_row - scene.sidewalk_top).min()) - 2)
            band = (rows < b) & (rows >= b - shift) & (mask == SIDEWALK)
            mask[band] = ROAD
    else:
        raise ValueError(f"unknown error kind: {kind!r}")
    return mask, dropped


def _add_void_border(
    rng: np.random.Generator, scene: _Scene, mask: NDArray[np.uint8], skip: int | None
) -> None:
    """Mark a 1-px ignore band just outside some object outlines (in place)."""
    chosen = [o for o in scene.objects if o.inst_id != skip and rng.random() < 0.8]
    if not chosen:
        chosen = [o for o in scene.objects if o.inst_id != skip][:1]
    for obj in chosen:
        m = scene.instances == obj.inst_id
        mask[_outer_ring(m)] = IGNORE


# --------------------------------------------------------------------------- #
# Writing
# --------------------------------------------------------------------------- #


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file and ``os.replace``."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _save_png(path: Path, array: NDArray[np.uint8]) -> None:
    """Save a uint8 (H, W) array as mode "L" or (H, W, 3) as "RGB" PNG, atomically."""
    img = Image.fromarray(array)
    expected = "L" if array.ndim == 2 else "RGB"
    assert img.mode == expected, (img.mode, expected)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        img.save(tmp, format="PNG")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _classes_yaml() -> str:
    """Text of ``classes.yaml`` (written by hand; no YAML dependency needed)."""
    lines = ["version: 1", "name: segaudit-example", f"ignore: [{IGNORE}]", "classes:"]
    for name, (r, g, b) in zip(CLASS_NAMES, CLASS_COLORS, strict=True):
        lines.append(f"  - {{name: {name}, color: [{r}, {g}, {b}]}}")
    return "\n".join(lines) + "\n"


def _image_ids(num_images: int) -> list[str]:
    """Zero-padded ids whose sorted order equals index order."""
    width = max(3, len(str(num_images - 1)))
    return [f"img_{i:0{width}d}" for i in range(num_images)]


def make_example(
    out_dir: Path,
    num_images: int = 24,
    height: int = 96,
    width: int = 160,
    seed: int = 0,
) -> dict[str, object]:
    """Write the synthetic example dataset into ``out_dir`` and return the truth dict.

    About a third of the images (at least one when ``num_images >= 3``) get
    exactly one injected annotation error; the kinds cycle through
    ``ERROR_KINDS`` in a shuffled order so they are mixed. The returned dict is
    also written to ``out_dir/truth.json``::

        {"classes": [...], "corrupted": {image_id: kind}, "num_images": N}
    """
    if num_images < 1:
        raise ValueError("num_images must be >= 1")
    if height < 48 or width < 64:
        raise ValueError("height must be >= 48 and width >= 64")
    out_dir = Path(out_dir)
    images_dir = out_dir / "images"
    masks_dir = out_dir / "masks"
    images_dir.mkdir(parents=True, exist_ok=True)
    masks_dir.mkdir(parents=True, exist_ok=True)

    ids = _image_ids(num_images)
    root = np.random.SeedSequence(seed)
    select_seq, *image_seqs = root.spawn(num_images + 1)
    select_rng = np.random.default_rng(select_seq)
    n_corrupt = round(num_images * CORRUPT_FRACTION)
    corrupt_idx = sorted(int(i) for i in select_rng.choice(num_images, n_corrupt, replace=False))
    kinds = [ERROR_KINDS[j % len(ERROR_KINDS)] for j in range(n_corrupt)]
    kinds = [kinds[int(j)] for j in select_rng.permutation(n_corrupt)]
    corrupted = dict(zip((ids[i] for i in corrupt_idx), kinds, strict=True))

    # remove stale files from an earlier run with more images
    wanted = {f"{i}.png" for i in ids}
    for d in (images_dir, masks_dir):
        for stale in d.glob("img_*.png"):
            if stale.name not in wanted:
                stale.unlink()

    probs = np.empty((num_images, NUM_CLASSES, height, width), dtype=np.float16)
    for i, image_id in enumerate(ids):
        rng = np.random.default_rng(image_seqs[i])
        scene = _draw_scene(rng, height, width)
        rgb = _render_rgb(rng, scene)
        probs[i] = _simulate_probs(rng, scene.labels)
        kind = corrupted.get(image_id)
        if kind is None:
            mask, dropped = scene.labels.copy(), None
        else:
            mask, dropped = _corrupt(rng, scene, kind)
        _add_void_border(rng, scene, mask, skip=dropped)
        _save_png(images_dir / f"{image_id}.png", rgb)
        _save_png(masks_dir / f"{image_id}.png", mask)

    zarr_path = out_dir / "probs.zarr"
    if zarr_path.exists():
        shutil.rmtree(zarr_path)
    arr = zarr.create_array(
        store=str(zarr_path),
        shape=probs.shape,
        chunks=(1, NUM_CLASSES, height, width),
        dtype="float16",
    )
    arr[...] = probs
    arr.attrs["image_ids"] = ids

    npy_tmp = out_dir / ".probs.npy.tmp"
    with npy_tmp.open("wb") as fh:
        np.save(fh, probs)
    os.replace(npy_tmp, out_dir / "probs.npy")

    _atomic_write_bytes(out_dir / "classes.yaml", _classes_yaml().encode("utf-8"))
    truth: dict[str, object] = {
        "classes": list(CLASS_NAMES),
        "corrupted": corrupted,
        "num_images": num_images,
    }
    text = json.dumps(truth, sort_keys=True, indent=2) + "\n"
    _atomic_write_bytes(out_dir / "truth.json", text.encode("utf-8"))
    return truth


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(
        description="Generate a synthetic street-scene segmentation dataset "
        "with known injected label errors (segaudit demo)."
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("build/example"),
        help="output directory (default: build/example)",
    )
    parser.add_argument("--num-images", type=int, default=24, help="number of images (default: 24)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    args = parser.parse_args(argv)

    start = time.perf_counter()
    truth = make_example(args.out, num_images=args.num_images, seed=args.seed)
    elapsed = time.perf_counter() - start
    corrupted = truth["corrupted"]
    assert isinstance(corrupted, dict)
    print(
        f"wrote {args.num_images} images ({len(corrupted)} with injected label errors) "
        f"to {args.out} in {elapsed:.2f}s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
