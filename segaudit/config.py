"""The classes config: names, colours, ignore values and a remap, validated at load time.

Schema (version 1)::

    version: 1
    name: cityscapes            # optional
    ignore: [255]               # mask values (after remap) that take part in nothing
    remap: {7: 0, 8: 1}         # optional raw value -> class id; unlisted values pass through
    ignore_colors: [[0, 0, 0]]  # optional: colours of RGB masks read as ignored
    classes:                    # list index = class id = channel in pred_probs
      - {name: road, color: [128, 64, 128]}

Errors name the key path (``classes[3].color``); unknown keys are errors too, so a typo
never silently does nothing.
"""

from __future__ import annotations

import colorsys
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from segaudit.errors import ConfigError, SegauditError

SCHEMA_VERSION = 1
_TOP_KEYS = {"version", "name", "ignore", "remap", "ignore_colors", "classes"}
_CLASS_KEYS = {"name", "color"}

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


def _fail(path: Path, key: str, problem: str) -> ConfigError:
    return ConfigError(f"{path}: {key}: {problem}")


def _int(path: Path, key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(path, key, f"expected an integer, got {value!r}")
    return value


def _color(path: Path, key: str, value: Any) -> Color:
    if not isinstance(value, list | tuple) or len(value) != 3:
        raise _fail(path, key, f"expected [r, g, b], got {value!r}")
    channels = [_int(path, f"{key}[{i}]", v) for i, v in enumerate(value)]
    if not all(0 <= c <= 255 for c in channels):
        raise _fail(path, key, f"colour channels must be 0..255, got {value!r}")
    return (channels[0], channels[1], channels[2])


def read_yaml(path: Path) -> dict[str, Any]:
    """A YAML mapping, loaded safely (no Python tags)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"{path}: cannot read ({error.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML ({error})".replace("\n", " ")) from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return data


def read_json_object(
    path: Path, *, if_missing: str, error: type[SegauditError] = ConfigError
) -> dict[str, Any]:
    """A JSON file whose top level is an object; ``if_missing`` says how to make it."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise error(f"{path}: not found; {if_missing}") from None
    except (OSError, ValueError) as problem:
        raise error(f"{path}: cannot read ({problem})") from None
    if not isinstance(data, dict):
        raise error(f"{path}: expected a JSON object")
    return data


def check_version(path: Path, data: dict[str, Any]) -> None:
    version = data.get("version")
    if version != SCHEMA_VERSION:
        raise _fail(path, "version", f"expected {SCHEMA_VERSION}, got {version!r}")


def check_keys(path: Path, where: str, data: dict[str, Any], allowed: set[str]) -> None:
    unknown = sorted(str(k) for k in set(data) - allowed)
    if unknown:
        prefix = f"{where}." if where else ""
        raise _fail(
            path, prefix + unknown[0], f"unknown key (allowed: {', '.join(sorted(allowed))})"
        )


def load_classes(path: Path) -> ClassesConfig:
    """Load and validate a classes config."""
    data = read_yaml(path)
    check_version(path, data)
    check_keys(path, "", data, _TOP_KEYS)
    raw_classes = data.get("classes")
    if not isinstance(raw_classes, list) or not raw_classes:
        raise _fail(path, "classes", "expected a non-empty list of {name, color}")
    names: list[str] = []
    colors: list[Color] = []
    for i, entry in enumerate(raw_classes):
        key = f"classes[{i}]"
        if not isinstance(entry, dict):
            raise _fail(path, key, f"expected {{name, color}}, got {entry!r}")
        check_keys(path, key, entry, _CLASS_KEYS)
        name = entry.get("name")
        if not isinstance(name, str) or not name:
            raise _fail(path, f"{key}.name", f"expected a non-empty string, got {name!r}")
        if name in names:
            raise _fail(path, f"{key}.name", f"duplicate class name {name!r}")
        names.append(name)
        colors.append(_color(path, f"{key}.color", entry.get("color")))
    raw_ignore = data.get("ignore", [255])
    if not isinstance(raw_ignore, list):
        raise _fail(path, "ignore", f"expected a list of integers, got {raw_ignore!r}")
    ignore = frozenset(_int(path, f"ignore[{i}]", v) for i, v in enumerate(raw_ignore))
    raw_remap = data.get("remap") or {}
    if not isinstance(raw_remap, dict):
        raise _fail(path, "remap", f"expected a mapping of value: class id, got {raw_remap!r}")
    remap = {_int(path, "remap", k): _int(path, f"remap.{k}", v) for k, v in raw_remap.items()}
    for source, target in remap.items():
        if target not in ignore and not 0 <= target < len(names):
            raise _fail(path, f"remap.{source}", f"{target} is neither a class id nor ignored")
    name = data.get("name", path.stem)
    if not isinstance(name, str):
        raise _fail(path, "name", f"expected a string, got {name!r}")
    raw_colors = data.get("ignore_colors") or []
    if not isinstance(raw_colors, list):
        raise _fail(path, "ignore_colors", f"expected a list of [r, g, b], got {raw_colors!r}")
    ignore_colors = tuple(_color(path, f"ignore_colors[{i}]", c) for i, c in enumerate(raw_colors))
    if ignore_colors and not ignore:
        raise _fail(path, "ignore_colors", "needs at least one ignore value to read them as")
    return ClassesConfig(tuple(names), tuple(colors), ignore, remap, name, ignore_colors)


def validate_config_file(path: Path) -> str:
    """Validate a classes config, or a gate policy (a file with top-level ``rules:``).

    Returns a one-line description of what was found; raises ConfigError naming the key.
    """
    data = read_yaml(path)
    if "rules" in data:
        from segaudit.policy import load_policy  # here: policy imports this module

        load_policy(path)
        return f"{path}: valid gate policy"
    classes = load_classes(path)
    ignore = ", ".join(str(v) for v in sorted(classes.ignore)) or "none"
    remap = f", {len(classes.remap)} remapped values" if classes.remap else ""
    return (
        f"{path}: valid classes config '{classes.name}': {classes.num_classes} classes, "
        f"ignore {ignore}{remap}"
    )
