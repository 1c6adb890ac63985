"""COCO: ``annotations.json`` with each suspect region as an RLE annotation (iscrowd 1).

``category_id`` is the region's given class (its current label; categories are the classes,
id = class index + 1); ``attributes`` carry the given and predicted class, the region id
and its mean self-confidence, so FiftyOne or any COCO reader shows what the model suggests.
``bbox`` is the mask's box (what pycocotools' toBbox gives; FiftyOne crops masks to it).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from segaudit.export.items import ClassInfo, ExportItem
from segaudit.export.rle import coco_bbox, coco_rle


def write(items: Iterable[ExportItem], classes: ClassInfo, out: Path) -> list[Path]:
    names = {name: k for k, name in enumerate(classes.names)}
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for image_number, item in enumerate(items, start=1):
        images.append(
            {
                "id": image_number,
                "file_name": item.image_path,
                "width": item.width,
                "height": item.height,
                "segaudit_image_id": item.image_id,
            }
        )
        for region in item.regions:
            mask = item.region_mask(region.region_id)
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_number,
                    "category_id": names[region.given] + 1,
                    "segmentation": coco_rle(mask),
                    "area": int(mask.sum()),
                    "bbox": coco_bbox(mask),
                    "iscrowd": 1,
                    "attributes": {
                        "given": region.given,
                        "predicted": region.predicted,
                        "region_id": region.region_id,
                        "mean_self_confidence": region.mean_self_confidence,
                    },
                }
            )
    document = {
        "info": {"description": "segaudit suspect regions"},
        "images": images,
        "annotations": annotations,
        "categories": [
            {"id": k + 1, "name": name, "supercategory": ""} for k, name in enumerate(classes.names)
        ],
    }
    path = out / "annotations.json"
    with path.open("w", encoding="utf-8") as handle:
        json.dump(document, handle, ensure_ascii=False, indent=1)
        handle.write("\n")
    return [path]
