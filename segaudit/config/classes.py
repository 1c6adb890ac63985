"""The classes config: names, colours, ignore values and a remap, validated at load time.

Schema (version 1)::

    version: 1
    name: cityscapes            # optional
    ignore: [255]               # mask values (after remap) that take part in nothing
    remap: {7: 0, 8: 1}         # optional raw value -> class id; unlisted values pass through
    ignore_colors: [[0, 0, 0]]  # optional: colours of RGB masks read as ignored
    classes:                    # list index = class id = channel in pred_probs
      - {name: road, color: [128, 64, 128]}
      - {name: sky}             # colour optional: a generated palette colour
    files:                      # optional: how the dataset's files are named
      masks: "*_gtFine_labelTrainIds.png"   # which files are masks; id = path minus the tail
      images: "{id}_leftImg8bit.png"        # the picture of an id
      probs_key: probs                      # the array of a per-image .npz

The ``files`` values are defaults for ``--mask-pattern``, ``--image-pattern`` and
``--probs-key`` (see :mod:`segaudit.config.naming`); the command line wins.

Errors name the key path (``classes[3].color``); unknown keys are errors too, so a typo
never silently does nothing. This module imports no YAML parser: readers and writers use
:class:`ClassesConfig` without pulling one in.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from segaudit.config.naming import FileNames, image_pattern_problem, mask_pattern_problem
from segaudit.config.schema import Schema

SCHEMA_VERSION = 1
_TOP_KEYS = {"version", "name", "ignore", "remap", "ignore_colors", "classes", "files"}
_FILES_KEYS = {"masks", "images", "probs_key"}
_CLASS_KEYS = {"name", "color"}
#: Mask values are at most 32-bit integers.
_VALUE_RANGE = (-(2**31), 2**32 - 1)

Color = tuple[int, int, int]


@dataclass(frozen=True)
class ClassesConfig:
    """Class names and colours, and how raw mask values become class ids."""

    names: tuple[str, ...]
    colors: tuple[Color, ...]
    ignore: frozenset[int] = frozenset({255})
    remap: dict[int, int] = field(default_factory=dict)
    name: str = ""
    ignore_colors: tuple[Color, ...] = ()
    files: FileNames = field(default_factory=FileNames)

    @property
    def num_classes(self) -> int:
        return len(self.names)


def generated_palette(num_classes: int) -> tuple[Color, ...]:
    """Distinct colours for any number of classes: golden-ratio hues, alternating lightness."""
    colors = []
    for k in range(num_classes):
        hue = (k * 0.618033988749895) % 1.0
        light = (0.45, 0.65, 0.3)[k % 3]
        r, g, b = colorsys.hls_to_rgb(hue, light, 0.75)
        colors.append((round(r * 255), round(g * 255), round(b * 255)))
    return tuple(colors)


def default_classes(num_classes: int, ignore: frozenset[int] = frozenset({255})) -> ClassesConfig:
    """Classes named by their ids, with a generated palette."""
    return ClassesConfig(
        tuple(str(k) for k in range(num_classes)), generated_palette(num_classes), ignore
    )


def _color(schema: Schema, key: str, value: Any) -> Color:
    if not isinstance(value, list | tuple) or len(value) != 3:
        raise schema.fail(key, f"expected [r, g, b], got {value!r}")
    r, g, b = (schema.integer(f"{key}[{i}]", v, low=0, high=255) for i, v in enumerate(value))
    return (r, g, b)


def _value(schema: Schema, key: str, value: Any) -> int:
    return schema.integer(key, value, low=_VALUE_RANGE[0], high=_VALUE_RANGE[1])


def parse_classes(path: Path, data: dict[str, Any]) -> ClassesConfig:
    """Validate a classes config mapping already read from ``path``."""
    schema = Schema(path)
    schema.version(data, SCHEMA_VERSION)
    schema.mapping("", data, _TOP_KEYS)
    raw_classes = schema.sequence("classes", data.get("classes"), min_length=1)
    palette = generated_palette(len(raw_classes))
    names: list[str] = []
    colors: list[Color] = []
    for i, entry in enumerate(raw_classes):
        key = f"classes[{i}]"
        entry = schema.mapping(key, entry, _CLASS_KEYS)
        name = schema.text(f"{key}.name", entry.get("name"), limit=200)
        if name in names:
            raise schema.fail(f"{key}.name", f"duplicate class name {name!r}")
        names.append(name)
        color = entry.get("color")
        colors.append(palette[i] if color is None else _color(schema, f"{key}.color", color))
    raw_ignore = schema.sequence("ignore", data.get("ignore", [255]))
    ignore = frozenset(_value(schema, f"ignore[{i}]", v) for i, v in enumerate(raw_ignore))
    raw_remap = data.get("remap") or {}
    if not isinstance(raw_remap, dict):
        raise schema.fail("remap", f"expected a mapping of value: class id, got {raw_remap!r}")
    remap = {
        _value(schema, "remap", k): _value(schema, f"remap.{k}", v) for k, v in raw_remap.items()
    }
    for source, target in remap.items():
        if target not in ignore and not 0 <= target < len(names):
            raise schema.fail(f"remap.{source}", f"{target} is neither a class id nor ignored")
    name = schema.text("name", data.get("name", path.stem), limit=200)
    raw_colors = schema.sequence("ignore_colors", data.get("ignore_colors") or [])
    ignore_colors = tuple(
        _color(schema, f"ignore_colors[{i}]", c) for i, c in enumerate(raw_colors)
    )
    if ignore_colors and not ignore:
        raise schema.fail("ignore_colors", "needs at least one ignore value to read them as")
    files = _files(schema, data.get("files"))
    return ClassesConfig(tuple(names), tuple(colors), ignore, remap, name, ignore_colors, files)


def _files(schema: Schema, value: Any) -> FileNames:
    """The optional ``files`` mapping: mask pattern, image template, .npz key."""
    if value is None:
        return FileNames()
    value = schema.mapping("files", value, _FILES_KEYS)
    masks = schema.text("files.masks", value.get("masks", ""), empty=True, limit=200)
    images = schema.text("files.images", value.get("images", ""), empty=True, limit=200)
    key = schema.text("files.probs_key", value.get("probs_key", ""), empty=True, limit=200)
    for key_path, problem in (
        ("files.masks", masks and mask_pattern_problem(masks)),
        ("files.images", images and image_pattern_problem(images)),
    ):
        if problem:
            raise schema.fail(key_path, problem)
    return FileNames(masks, images, key)


def load_classes(path: Path) -> ClassesConfig:
    """Load and validate a classes config (bounded, safe YAML: see config.files)."""
    from segaudit.config.files import read_yaml

    return parse_classes(path, read_yaml(path))
