"""Miniature replicas of the official dataset trees, with exact names and encodings, and a
model's probabilities saved the way users save them.

Each builder writes under ``root`` and returns a :class:`Replica`: the ids the run must
rank (in order), the one image whose mask carries an injected error (a rectangle given
another class than the model sees), and where things are. ``mispaired`` variants keep
every file name right but pair probabilities wrongly (reversed or shifted rows, another
image's file), or leave out the remap the masks need.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import zarr
from numpy.typing import NDArray
from PIL import Image

#: cityscapesscripts labels.py: trainId -> labelId for the 19 evaluated classes.
CITYSCAPES_LABEL_IDS = [7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 31, 32, 33]
CITYSCAPES_INSTANCE_TRAIN_IDS = {11, 12, 13, 14, 15, 16, 17, 18}  # person .. bicycle


@dataclass(frozen=True)
class Replica:
    root: Path
    ids: list[str]  # the images the run must rank
    injected: str  # the image whose mask has an injected error


def scene(rng: np.random.Generator, h: int, w: int, classes: list[int]) -> NDArray[np.int64]:
    """A street-like label map: two bands (top, bottom) and two rectangles, classes drawn
    from ``classes`` so that images differ from each other."""
    picks = rng.choice(classes, size=4, replace=False)
    labels = np.empty((h, w), np.int64)
    split = int(rng.integers(h // 3, 2 * h // 3))
    labels[:split], labels[split:] = picks[0], picks[1]
    for value in picks[2:]:
        y, x = int(rng.integers(0, h // 2)), int(rng.integers(0, w // 2))
        labels[y : y + h // 3, x : x + w // 3] = value
    return labels


def model_probs(
    rng: np.random.Generator, planes: NDArray[np.int64], k: int, dtype: type = np.float16
) -> NDArray[np.floating]:
    """A confident model's (K, H, W) probabilities for true planes (-1: a random class)."""
    h, w = planes.shape
    planes = np.where(planes < 0, rng.integers(0, k, (h, w)), planes)
    logits = rng.normal(0, 0.5, (k, h, w))
    np.put_along_axis(logits, planes[None], 6.0, axis=0)
    probs = np.exp(logits - logits.max(axis=0))
    return (probs / probs.sum(axis=0)).astype(dtype)


def inject(labels: NDArray[np.int64], value: int) -> NDArray[np.int64]:
    """A mislabelled object: the middle of the image given class ``value``."""
    given = labels.copy()
    h, w = labels.shape
    given[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4] = value
    return given


def picture(rng: np.random.Generator, h: int, w: int) -> Image.Image:
    return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))


# ------------------------------------------------------------------------------ Cityscapes

CITYSCAPES_COLORS = [
    (128, 64, 128), (244, 35, 232), (70, 70, 70), (102, 102, 156), (190, 153, 153),
    (153, 153, 153), (250, 170, 30), (220, 220, 0), (107, 142, 35), (152, 251, 152),
    (70, 130, 180), (220, 20, 60), (255, 0, 0), (0, 0, 142), (0, 0, 70), (0, 60, 100),
    (0, 80, 100), (0, 0, 230), (119, 11, 32),
]  # fmt: skip


