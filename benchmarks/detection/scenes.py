"""Procedural street scenes with clean masks, and annotation errors injected with a seed.

A scene is drawn layer by layer (sky, buildings, vegetation, road, sidewalks, clutter, poles,
cars, trucks, people), each object an instance with its own id, so errors can act on one
object, one class, or the whole image. The RGB image follows the classes, but noisily: every
class has a base colour that each image and each object shifts (lighting, paint), plus a
class texture (windows, leaves, paving) and sensor noise, so a model must learn which colours
and textures mean which class, and still confuses similar classes (car/truck, road/sidewalk).

Errors (``ERROR_TYPES``) follow Lad & Mueller 2023: a noisy image gets one error kind, picked
uniformly; the clean mask stays the ground truth.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

CLASSES = (
    "background", "sky", "building", "vegetation", "road", "sidewalk",
    "pole", "car", "truck", "person",
)  # fmt: skip
BACKGROUND, SKY, BUILDING, VEGETATION, ROAD, SIDEWALK, POLE, CAR, TRUCK, PERSON = range(10)
#: Which class an annotator confuses a class with.
SIMILAR = {
    CAR: TRUCK, TRUCK: CAR, ROAD: SIDEWALK, SIDEWALK: ROAD, BUILDING: VEGETATION,
    VEGETATION: BUILDING, PERSON: POLE, POLE: PERSON,
}  # fmt: skip
#: Classes drawn as separate objects (the rest are "stuff").
THINGS = (POLE, CAR, TRUCK, PERSON, BACKGROUND)

ERROR_TYPES = (
    "drop_class",  # every pixel of one class relabelled background
    "drop_object",  # one object left unlabelled: it takes the label around it
    "swap_class",  # one object labelled with a similar class
    "boundary",  # one class dilated or eroded by 2-4 pixels
    "simplify",  # objects drawn as coarse polygons (blocky outlines)
    "forget_class",  # one class never drawn in the image: its objects take the label around
)

#: Mean RGB per class (0..1); images and objects shift them.
_BASE = np.array(
    [
        [0.55, 0.45, 0.40],  # background clutter
        [0.55, 0.70, 0.90],  # sky
        [0.60, 0.50, 0.45],  # building
        [0.25, 0.50, 0.20],  # vegetation
        [0.30, 0.30, 0.32],  # road
        [0.50, 0.48, 0.46],  # sidewalk
        [0.35, 0.35, 0.30],  # pole
        [0.50, 0.20, 0.20],  # car (paint varies a lot)
        [0.70, 0.70, 0.68],  # truck
        [0.45, 0.35, 0.50],  # person
    ]
)
_OBJECT_JITTER = np.array([0.05, 0.04, 0.07, 0.06, 0.03, 0.04, 0.06, 0.20, 0.10, 0.15])
_TEXTURE = np.array([0.06, 0.01, 0.05, 0.12, 0.02, 0.05, 0.02, 0.03, 0.03, 0.05])


@dataclass(frozen=True)
class Scene:
    """One image: RGB (H, W, 3) float32, the clean class mask and instance ids (H, W)."""

    image: NDArray[np.float32]
    clean: NDArray[np.uint8]
    instances: NDArray[np.int32]


def _ellipse(h: int, w: int, cy: float, cx: float, ry: float, rx: float) -> NDArray[np.bool_]:
    yy, xx = np.ogrid[:h, :w]
    inside: NDArray[np.bool_] = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1.0
    return inside


def _box(h: int, w: int, y0: int, y1: int, x0: int, x1: int) -> NDArray[np.bool_]:
    box = np.zeros((h, w), bool)
    box[max(0, y0) : max(0, y1), max(0, x0) : max(0, x1)] = True
    return box


def make_scene(rng: np.random.Generator, h: int, w: int) -> Scene:
    """A street scene: the layout, then colours drawn from it."""
    clean = np.full((h, w), SKY, np.uint8)
    instances = np.zeros((h, w), np.int32)
    next_id = [1]

    def paint(mask: NDArray[np.bool_], cls: int) -> None:
        clean[mask] = cls
        instances[mask] = next_id[0]
        next_id[0] += 1

    horizon = int(h * rng.uniform(0.40, 0.55))
    yy, xx = np.mgrid[:h, :w]
    # buildings: a row of blocks standing on the horizon
    x = int(rng.integers(-10, 5))
    while x < w:
        width = int(rng.integers(w // 8, w // 3))
        if rng.random() < 0.8:
            top = int(rng.integers(2, max(3, horizon - 8)))
            paint(_box(h, w, top, horizon, x, x + width), BUILDING)
        x += width + int(rng.integers(0, 6))
    # trees: blobs above the horizon
    for _ in range(int(rng.integers(0, 4))):
        cx, r = rng.uniform(0, w), rng.uniform(5, 12)
        blob = _ellipse(h, w, horizon - r * 0.6, cx, r, r * 1.2)
        blob &= ndimage.binary_opening(rng.random((h, w)) < 0.85)
        paint(blob & (yy < horizon + 2), VEGETATION)
    # road: a trapezoid from the horizon down; sidewalks beside it
    centre = w * rng.uniform(0.35, 0.65)
    half = (yy - horizon) / max(1, h - horizon) * w * rng.uniform(0.45, 0.7) + 3
    ground = yy >= horizon
    road = ground & (np.abs(xx - centre) <= half)
    paint(ground & ~road & (xx < centre), SIDEWALK)
    paint(ground & ~road & (xx >= centre), SIDEWALK)
    paint(road, ROAD)
    # clutter: signs, bins and the like
    for _ in range(int(rng.integers(0, 3))):
        cy, cx = rng.uniform(horizon - 10, h), rng.uniform(0, w)
        paint(_ellipse(h, w, cy, cx, rng.uniform(2, 5), rng.uniform(2, 6)), BACKGROUND)
    # poles on the sidewalks
    for _ in range(int(rng.integers(0, 4))):
        px = int(rng.integers(0, w))
        if clean[min(h - 1, horizon + 4), px] != SIDEWALK:
            continue
        bottom = int(rng.integers(horizon + 3, h))
        paint(_box(h, w, bottom - int(rng.integers(20, 40)), bottom, px, px + 2), POLE)
    # vehicles on the road, nearer ones lower and bigger
    for _ in range(int(rng.integers(1, 5))):
        cls = TRUCK if rng.random() < 0.3 else CAR
        bottom = rng.uniform(horizon + 4, h + 2)
        scale = 0.35 + (bottom - horizon) / max(1, h - horizon)
        bw = (rng.uniform(14, 22) if cls == CAR else rng.uniform(18, 28)) * scale
        bh = (rng.uniform(7, 10) if cls == CAR else rng.uniform(13, 18)) * scale
        cx = centre + rng.uniform(-0.5, 0.5) * w * 0.4
        body = _ellipse(h, w, bottom - bh / 2, cx, bh / 2 + 0.5, bw / 2 + 0.5)
        body |= _box(h, w, int(bottom - bh * 0.6), int(bottom), int(cx - bw / 2), int(cx + bw / 2))
        paint(body, cls)
    # people on the sidewalks
    for _ in range(int(rng.integers(0, 5))):
        px = rng.uniform(0, w)
        bottom = rng.uniform(horizon + 2, h)
        if clean[min(h - 1, int(bottom) - 1), min(w - 1, int(px))] != SIDEWALK:
            continue
        size = 0.5 + (bottom - horizon) / max(1, h - horizon)
        ph, pw = rng.uniform(12, 18) * size, rng.uniform(3, 5) * size
        person = _ellipse(h, w, bottom - ph / 2, px, ph / 2, pw / 2)
        person |= _ellipse(h, w, bottom - ph - pw * 0.4, px, pw * 0.55, pw * 0.5)
        paint(person, PERSON)
    image = render(rng, clean, instances)
    return Scene(image, clean, instances)


def render(
    rng: np.random.Generator, clean: NDArray[np.uint8], instances: NDArray[np.int32]
) -> NDArray[np.float32]:
    """Colours from classes: base colour, lighting, per-object shift, texture, noise, blur."""
    h, w = clean.shape
    light = rng.uniform(0.7, 1.25)
    tint = rng.normal(0, 0.04, 3)
    colour = _BASE[clean] * light + tint
    ids = np.unique(instances)
    shifts = rng.normal(0, 1, (int(ids.max()) + 1, 3))
    cls_of = np.zeros(int(ids.max()) + 1, np.intp)
    cls_of[instances.ravel()] = clean.ravel()
    colour += shifts[instances] * _OBJECT_JITTER[cls_of[instances]][..., None]
    fine = rng.normal(0, 1, (h, w, 1))
    colour += fine * _TEXTURE[clean][..., None]
    # buildings: a window grid; sidewalks: paving lines; sky: brighter near the horizon
    yy, xx = np.mgrid[:h, :w]
    windows = ((yy % 6) < 2) & ((xx % 5) < 2)
    colour[(clean == BUILDING) & windows] *= 0.6
    colour[(clean == SIDEWALK) & ((xx + yy) % 7 == 0)] *= 0.85
    colour[clean == SKY] += (yy[clean == SKY] / h * 0.3)[:, None]
    colour = ndimage.gaussian_filter(colour, sigma=(0.7, 0.7, 0))
    colour += rng.normal(0, 0.04, colour.shape)
    return np.clip(colour, 0, 1).astype(np.float32)


# ----------------------------------------------------------------------- annotation errors


def _fill_from_surroundings(
    labels: NDArray[np.uint8], hole: NDArray[np.bool_]
) -> NDArray[np.uint8]:
    """Each pixel of ``hole`` takes the label of the nearest pixel outside it."""
    if not hole.any() or hole.all():
        return labels
    _, (iy, ix) = ndimage.distance_transform_edt(hole, return_indices=True)
    filled = labels.copy()
    filled[hole] = labels[iy[hole], ix[hole]]
    return filled


def _present(clean: NDArray[np.uint8], classes: tuple[int, ...], min_pixels: int) -> list[int]:
    counts = np.bincount(clean.ravel(), minlength=len(CLASSES))
    return [c for c in classes if counts[c] >= min_pixels]


def inject(rng: np.random.Generator, scene: Scene, kind: str) -> NDArray[np.uint8] | None:
    """The scene's mask with one error of ``kind``; None if the scene has nothing it can act
    on (for example no object to drop)."""
    clean, inst = scene.clean, scene.instances
    noisy = clean.copy()
    objects = [
        int(i)
        for i in np.unique(inst)
        if clean[inst == i][0] in THINGS and np.count_nonzero(inst == i) >= 15
    ]
    if kind == "drop_class":
        options = _present(clean, (BUILDING, VEGETATION, SIDEWALK, POLE, CAR, TRUCK, PERSON), 30)
        if not options:
            return None
        noisy[clean == rng.choice(options)] = BACKGROUND
    elif kind == "drop_object":
        if not objects:
            return None
        noisy = _fill_from_surroundings(clean, inst == rng.choice(objects))
    elif kind == "swap_class":
        swappable = [i for i in objects if clean[inst == i][0] in SIMILAR]
        if not swappable:
            return None
        target = inst == rng.choice(swappable)
        noisy[target] = SIMILAR[int(clean[target][0])]
    elif kind == "boundary":
        options = _present(clean, (BUILDING, VEGETATION, ROAD, CAR, TRUCK, PERSON, POLE), 30)
        if not options:
            return None
        cls = int(rng.choice(options))
        steps = int(rng.integers(2, 5))
        mask = clean == cls
        if rng.random() < 0.5:
            grown = ndimage.binary_dilation(mask, iterations=steps)
            noisy[grown] = cls
        else:
            shrunk = ndimage.binary_erosion(mask, iterations=steps)
            noisy = _fill_from_surroundings(clean, mask & ~shrunk)
            noisy[shrunk] = cls
    elif kind == "simplify":
        if not objects:
            return None
        block = int(rng.integers(4, 7))
        chosen = rng.choice(objects, size=min(len(objects), 3), replace=False)
        h, w = clean.shape
        for obj in chosen:
            mask = inst == obj
            cls = int(clean[mask][0])
            hb, wb = -(-h // block), -(-w // block)
            padded = np.zeros((hb * block, wb * block), bool)
            padded[:h, :w] = mask
            coarse = padded.reshape(hb, block, wb, block).mean(axis=(1, 3)) >= 0.4
            blocky = np.repeat(np.repeat(coarse, block, 0), block, 1)[:h, :w]
            noisy = _fill_from_surroundings(noisy, mask & ~blocky)
            noisy[blocky] = cls
    elif kind == "forget_class":
        options = _present(clean, (POLE, CAR, TRUCK, PERSON, BACKGROUND, VEGETATION), 30)
        if not options:
            return None
        noisy = _fill_from_surroundings(clean, clean == rng.choice(options))
    else:
        raise ValueError(f"unknown error kind {kind!r}")
    if np.count_nonzero(noisy != clean) < 10:
        return None
    return noisy
