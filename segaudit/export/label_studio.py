"""Label Studio: ``tasks.json`` (one task per suspect image) and ``labeling_config.xml``.

Each task's prediction holds the current mask as one brush result per class present
(control ``label``) and each suspect region as a brush result of the separate control
``suspect`` (label ``suspect``; its meta says given → predicted), all in Label Studio's
brush RLE (:func:`segaudit.export.rle.brush_rle`). Import the tasks into a project with the
labeling config; images are found at ``data.image`` (relative path or --image-root).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

from segaudit.export.items import ClassInfo, ExportItem
from segaudit.export.rle import brush_rle

CLASS_CONTROL = "label"
SUSPECT_CONTROL = "suspect"
SUSPECT_LABEL = "suspect"


def _hex(color: tuple[int, int, int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*color)


def labeling_config(classes: ClassInfo) -> str:
    labels = "\n".join(
        f"    <Label value={quoteattr(name)} background={quoteattr(_hex(color))}/>"
        for name, color in zip(classes.names, classes.colors, strict=True)
    )
    return (
        "<View>\n"
        '  <Image name="image" value="$image" zoom="true"/>\n'
        f'  <BrushLabels name="{CLASS_CONTROL}" toName="image">\n{labels}\n  </BrushLabels>\n'
        f'  <BrushLabels name="{SUSPECT_CONTROL}" toName="image">\n'
        f'    <Label value="{SUSPECT_LABEL}" background="#ffd43b"/>\n'
        "  </BrushLabels>\n"
        "</View>\n"
    )


def _result(item: ExportItem, rid: str, control: str, label: str, rle: list[int]) -> dict[str, Any]:
    return {
        "id": rid,
        "type": "brushlabels",
        "from_name": control,
        "to_name": "image",
        "original_width": item.width,
        "original_height": item.height,
        "image_rotation": 0,
        "value": {"format": "rle", "rle": rle, "brushlabels": [label]},
    }


def task(item: ExportItem, classes: ClassInfo) -> dict[str, Any]:
    results = [
        _result(item, f"class{k}", CLASS_CONTROL, classes.names[k], brush_rle(pixels))
        for k, pixels in item.class_masks()
    ]
    for region in item.regions:
        result = _result(
            item,
            f"region{region.region_id}",
            SUSPECT_CONTROL,
            SUSPECT_LABEL,
            brush_rle(item.region_mask(region.region_id)),
        )
        result["meta"] = {"text": [f"{region.given} → {region.predicted}"]}
        results.append(result)
    score = 0.0 if item.score != item.score else item.score  # NaN: unscored
    return {
        "data": {"image": item.image_path, "image_id": item.image_id},
        "predictions": [{"model_version": "segaudit", "score": score, "result": results}],
    }


def write(items: Iterable[ExportItem], classes: ClassInfo, out: Path) -> list[Path]:
    tasks = out / "tasks.json"
    with tasks.open("w", encoding="utf-8") as handle:
        handle.write("[")
        for i, item in enumerate(items):
            handle.write(",\n" if i else "\n")
            json.dump(task(item, classes), handle, ensure_ascii=False, separators=(",", ":"))
        handle.write("\n]\n")
    config = out / "labeling_config.xml"
    config.write_text(labeling_config(classes), encoding="utf-8")
    return [tasks, config]