def cityscapes(root: Path, *, mispaired: bool = False) -> Replica:
    """gtFine/val/<city>/ with _color, _instanceIds, _labelIds, _labelTrainIds PNGs and
    _polygons.json; leftImg8bit/val/<city>/; val_probs.zarr (N, 19, H, W) float16 with the
    Cityscapes ids in ``image_ids`` (``mispaired``: rows in reverse order)."""
    rng = np.random.default_rng(1)
    h, w = 32, 64
    ids = [
        f"{city}/{city}_{seq:06d}_{frame:06d}"
        for city in ("frankfurt", "lindau", "munster")
        for seq, frame in ((0, 294), (1, 19))
    ]
    injected = ids[3]
    probs = []
    for image_id in ids:
        city = image_id.split("/")[0]
        true = scene(rng, h, w, list(range(19)))
        given = (
            inject(true, 13 if true[h // 2, w // 2] != 13 else 0)
            if image_id == injected
            else true.copy()
        )
        given[0, :] = 255  # ego-vehicle-like void row
        folder = root / "gtFine" / "val" / city
        folder.mkdir(parents=True, exist_ok=True)
        stem = folder / (image_id.split("/")[1] + "_gtFine")
        train = given.astype(np.uint8)
        label_ids = np.where(
            train == 255, 0, np.array([*CITYSCAPES_LABEL_IDS, 0])[np.minimum(train, 19)]
        )
        Image.fromarray(train, mode="L").save(f"{stem}_labelTrainIds.png")
        Image.fromarray(label_ids.astype(np.uint8), mode="L").save(f"{stem}_labelIds.png")
        instances = label_ids.astype(np.uint16)
        is_instance = np.isin(train, list(CITYSCAPES_INSTANCE_TRAIN_IDS))
        instances[is_instance] = instances[is_instance] * 1000 + 1
        Image.fromarray(instances).save(f"{stem}_instanceIds.png")  # 16-bit
        rgba = np.zeros((h, w, 4), np.uint8)
        rgba[..., 3] = 255
        rgba[..., :3] = np.array([*CITYSCAPES_COLORS, (0, 0, 0)], np.uint8)[np.minimum(train, 19)]
        Image.fromarray(rgba, mode="RGBA").save(f"{stem}_color.png")
        polygons = {
            "imgHeight": h,
            "imgWidth": w,
            "objects": [
                {"label": "road", "polygon": [[0, h - 1], [w - 1, h - 1], [w // 2, h // 2]]}
            ],
        }
        Path(f"{stem}_polygons.json").write_text(json.dumps(polygons))
        images = root / "leftImg8bit" / "val" / city
        images.mkdir(parents=True, exist_ok=True)
        picture(rng, h, w).save(images / (image_id.split("/")[1] + "_leftImg8bit.png"))
        probs.append(model_probs(rng, true, 19))
    stacked = np.stack(probs[::-1] if mispaired else probs)
    array = zarr.create_array(
        store=str(root / "val_probs.zarr"), shape=stacked.shape, chunks=(2, 19, h, w), dtype="f2"
    )
    array[...] = stacked
    array.attrs["image_ids"] = ids
    return Replica(root, ids, injected)


# ----------------------------------------------------------------------------- Pascal VOC


def voc_palette() -> list[int]:
    """VOCdevkit's colour map (bitget), flattened for Image.putpalette."""
    palette = []
    for index in range(256):
        r = g = b = 0
        c = index
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        palette += [r, g, b]
    return palette


def _voc_png(values: NDArray[np.int64], path: Path) -> None:
    image = Image.fromarray(values.astype(np.uint8), mode="P")
    image.putpalette(voc_palette())
    image.save(path)


def voc(root: Path, *, mispaired: bool = False) -> Replica:
    """VOC2012/ with SegmentationClass (palette PNGs, 255 borders), SegmentationObject,
    JPEGImages, ImageSets/Segmentation/{train,val}.txt; images of differing sizes;
    voc_probs/<id>.npy (21, H, W) for the val images (``mispaired``: each val id holds the
    next val image's probabilities)."""
    rng = np.random.default_rng(2)
    voc = root / "VOC2012"
    for sub in ("SegmentationClass", "SegmentationObject", "JPEGImages", "ImageSets/Segmentation"):
        (voc / sub).mkdir(parents=True, exist_ok=True)
    train = ["2007_000032", "2007_000039", "2007_000063", "2008_000008"]
    val = ["2007_000033", "2007_000042", "2007_000061", "2007_000129", "2008_000009"]
    sizes = [(36, 48), (40, 40), (48, 36), (44, 52), (38, 46)]
    injected = val[2]
    probs: dict[str, NDArray[np.floating]] = {}
    for n, image_id in enumerate(sorted(train + val)):
        h, w = sizes[n % len(sizes)]
        true = scene(rng, h, w, list(range(21)))
        given = (
            inject(true, 15 if true[h // 2, w // 2] != 15 else 12)
            if image_id == injected
            else true.copy()
        )
        border = np.zeros_like(given, bool)  # VOC's void band: 255 around each object
        border[:, 1:] |= given[:, 1:] != given[:, :-1]
        border[1:, :] |= given[1:, :] != given[:-1, :]
        _voc_png(np.where(border, 255, given), voc / "SegmentationClass" / f"{image_id}.png")
        objects = np.where(given == 0, 0, (given % 3) + 1)
        _voc_png(np.where(border, 255, objects), voc / "SegmentationObject" / f"{image_id}.png")
        picture(rng, h, w).save(voc / "JPEGImages" / f"{image_id}.jpg", quality=90)
        probs[image_id] = model_probs(rng, true, 21, np.float32)
    (voc / "ImageSets" / "Segmentation" / "train.txt").write_text("\n".join(train) + "\n")
    (voc / "ImageSets" / "Segmentation" / "val.txt").write_text("\n".join(val) + "\n")
    out = root / "voc_probs"
    out.mkdir()
    for n, image_id in enumerate(val):
        source = val[(n + 1) % len(val)] if mispaired else image_id
        np.save(out / f"{image_id}.npy", probs[source])
    return Replica(root, val, injected)


# -------------------------------------------------------------------------------- ADE20K


def ade20k(root: Path) -> Replica:
    """ADEChallengeData2016/{annotations,images}/{training,validation}/ (annotations: mode L,
    0 = other, 1..150 the classes); ade_probs/<id>.npy (150, H, W): plane c is class c+1.
    Read without configs/ade20k.yaml the labels are one above the planes."""
    rng = np.random.default_rng(3)
    base = root / "ADEChallengeData2016"
    ids = [f"ADE_val_{i:08d}" for i in range(1, 6)]
    injected = ids[1]
    out = root / "ade_probs"
    out.mkdir(parents=True)
    for split, names in (
        ("training", [f"ADE_train_{i:08d}" for i in range(1, 4)]),
        ("validation", ids),
    ):
        (base / "annotations" / split).mkdir(parents=True)
        (base / "images" / split).mkdir(parents=True)
        for n, image_id in enumerate(names):
            h, w = (40, 56) if n % 2 else (48, 40)
            true = scene(rng, h, w, list(range(1, 151)))
            true[-2:, :] = 0  # 'other'
            given = (
                inject(true, 7 if true[h // 2, w // 2] != 7 else 3)
                if image_id == injected
                else true.copy()
            )
            Image.fromarray(given.astype(np.uint8), mode="L").save(
                base / "annotations" / split / f"{image_id}.png"
            )
            picture(rng, h, w).save(base / "images" / split / f"{image_id}.jpg")
            if split == "validation":
                np.save(out / f"{image_id}.npy", model_probs(rng, true - 1, 150))
    return Replica(root, ids, injected)


# ----------------------------------------------------------------------------- COCO-Stuff


def coco_stuff(root: Path, *, mispaired: bool = False) -> Replica:
    """stuffthingmaps_trainval2017/val2017/<12-digit id>.png (mode L: 0..181, 255 unlabeled)
    and val2017/<id>.jpg; coco_probs.zarr (N, 182, H, W) float16 with ``image_ids``
    (``mispaired``: rows shifted by one)."""
    rng = np.random.default_rng(4)
    ids = [f"{n:012d}" for n in (139, 285, 632, 724, 776, 785)]
    injected = ids[4]
    masks = root / "stuffthingmaps_trainval2017" / "val2017"
    images = root / "val2017"
    masks.mkdir(parents=True)
    images.mkdir(parents=True)
    h, w = 32, 40
    probs = []
    for image_id in ids:
        true = scene(rng, h, w, list(range(182)))
        given = (
            inject(true, 0 if true[h // 2, w // 2] != 0 else 1)
            if image_id == injected
            else true.copy()
        )
        given[:, :2] = 255
        Image.fromarray(given.astype(np.uint8), mode="L").save(masks / f"{image_id}.png")
        picture(rng, h, w).save(images / f"{image_id}.jpg")
        probs.append(model_probs(rng, true, 182))
    stacked = np.stack(probs)
    if mispaired:
        stacked = np.roll(stacked, 1, axis=0)
    array = zarr.create_array(
        store=str(root / "coco_probs.zarr"), shape=stacked.shape, chunks=(1, 182, h, w), dtype="f2"
    )
    array[...] = stacked
    array.attrs["image_ids"] = ids
    return Replica(root, ids, injected)
